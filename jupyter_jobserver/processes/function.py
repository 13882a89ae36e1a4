"""The ``function`` process: a Python function, called in a warm worker.

Its scripts are described in a worker (describing means importing, which is running
the author's code; see :mod:`jupyter_jobserver.runtime.introspect`). The job's data is
the function's first argument when it has a data parameter.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from ..runtime.introspect import function_provenance, load_function
from .base import Process


class FunctionProcess(Process):
    name = "function"

    def spec(self, script: Any) -> dict[str, Any]:
        return {"target": script.target}

    def provenance(self, task: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
        target = task["spec"]["target"]
        if target not in cache:
            cache[target] = function_provenance(target)
        return cache[target]

    def run(self, task: dict[str, Any], done: dict[str, Any]) -> Any:
        """Call the function with the job's parameters (and its data first); record in
        ``done`` every parameter's value as the code that runs has it, defaults included
        (the server's are those of the code as it was described)."""
        func = load_function(task["spec"]["target"])
        args = list(task.get("args") or [])
        kwargs = dict(task.get("kwargs") or {})
        parameter = task.get("data_parameter")
        binding = task.get("data")
        if binding is not None:
            from ..data.datatypes import load_binding

            args.insert(0, load_binding(binding, parameter or {}))
        elif parameter:
            # the data parameter comes first even when nothing is bound: it keeps its
            # default, and the job's positional arguments stay where the schema put them
            default = inspect.signature(func).parameters[parameter["parameter"]].default
            args.insert(0, None if default is inspect.Parameter.empty else default)
        skip = parameter["parameter"] if parameter else None
        used = used_parameters(func, args, kwargs, skip)
        if used is not None:
            done.setdefault("provenance", {})["parameters"] = used
        return func(*args, **kwargs)


def used_parameters(
    func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], skip: str | None
) -> dict[str, Any] | None:
    """Every parameter's value for this call that JSON holds exactly, as the job record
    writes them (``*args`` for extra positional values): a rerun sends them back, so a
    value JSON would change (``inf``, an object) is left to the code's own default.
    ``None`` when the call does not fit the signature (the call itself will say why)."""
    try:
        signature = inspect.signature(func)
        bound = signature.bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    bound.apply_defaults()
    used: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if name == skip:
            continue
        if kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                used["*args"] = list(value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            used.update(value)
        else:
            used[name] = value
    return {name: value for name, value in used.items() if _exact_json(value)}


def _exact_json(value: Any) -> bool:
    """Does JSON hold ``value`` exactly (it comes back equal, and of the same type)?"""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_exact_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _exact_json(v) for k, v in value.items())
    return False
