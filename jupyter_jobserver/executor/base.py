"""The executor contract: where processes run.

The job service decides *what* runs and keeps the record; an executor decides *where*
and *when*: it holds a queue, runs each task when it has the cores, enforces timeouts,
kills on cancel, and reports back through an :class:`ExecutorListener`. The local
executor runs tasks in warm worker processes; others (a Dask cluster) fill in the same
methods.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from traitlets.config import LoggingConfigurable


@dataclasses.dataclass
class Task:
    """Everything a worker needs to run one job, and nothing it should not see."""

    job_id: str
    process: str
    job_dir: str
    target: str | None = None
    file: dict[str, Any] | None = None
    code: str | None = None
    args: list[Any] = dataclasses.field(default_factory=list)
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: dict[str, Any] | None = None
    data_parameter: dict[str, Any] | None = None
    cores: int = 1
    timeout: float | None = None
    max_result_bytes: int = 0

    def message(self) -> dict[str, Any]:
        """The task as sent to a worker (a shallow copy: ``asdict`` would deep-copy)."""
        return {name: getattr(self, name) for name in _TASK_FIELDS}


_TASK_FIELDS = tuple(f.name for f in dataclasses.fields(Task))


@dataclasses.dataclass
class Outcome:
    """How a task ended, as the executor saw it.

    ``result`` is the JSON text of the return value, or ``result_file`` names a file
    holding it when it is large (so it never passes through the event loop).
    """

    status: str
    result: str | None = None
    result_file: str | None = None
    error: dict[str, Any] | None = None
    exit_code: int | None = None
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    progress: dict[str, Any] | None = None


class ExecutorListener(Protocol):
    """What an executor reports; the job service implements it."""

    def job_started(self, job_id: str) -> None:
        """A queued task was handed to a worker."""

    def job_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        """A running task reported progress."""

    def job_finished(self, job_id: str, outcome: Outcome) -> None:
        """A task ended: it returned, raised, crashed, timed out or was cancelled."""


class Executor(LoggingConfigurable):
    """Base class of executors; see the module docstring."""

    @property
    def cores(self) -> int:
        """How many cores' worth of tasks may run at once."""
        raise NotImplementedError

    async def start(self, listener: ExecutorListener) -> None:
        """Start accepting tasks (workers may still be warming up when this returns)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop every worker; tasks still running are killed and not reported."""
        raise NotImplementedError

    def submit(self, task: Task) -> None:
        """Queue a task; it starts when cores are free, in the order submitted."""
        raise NotImplementedError

    def cancel(self, job_id: str) -> bool:
        """Drop a queued task or kill a running one; ``False`` if it is not here."""
        raise NotImplementedError

    async def describe(self, scripts: dict[str, str]) -> dict[str, Any]:
        """Describe function scripts (``name -> "module:function"``) in a worker."""
        raise NotImplementedError

    def running(self) -> list[str]:
        """Ids of the jobs running now."""
        return []

    def queued(self) -> list[str]:
        """Ids of the jobs waiting, in order."""
        return []
