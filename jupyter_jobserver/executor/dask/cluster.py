"""Which Dask cluster the executor uses, and what the server says about it.

Three ways, chosen by configuration: the address of a scheduler someone else runs (the
server connects and never stops it), a ``LocalCluster`` the server starts, or a factory
(an import path ``"module:callable"``) that returns any cluster object with a
``scheduler_address`` and a ``close()``: ``dask_jobqueue.SLURMCluster``, a dask-gateway
cluster, or one of the site's own. What the server starts, it stops.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from typing import Any


def load_factory(reference: str) -> Callable[..., Any]:
    """The callable a ``"module:callable"`` path names (a 'module.callable' is taken too)."""
    module_name, sep, attribute = reference.partition(":")
    if not sep:
        module_name, _, attribute = reference.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"DaskExecutor.cluster_factory {reference!r} is not 'module:callable'")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"DaskExecutor.cluster_factory {reference!r} is not callable")
    return obj


def local_cluster(
    workers: int, threads: int, cores: int, env: dict[str, str], dashboard: str
) -> Any:
    """A ``LocalCluster`` of separate worker processes, each offering ``cores`` as the
    ``cores`` resource that jobs asking for several cores are scheduled by."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers,
        threads_per_worker=threads,
        processes=True,
        resources={"cores": cores},
        dashboard_address=dashboard,
        env=env,
    )


async def make_cluster(factory: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call a cluster factory off the event loop (starting a cluster blocks)."""
    made = await asyncio.to_thread(factory, **kwargs)
    if inspect.isawaitable(made):
        made = await made
    if not getattr(made, "scheduler_address", None):
        raise TypeError(
            f"the cluster factory returned {type(made).__name__}, which has no scheduler_address"
        )
    return made


async def close_cluster(cluster: Any) -> None:
    """Close a cluster the server started (its workers with it)."""
    closed = await asyncio.to_thread(cluster.close)
    if inspect.isawaitable(closed):
        await closed


def describe(identity: dict[str, Any], address: str, dashboard: str | None) -> dict[str, Any]:
    """The cluster as the server's status shows it: from the scheduler's identity."""
    workers = []
    for worker_address, info in sorted((identity.get("workers") or {}).items()):
        resources = info.get("resources") or {}
        workers.append(
            {
                "address": worker_address,
                "name": str(info.get("name", worker_address)),
                "threads": int(info.get("nthreads") or 0),
                "cores": worker_cores(info),
                "memory_limit": info.get("memory_limit"),
                "resources": dict(resources),
            }
        )
    return {
        "scheduler": address,
        "dashboard": dashboard,
        "workers": workers,
    }


def worker_cores(info: dict[str, Any]) -> int:
    """Cores a worker offers: its ``cores`` resource, else its threads."""
    resources = info.get("resources") or {}
    if "cores" in resources:
        return int(resources["cores"])
    return int(info.get("nthreads") or 0)


def dashboard_link(identity: dict[str, Any], address: str) -> str | None:
    """The scheduler's dashboard (what dask-labextension is pointed at), if it has one."""
    port = (identity.get("services") or {}).get("dashboard")
    if not port:
        return None
    host = address.split("://", 1)[-1].rsplit(":", 1)[0]
    return f"http://{host}:{port}/status"
