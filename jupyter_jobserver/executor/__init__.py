"""Executors: where job processes run.

The names load on first use, so that a worker process, which imports
``jupyter_jobserver.executor.local.worker``, pulls in nothing of the server's.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Executor, ExecutorListener, Outcome, Task
    from .dask import DaskExecutor
    from .local import LocalExecutor

_WHERE = {
    "Executor": ".base",
    "ExecutorListener": ".base",
    "Outcome": ".base",
    "Task": ".base",
    "LocalExecutor": ".local.pool",
    "DaskExecutor": ".dask.executor",
}

__all__ = ["DaskExecutor", "Executor", "ExecutorListener", "LocalExecutor", "Outcome", "Task"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
