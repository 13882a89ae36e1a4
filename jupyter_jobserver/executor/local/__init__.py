"""The local executor: warm worker processes on this machine.

:class:`LocalExecutor` loads on first use, so that a worker process, which imports
:mod:`.worker` from here, pulls in nothing of the server's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pool import LocalExecutor

__all__ = ["LocalExecutor"]


def __getattr__(name: str) -> Any:
    if name == "LocalExecutor":
        from .pool import LocalExecutor

        return LocalExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
