"""The Dask executor: jobs on a Dask distributed cluster (``pip install
jupyter-jobserver[dask]``). :mod:`.executor` is the server's side, :mod:`.remote` runs
on the workers, :mod:`.cluster` finds or starts the cluster.

:class:`DaskExecutor` loads on first use, so that a Dask worker, which imports
:mod:`.remote` from here, pulls in nothing of the server's; and nothing imports
``distributed`` until the executor starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .executor import DaskExecutor

__all__ = ["DaskExecutor"]


def __getattr__(name: str) -> Any:
    if name == "DaskExecutor":
        from .executor import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
