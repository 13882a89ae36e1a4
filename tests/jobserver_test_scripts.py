"""Scripts the test suite registers; workers import them from this folder."""

from __future__ import annotations

import math
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
from typing import Annotated, Literal

import numpy
import pandas

from jupyter_jobserver import Param, context, script


def echo(text: str, times: Annotated[int, Param(minimum=1, maximum=100)] = 1) -> str:
    """Print text to stdout and a note to stderr; return it repeated."""
    for _ in range(times):
        print(text)
    print(f"echoed {times} time(s)", file=sys.stderr)
    return text * times


def sleepy(seconds: float = 30.0) -> str:
    """Say it started, then sleep."""
    print("started", flush=True)
    time.sleep(seconds)
    return "woke up"


def spawn_children(count: int = 2, detach: bool = False) -> None:
    """Start child processes that sleep, print their pids, then sleep too."""
    children = []
    for _ in range(count):
        if detach:
            # a grandchild in its own session whose parent exits: a daemon
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import subprocess,sys;"
                    "p=subprocess.Popen(['sleep','300'],start_new_session=True);print(p.pid)",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            children.append(int(out.stdout))
        else:
            children.append(subprocess.Popen(["sleep", "300"], start_new_session=True).pid)
    print(" ".join(map(str, children)), flush=True)
    time.sleep(300)


def kill_self(how: Literal["exit", "segfault", "sigkill"] = "exit") -> None:
    """End this worker abruptly; sigkill stands in for the kernel's OOM killer."""
    print("going down", flush=True)
    if how == "exit":
        os._exit(7)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    import ctypes

    ctypes.string_at(0)


def results(kind: str) -> object:
    """Return a value of a kind JSON has no word for."""
    import numpy as np
    import pandas as pd

    if kind == "dataframe":
        index = pd.date_range("2026-01-01", periods=3, freq="D", name="day")
        return pd.DataFrame({"x": [1.5, math.nan, 3.0], "n": [1, 2, 3]}, index=index)
    if kind == "series":
        return pd.Series([1, 2, 3], index=["a", "b", "c"], name="s")
    if kind == "ndarray":
        return np.arange(6, dtype="int32").reshape(2, 3)
    if kind == "special":
        return {"nan": math.nan, "inf": math.inf, "int64": np.int64(5), "set": {1}}
    if kind == "object":
        return object()
    if kind == "multiindex":
        columns = pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])
        index = pd.MultiIndex.from_tuples([("r", 1), ("r", 2)])
        return pd.DataFrame([[1, 2], [3, 4]], columns=columns, index=index)
    if kind == "repeated":
        return pd.DataFrame([[1, 2.5], [3, 4.5]], columns=["v", "v"])
    raise ValueError(kind)


def misbehave(how: str) -> object:
    """Do to the worker what careless code does (``how`` says what)."""
    if how == "huge_error":
        raise ValueError("e" * 1_000_000)
    if how == "unprintable_error":

        class Unprintable(Exception):
            def __str__(self) -> str:
                raise RuntimeError("no")

        raise Unprintable()
    if how == "fork":
        return "child" if os.fork() == 0 else "parent"
    if how == "alarm":
        signal.alarm(1)  # would end whatever runs next on this worker
        return "set"
    if how == "path":
        sys.path.insert(0, "/nowhere")
        sys.setrecursionlimit(60)
        return len(sys.path)
    if how == "progress_storm":
        for _ in range(200_000):
            context.progress(1.0, "done, again")
        return "stormed"
    if how == "state":  # what the next job sees
        time.sleep(1.2)  # past any alarm a previous job left
        return {"nowhere": "/nowhere" in sys.path, "limit": sys.getrecursionlimit()}
    raise ValueError(how)


def big(size: int = 1000) -> str:
    """Return a long string."""
    return "x" * size


def raises(message: str = "bad things") -> None:
    """Fail with a ValueError from a nested call."""

    def inner() -> None:
        raise ValueError(message)

    inner()


@script(cores=2)
def two_cores(seconds: float = 0.5) -> dict:
    """Use two cores (says the declaration); report what the context says."""
    start = time.time()
    time.sleep(seconds)
    return {"cores": context.cores(), "start": start, "end": time.time()}


def progress_steps(steps: int = 5, delay: float = 0.2) -> int:
    """Report progress step by step."""
    for step in range(steps):
        time.sleep(delay)
        context.progress((step + 1) / steps, f"step {step + 1}")
    return steps


def noop() -> None:
    """Nothing."""


def leaky_thread() -> int:
    """Leave a thread behind that keeps printing and reporting progress; the worker's pid."""

    def keep_going() -> None:
        while True:
            print("LEAK", flush=True)
            context.progress(0.99, "leaked")
            time.sleep(0.01)

    threading.Thread(target=keep_going, daemon=True).start()
    time.sleep(0.05)
    return os.getpid()


def inf_default(limit: float = math.inf) -> str:
    """A default JSON cannot write."""
    return str(limit)


def worker_pid() -> int:
    """The pid of the worker that runs this job."""
    time.sleep(0.1)
    return os.getpid()


def types_demo(
    n: int,
    x: float = 1.5,
    flag: bool = False,
    mode: Literal["a", "b"] = "a",
    items: list[int] | None = None,
    *,
    label: Annotated[str, Param(min_length=1, max_length=10)] = "lbl",
) -> dict:
    """Echo typed parameters back."""
    return {"n": n, "x": x, "flag": flag, "mode": mode, "items": items, "label": label}


def pid_then_sleep(seconds: float = 300.0) -> None:
    """Print this worker's pid, then sleep."""
    print(os.getpid(), flush=True)
    time.sleep(seconds)


def describe_data(data) -> dict:  # unannotated on purpose
    """Say what the data parameter received."""
    import pandas as pd

    info: dict = {"type": type(data).__name__}
    if isinstance(data, pd.DataFrame):
        info.update(
            columns=[str(c) for c in data.columns],
            rows=len(data),
            index=type(data.index).__name__,
            first=data.iloc[0].tolist() if len(data) else None,
        )
    elif isinstance(data, (list, dict)):
        info["length"] = len(data)
    return info


def file_info(data: pathlib.Path) -> dict:
    """Take the path of a datafile."""
    return {
        "name": data.name,
        "size": data.stat().st_size,
        "absolute": data.is_absolute(),
        "in_job_folder": pathlib.Path.cwd() in data.resolve().parents,
    }


def array_shape(data: numpy.ndarray) -> list:
    """Take an array."""
    return list(data.shape)


def column_sum(data: pandas.Series) -> float:
    """Take one column."""
    return float(data.sum())


def table_mean(data: pandas.DataFrame, column: str = "value") -> float:
    """Take a table."""
    return float(data[column].mean())


def gated(gate: str, fraction: float = 0.5) -> str:
    """Print, report progress, then wait until a line arrives through the FIFO ``gate``."""
    print("before the gate", flush=True)
    context.progress(fraction, "waiting at the gate")
    with open(gate) as f:
        f.readline()
    print("after the gate")
    return "through"


def _square(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


@script(cores=2)
def parallel_squares(n: int = 8) -> dict:
    """Square numbers in the job's process pool."""
    results = list(context.pool().map(_square, range(n)))
    return {"squares": [r[0] for r in results], "processes": len({r[1] for r in results})}


def print_lots(megabytes: int = 1) -> int:
    """Print ``megabytes`` MiB of numbered lines."""
    line = "x" * 63 + "\n"
    count = (megabytes << 20) // 64
    for _ in range(count):
        sys.stdout.write(line)
    return count


def total(data: list) -> float:
    """Add up a list."""
    return float(sum(data))


def logs(message: str = "hello") -> str:
    """Write a log line through the job context."""
    context.log(message)
    return context.job_id() or ""


def optional_data(data: pandas.DataFrame | None = None, window: int = 7) -> dict:
    """A data parameter that may be left unbound."""
    return {"rows": None if data is None else len(data), "window": window}


def ledger(path: str, entry: str) -> str:
    """Append one line to the ledger file at ``path`` (one write: lines never mix), so a
    test can count how often each job ran."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{entry}\n".encode())
    finally:
        os.close(fd)
    return entry


def power(x: float, n: Annotated[int, Param(minimum=0, maximum=5)] = 2) -> float:
    """``x`` to the ``n``; a negative ``x`` fails when the job runs."""
    if x < 0:
        raise ValueError(f"x must not be negative, not {x}")
    return x**n


def moments(x: float, scale: float = 1.0) -> dict:
    """A flat dict of numbers: one column each in a sweep's table."""
    return {"double": 2 * x * scale, "square": x * x}
