"""What a sweep request expands to: its size, its checks, and one job record per
combination of its datafiles (or data), parameter sets and grid points.

The records are built from one template; each distinct parameter set is bound (checked
against the script's schema) once, and a refused one names its set or grid point and
the parameter. This runs in a thread: a sweep may have 100,000 jobs.
"""

from __future__ import annotations

import itertools
import json
import math
import uuid
from typing import Any

from ..errors import InvalidRequest, JobServerError
from ..models import SweepCreate
from ..scripts import Script
from ..vocabulary import Status


def size_of(request: SweepCreate, bindings: int, sets: int) -> int:
    if not sets:
        raise InvalidRequest("sets: the list is empty; leave it out for one set of kwargs")
    for name, values in request.grid.items():
        if not values:
            raise InvalidRequest(f"grid: {name!r} has no values")
    return bindings * sets * math.prod(len(v) for v in request.grid.values())


def check_names(request: SweepCreate, sets: list[dict[str, Any]]) -> None:
    """A parameter comes from one place only (kwargs, the sets, the grid), or it would be
    unclear which value a job runs with."""
    grid = set(request.grid)
    both = grid & set(request.kwargs)
    if both:
        raise InvalidRequest(f"{', '.join(sorted(both))}: given in both kwargs and grid")
    for i, values in enumerate(sets):
        clash = set(values) & (grid | set(request.kwargs))
        if clash:
            where = "grid" if clash & grid else "kwargs"
            raise InvalidRequest(
                f"parameter set {i} ({_show(values)}): {', '.join(sorted(clash))} "
                f"is also given in {where}"
            )


def _show(values: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={json.dumps(v)}" for k, v in values.items())
    return text if len(text) <= 200 else text[:199] + "…"


def job_records(
    sweep: dict[str, Any],
    script: Script,
    request: SweepCreate,
    bindings: list[Any],
    sets: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every job of the sweep, each parameter set bound and checked (400 naming the set
    and the parameter); one template record is copied for all of them."""
    now = sweep["created"]
    status = Status.queued.value if request.run else Status.created.value
    template: dict[str, Any] = {
        "script": script.name,
        "process": script.process,
        "status": status,
        "owner": sweep["owner"],
        "public": request.public,
        "tags": list(request.tags),
        "args": [],
        "code": None,
        "timeout": sweep["timeout"],
        "cores": script.cores,
        "created": now,
        "edited": None,
        "queued": now if request.run else None,
        "started": None,
        "finished": None,
        "time_sec": None,
        "result": None,
        "error": None,
        "exit_code": None,
        "progress": None,
        "rerun_of": None,
        "sweep": sweep["id"],
    }
    names = list(request.grid)
    points = list(itertools.product(*request.grid.values()))
    records = []
    bound: dict[str, dict[str, Any]] = {}  # the same parameters are bound once
    index = 0
    for binding in bindings:
        data = binding.model_dump() if binding is not None else None
        for s, values in enumerate(sets):
            for point in points:
                kwargs = {**request.kwargs, **values, **dict(zip(names, point, strict=True))}
                key = json.dumps(kwargs, sort_keys=True, default=str)
                parameters = bound.get(key)
                if parameters is None:
                    try:
                        parameters = bound[key] = script.bind([], kwargs)
                    except JobServerError as exc:
                        raise InvalidRequest(
                            f"{_where(request, s, values, names, point)}: {exc.message}"
                        ) from None
                records.append(
                    {
                        **template,
                        "id": uuid.uuid4().hex,
                        "kwargs": kwargs,
                        "data": data,
                        "provenance": {
                            "script": script.name,
                            "version": script.version,
                            "parameters": parameters,
                        },
                        "sweep_index": index,
                    }
                )
                index += 1
    return records


def _where(
    request: SweepCreate, s: int, values: dict[str, Any], names: list[str], point: tuple
) -> str:
    """Which parameter set a refused job is, in the request's own terms."""
    parts = []
    if request.sets is not None:
        parts.append(f"parameter set {s} ({_show(values)})")
    if names:
        parts.append(f"grid point {_show(dict(zip(names, point, strict=True)))}")
    return " with ".join(parts) or "kwargs"
