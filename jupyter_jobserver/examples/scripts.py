"""Example scripts: what a registered algorithm looks like.

Each is an ordinary function. Its signature, type hints, defaults and docstring are its
parameter form; ``context`` lets it report progress.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

import pandas as pd

from jupyter_jobserver import Param, context, script


@script(version="1.0")
def summary(
    data: pd.DataFrame,
    column: str | None = None,
    percentiles: Annotated[list[float], Param(min_items=1, max_items=9)] = [0.25, 0.5, 0.75],  # noqa: B006
) -> pd.DataFrame:
    """Summary statistics of a timeseries.

    Count, mean, standard deviation, minimum, the requested percentiles and maximum of
    every numeric column (or just one), as a table.

    Parameters
    ----------
    data
        The timeseries: a table with one column per variable.
    column
        Summarize only this column.
    percentiles
        Which percentiles to include, each between 0 and 1.
    """
    if column is not None:
        if column not in data.columns:
            raise KeyError(
                f"no column {column!r}; columns are: {', '.join(map(str, data.columns))}"
            )
        data = data[[column]]
    numeric = data.select_dtypes("number")
    if numeric.empty:
        raise ValueError("the data has no numeric column to summarize")
    print(f"summarizing {len(numeric)} rows of {', '.join(map(str, numeric.columns))}")
    return numeric.describe(percentiles=percentiles)


@script(version="1.0")
def slow(
    steps: Annotated[int, Param(minimum=1, maximum=10_000)] = 10,
    delay: Annotated[float, Param(minimum=0, maximum=60)] = 0.5,
) -> dict:
    """Count slowly, printing and reporting progress as it goes.

    Parameters
    ----------
    steps
        How many steps to take.
    delay
        Seconds each step takes.
    """
    started = time.monotonic()
    for step in range(1, steps + 1):
        time.sleep(delay)
        print(f"step {step} of {steps}", flush=True)
        context.progress(step / steps, f"step {step} of {steps}")
    return {"steps": steps, "seconds": round(time.monotonic() - started, 3)}


@script(version="1.0")
def fail(
    message: str = "this script always fails",
    how: Literal["exception", "exit", "crash"] = "exception",
) -> None:
    """Fail on purpose, to see what a failed job looks like.

    Parameters
    ----------
    message
        The error message.
    how
        ``exception`` raises an error; ``exit`` ends the worker process abruptly;
        ``crash`` makes it crash with a segmentation fault.
    """
    print("about to fail", flush=True)
    if how == "exit":
        import os

        os._exit(3)
    if how == "crash":
        import ctypes

        ctypes.string_at(0)
    raise RuntimeError(message)


@script(version="1.0")
def add(a: float, b: float = 0.0) -> float:
    """Add two numbers.

    Parameters
    ----------
    a
        The first number.
    b
        The second number.
    """
    return a + b


def noop() -> None:
    """Do nothing at all (the benchmark's job)."""
