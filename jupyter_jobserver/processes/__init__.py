"""Process kinds: one module each (``function``, ``file``, ``eval``, ``notebook``), found
by name.

The job manager, the script registry and the worker dispatch through :func:`get_process`
and never branch on a kind's name.
"""

from __future__ import annotations

from ..errors import InvalidRequest
from .base import Process
from .eval import EvalProcess
from .file import FileProcess
from .function import FunctionProcess
from .notebook import NotebookProcess

PROCESSES: dict[str, Process] = {
    kind.name: kind for kind in (FunctionProcess(), FileProcess(), EvalProcess(), NotebookProcess())
}


def get_process(name: str) -> Process:
    """The kind called ``name``; a 400 that lists the kinds for any other."""
    try:
        return PROCESSES[name]
    except KeyError:
        known = ", ".join(PROCESSES)
        raise InvalidRequest(f"unknown process {name!r}; processes are: {known}") from None


__all__ = ["PROCESSES", "Process", "get_process"]
