"""The executor contract: where processes run.

The job manager decides *what* runs and keeps the record; an executor decides *where*
and *when*: it holds a queue, runs each task when it has the cores, enforces timeouts,
kills on cancel, and reports back through an :class:`ExecutorListener`.

The contract assumes no shared machine. A :class:`Task` carries everything a job needs
(its data as content, or as a reference only when the executor says it shares the
server's disk); a job's output goes to the :class:`~jupyter_jobserver.jobs.logs.JobLogs`
the executor is started with; a large result comes back as
:class:`~jupyter_jobserver.serialize.DeferredJSON` that the store fetches, never as a
path of the server's. The files a job writes in its working folder are listed and
checksummed where it ran, in ``Outcome.provenance["files"]``; an executor that does not
share the server's disk copies each of them to the
:class:`~jupyter_jobserver.jobs.files.JobFiles` it is started with (``JobFiles.put``)
before it reports the job finished, so they outlive the worker's machine.

Listener calls may come from any thread: :class:`Executor` hands them to the event loop
(a call made on the loop's own thread is delivered at once, even from inside
:meth:`Executor.submit`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any, ClassVar, Protocol

from traitlets.config import LoggingConfigurable

from ..serialize import DeferredJSON


@dataclasses.dataclass
class Task:
    """Everything a worker needs to run one job, and nothing it should not see."""

    job_id: str
    process: str
    #: what the process kind needs to run it (the function's reference, the file
    #: script's command, the eval code): :meth:`Process.spec`
    spec: dict[str, Any] = dataclasses.field(default_factory=dict)
    args: list[Any] = dataclasses.field(default_factory=list)
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: dict[str, Any] | None = None
    data_parameter: dict[str, Any] | None = None
    cores: int = 1
    timeout: float | None = None
    max_result_bytes: int = 0
    #: the most bytes of files the job may leave in its folder (0: no limit)
    max_files_bytes: int = 0

    def message(self) -> dict[str, Any]:
        """The task as sent to a worker (a shallow copy: ``asdict`` would deep-copy)."""
        return {name: getattr(self, name) for name in _TASK_FIELDS}


_TASK_FIELDS = tuple(f.name for f in dataclasses.fields(Task))


@dataclasses.dataclass
class Outcome:
    """How a task ended, as the executor saw it.

    ``result`` is the JSON text of the return value, or a :class:`DeferredJSON` the
    store reads when the value is large (so it never passes through the event loop).
    """

    status: str
    result: str | DeferredJSON | None = None
    error: dict[str, Any] | None = None
    exit_code: int | None = None
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    progress: dict[str, Any] | None = None


class ExecutorListener(Protocol):
    """What an executor reports; the job life cycle implements it."""

    def job_started(self, job_id: str) -> None:
        """A queued task was handed to a worker."""

    def job_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        """A running task reported progress."""

    def job_finished(self, job_id: str, outcome: Outcome) -> None:
        """A task ended: it returned, raised, crashed, timed out or was cancelled."""


class _OnTheLoop:
    """A listener whose calls always run on one event loop's thread."""

    def __init__(self, listener: ExecutorListener, loop: asyncio.AbstractEventLoop) -> None:
        self._listener = listener
        self._loop = loop
        self._thread = threading.get_ident()

    def _deliver(self, method: Any, *args: Any) -> None:
        if threading.get_ident() == self._thread:
            method(*args)
        else:
            self._loop.call_soon_threadsafe(method, *args)

    def job_started(self, job_id: str) -> None:
        self._deliver(self._listener.job_started, job_id)

    def job_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        self._deliver(self._listener.job_progress, job_id, progress)

    def job_finished(self, job_id: str, outcome: Outcome) -> None:
        self._deliver(self._listener.job_finished, job_id, outcome)


class Executor(LoggingConfigurable):
    """Base class of executors; see the module docstring.

    What an executor can do is stated, not guessed from its class: the job manager asks
    :attr:`shares_disk`, :attr:`interrupts` and :attr:`cores`.
    """

    #: tasks run where the server's files are: a datafile may be handed over by path
    shares_disk: ClassVar[bool] = False
    #: cancel and timeout stop a running task (and everything it started)
    interrupts: ClassVar[bool] = True

    listener: ExecutorListener | None = None
    logs: Any = None
    files: Any = None

    @property
    def cores(self) -> int:
        """How many cores' worth of tasks may run at once."""
        raise NotImplementedError

    async def start(self, listener: ExecutorListener, logs: Any, files: Any = None) -> None:
        """Start accepting tasks (workers may still be warming up when this returns).
        ``logs`` is the :class:`~jupyter_jobserver.jobs.logs.JobLogs` that job output
        goes to, ``files`` the :class:`~jupyter_jobserver.jobs.files.JobFiles` that the
        files jobs write go to (see the module docstring)."""
        self.listener = _OnTheLoop(listener, asyncio.get_running_loop())
        self.logs = logs
        self.files = files
        await self.launch()

    async def launch(self) -> None:
        """Start what runs the tasks (called by :meth:`start`)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop every worker; tasks still running are killed and not reported."""
        raise NotImplementedError

    async def stage(self, task: Task) -> None:
        """Prepare a task before it is submitted, off the event loop where it takes time
        (the local executor writes a large payload to a file here)."""

    def submit(self, task: Task) -> None:
        """Queue a task; it starts when cores are free, in the order submitted."""
        raise NotImplementedError

    def cancel(self, job_id: str) -> bool:
        """Drop a queued task or kill a running one; ``False`` if it is not here."""
        raise NotImplementedError

    async def describe(self, scripts: dict[str, str]) -> dict[str, Any]:
        """Describe function scripts (``name -> "module:function"``) in a worker."""
        raise NotImplementedError

    def connections(self) -> int:
        """How many times where the tasks run became usable (a remote cluster reached,
        with a worker); one that is always there: 0, and it never changes."""
        return 0

    async def reconnected(self, seen: int) -> int:
        """Wait until :meth:`connections` is over ``seen`` (a remote cluster reached at
        last, back after it went away, or with workers again), and return it; one that is
        always there never returns. The server describes the scripts again then."""
        while self.connections() <= seen:
            await asyncio.Event().wait()  # nothing ever sets it
        return self.connections()

    def preload(self, modules: list[str]) -> None:
        """Modules to import ahead of the first job, where the executor keeps warm
        workers (a hint: an executor without them ignores it)."""

    def unavailable(self) -> str | None:
        """Why new tasks are refused right now (a remote executor whose cluster cannot
        be reached says so, and the job server answers 503), or ``None``."""
        return None

    def running(self) -> list[str]:
        """Ids of the jobs running now."""
        return []

    def queued(self) -> list[str]:
        """Ids of the jobs waiting, in order."""
        return []

    def status(self) -> dict[str, Any]:
        """What the executor is, for the server's status and its log: at least its
        ``kind``, ``cores`` and ``workers``."""
        return {"kind": type(self).__name__, "cores": self.cores, "workers": None}
