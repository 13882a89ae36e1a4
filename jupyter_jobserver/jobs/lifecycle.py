"""The job life cycle: the jobs being worked on, their state machine, and what the
executor reports about them.

State machine::

    created ──run──▶ queued ──▶ running ──▶ succeeded | failed | cancelled
       └───────────────┴───────────┴──cancel──▶ cancelled

Each transition is one conditional store write ("only if the status is still X"), so a
cancel racing a finish cannot produce a job that is both; once it is stored, the change
goes to the :class:`~jupyter_jobserver.jobs.transitions.Transitions` hook.

The life cycle is the executor's listener. It holds every queued or running job's
record (but the result) in memory, so starting and finishing a job, and answering those
who wait for it, need no read of the store. Queued jobs wait in a
:class:`~.fairqueue.FairQueue` and go to the executor only as it has room for them, so
that no user's many jobs hold up another user's few.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from traitlets import Bool, Float, Int
from traitlets.config import LoggingConfigurable

from ..errors import InvalidRequest
from ..executor import Executor, Outcome, Task
from ..scripts import ScriptRegistry
from ..serialize import DeferredJSON, RawJSON
from ..store import StoreRunner
from ..store.query import parse_filter, utcnow
from ..vocabulary import ACTIVE, Status, error_record
from .events import JobEvents
from .fairqueue import FairQueue
from .policy import JobPolicy
from .transitions import EventStreams, Transitions

#: seconds to wait before each attempt to record that a job's end could not be stored
UNRECORDED_RETRIES = (0, 1, 2, 5, 10, 30, *(60,) * 10)


@dataclasses.dataclass
class ActiveJob:
    """A queued or running job as the life cycle holds it."""

    job: dict[str, Any]
    started: float | None = None

    @property
    def owner(self) -> str:
        return self.job["owner"]


class JobLifecycle(LoggingConfigurable):
    """Queued and running jobs: hand them to the executor, follow what it reports, store
    each change and announce it; see the module docstring."""

    requeue_on_restart = Bool(
        True,
        help="Queue again, at start-up, jobs that were queued when the server stopped "
        "(otherwise they are failed). Jobs that were running are always failed.",
    ).tag(config=True)

    output_poll_interval = Float(
        0.2,
        help="Seconds between looks for new output of a job someone follows.",
    ).tag(config=True)

    dispatch_ahead = Int(
        0,
        help="Queued jobs handed to the executor beyond the ones its cores can run now. "
        "The rest wait in the job server's own queue, which is fair between users; more "
        "here can keep a remote executor busier, at the cost of that fairness.",
    ).tag(config=True)

    def __init__(
        self,
        *,
        store: StoreRunner,
        executor: Executor,
        registry: ScriptRegistry,
        policy: JobPolicy,
        events: JobEvents,
        data: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.executor = executor
        self.registry = registry
        self.policy = policy
        self.events = events
        self.data = data
        self.transitions = Transitions(self.log)
        #: on a shared store: the ids of jobs other live servers hold (reconciliation
        #: leaves them to those servers)
        self.held_elsewhere: Callable[[], Awaitable[set[str]]] | None = None
        self.transitions.add(EventStreams(events))
        self._active: dict[str, ActiveJob] = {}
        self._by_owner: dict[str, set[str]] = defaultdict(set)
        self._pending: set[asyncio.Future[Any]] = set()
        self._retrying: set[asyncio.Future[Any]] = set()
        self._waiting = FairQueue()
        #: jobs handed to the executor (queued there or running), and by whom
        self._handed: dict[str, str] = {}
        self._handed_by: dict[str, int] = defaultdict(int)
        self._pumping = False

    # --- the active table ---------------------------------------------------------------

    def get(self, job_id: str) -> ActiveJob | None:
        return self._active.get(job_id)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._active

    def active_count(self, owner: str) -> int:
        """Jobs of ``owner`` queued or running here (or reserved to be)."""
        return len(self._by_owner.get(owner, ()))

    def reserve(self, owner: str, job_id: str) -> None:
        """Count a job against its owner's limit before it is queued, so that concurrent
        requests cannot outrun the limit; :meth:`release` undoes it if it never is."""
        self._by_owner[owner].add(job_id)

    def release(self, owner: str, job_id: str) -> None:
        if job_id not in self._active:
            self._discard_owned(owner, job_id)

    def forget(self, job_id: str) -> None:
        active = self._active.pop(job_id, None)
        if active is not None:
            self._discard_owned(active.owner, job_id)

    def _discard_owned(self, owner: str, job_id: str) -> None:
        owned = self._by_owner.get(owner)
        if owned is not None:
            owned.discard(job_id)
            if not owned:
                del self._by_owner[owner]

    # --- start and stop -----------------------------------------------------------------

    async def reconcile(self) -> None:
        """Leave no job ``running`` or ``queued`` from before this server started.

        A job that was running cannot be resumed (its process died with the old server):
        it is failed and says so. A job that was queued never started: it is queued
        again, in its original order (or failed, if ``requeue_on_restart`` is off).
        """
        store = self.store.store
        held = await self.held_elsewhere() if self.held_elsewhere is not None else set()
        running = await self.store.read(store.job_ids, _where("status", Status.running.value))
        running = [job_id for job_id in running if job_id not in held]
        now = utcnow()
        for job_id in running:
            await self.store.write(
                store.update_job,
                job_id,
                {
                    "status": Status.failed.value,
                    "finished": now,
                    "error": error_record(
                        "ServerRestart",
                        "the server stopped while this job was running; rerun it to try again",
                    ),
                },
                status_in={Status.running.value},
            )
        queued, _ = await self.store.read(
            store.find_jobs, _where("status", Status.queued.value), [("queued", 1)], 10**9, 0
        )
        queued = [job for job in queued if job["id"] not in held]
        if running or queued:
            self.log.info(
                "jobserver: %d job(s) were running when the server stopped (now failed), "
                "%d were queued (%s)",
                len(running),
                len(queued),
                "queued again" if self.requeue_on_restart else "now failed",
            )
        for job in queued:
            if self.requeue_on_restart:
                await self.enqueue(job)
            else:
                await self.fail_unstarted(
                    job["id"],
                    error_record("ServerRestart", "the server stopped before this job could start"),
                )

    async def stop(self) -> None:
        """Stop the executor; jobs it was running are failed with the reason."""
        for retrying in list(self._retrying):
            retrying.cancel()
        running = self.executor.running()
        await self.executor.stop()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        now = utcnow()
        for job_id in running:
            await self.store.write(
                self.store.store.update_job,
                job_id,
                {
                    "status": Status.failed.value,
                    "finished": now,
                    "error": error_record(
                        "ServerStopped",
                        "the server was stopped while the job was running; rerun it",
                    ),
                },
                status_in={Status.running.value},
            )

    # --- queueing -----------------------------------------------------------------------

    async def enqueue(
        self, job: dict, *, insert: bool = False
    ) -> tuple[ActiveJob, asyncio.Future[Any] | None]:
        """Hand a queued job to the executor.

        With ``insert``, the job is new: its record is written first (and the change
        announced), and only then is it handed to the executor, so no job ever runs
        without a record. The job counts against its owner's limit from the first
        moment, and is let go of on every path that does not queue it. The returned
        future (with ``insert``) is that write, already done.
        """
        job_id = job["id"]
        owner = job["owner"]
        self._by_owner[owner].add(job_id)  # no await before this: the limit holds
        written: asyncio.Future[Any] | None = None
        if insert:
            try:
                await self.store.write(self.store.store.insert_job, job)
            except BaseException:
                self._discard_owned(owner, job_id)
                raise
            written = asyncio.get_running_loop().create_future()
            written.set_result(None)
        active = ActiveJob(job={k: v for k, v in job.items() if k != "result"})
        self._active[job_id] = active
        if insert:
            self.announce(job_id, None, job["status"], job)
        try:
            if await self._queue(active):
                self._pump()  # it may start, or even end, right here
        except BaseException:
            # interrupted (the server stops, the request is cancelled): the job is let go
            # of, and its record does not stay queued
            self.forget(job_id)
            self.executor.cancel(job_id)
            self.track(
                self.fail_unstarted(
                    job_id, error_record("NotQueued", "the job could not be queued")
                )
            )
            raise
        return active, written

    async def enqueue_stored(self, jobs: list[dict[str, Any]]) -> None:
        """Hand many queued jobs, already in the store, to the executor in one go (a
        sweep): each goes to the fair queue, and the executor gets what it has room for."""
        for job in jobs:
            job_id = job["id"]
            active = ActiveJob(job={k: v for k, v in job.items() if k != "result"})
            self._active[job_id] = active
            self._by_owner[job["owner"]].add(job_id)
        for job in jobs:
            current = self._active.get(job["id"])
            if current is not None:  # else cancelled meanwhile
                await self._queue(current)
        self._pump()

    async def _queue(self, active: ActiveJob) -> bool:
        """Put an active job in the fair queue once its task is ready; a job that cannot
        run (too many cores, its data gone) fails without starting. ``False`` when it
        was not queued (it failed, or was cancelled while its data was resolved)."""
        job_id = active.job["id"]
        problem = self.policy.cannot_run(active.job, self.executor.cores)
        if problem is None:
            try:
                task = await self._task(active)
            except Exception as exc:
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                problem = error_record("DataUnavailable", message)
        if problem is not None:
            await self.fail_unstarted(job_id, problem)
            return False
        if self._active.get(job_id) is not active:
            return False  # cancelled or deleted while its data was resolved
        self._waiting.push(active.owner, task)
        return True

    def withhold(self, job_ids: list[str]) -> None:
        """Make sure none of these jobs starts from now on: take them out of the fair
        queue, and back from the executor where they wait there. (They stay active until
        they are cancelled; running ones keep running until then.)"""
        self._waiting.remove(job_ids)
        waiting_there = set(self.executor.queued())
        for job_id in job_ids:
            if job_id in waiting_there and self.executor.cancel(job_id):
                self._taken_back(job_id)
        self._pump()

    def _pump(self) -> None:
        """Hand waiting jobs to the executor while it has room, fairly between owners."""
        if self._pumping:
            return  # called back from inside submit: the loop below goes on
        self._pumping = True
        try:
            room = self.executor.cores + self.dispatch_ahead
            load = self._handed_by.__getitem__
            while len(self._handed) < room and self._waiting:
                task = self._waiting.pop(load)
                if task is None:
                    break
                active = self._active.get(task.job_id)
                if active is None:
                    continue
                self._handed[task.job_id] = active.owner
                self._handed_by[active.owner] += 1
                try:
                    self.executor.submit(task)
                except Exception as exc:
                    # this task alone cannot reach a worker (its payload does not pickle,
                    # say): it fails, and the executor and the queue go on
                    self.log.exception("jobserver: the executor refused job %s", task.job_id)
                    self._taken_back(task.job_id)
                    problem = error_record(
                        "NotQueued", f"the executor could not take the job: {exc}"
                    )
                    self.track(self.fail_unstarted(task.job_id, problem))
        finally:
            self._pumping = False

    def _taken_back(self, job_id: str) -> None:
        """A job handed to the executor has left it (it ended, or was cancelled)."""
        owner = self._handed.pop(job_id, None)
        if owner is not None:
            left = self._handed_by[owner] - 1
            if left > 0:
                self._handed_by[owner] = left
            else:
                del self._handed_by[owner]

    async def _task(self, active: ActiveJob) -> Task:
        """What the executor gets: the process's own fields, the data as content or a
        reference the executor can read (never a path of the server's that it cannot)."""
        job = active.job
        script = self.registry.get(job["script"]) if job["script"] else None
        data = None
        if job.get("data") is not None:
            if self.data is None:
                raise InvalidRequest("this server has no data service")
            data, checksum = await self.data.resolve(job, by_reference=self.executor.shares_disk)
            job["provenance"] = {**(job.get("provenance") or {}), "data": checksum}
            await self.store.write(
                self.store.store.update_job,
                job["id"],
                {"provenance": job["provenance"]},
                status_in={Status.queued.value},
            )
        task = Task(
            job_id=job["id"],
            process=job["process"],
            spec=script.spec if script else {"code": job.get("code")},
            args=list(job.get("args") or []),
            kwargs=dict(job.get("kwargs") or {}),
            parameters=dict((job.get("provenance") or {}).get("parameters") or {}),
            data=data,
            data_parameter=script.data_parameter if script else None,
            cores=int(job.get("cores") or 1),
            timeout=job.get("timeout"),
            max_result_bytes=self.policy.max_result_size,
            max_files_bytes=self.policy.max_files_size,
        )
        await self.executor.stage(task)
        return task

    async def fail_unstarted(self, job_id: str, error: dict) -> None:
        active = self._active.get(job_id)
        self._waiting.remove([job_id])
        self.forget(job_id)
        ok = await self.store.write(
            self.store.store.update_job,
            job_id,
            {"status": Status.failed.value, "finished": utcnow(), "error": error},
            status_in=ACTIVE,
        )
        if ok:
            self.announce(job_id, Status.queued.value, Status.failed.value, active)

    async def cancel(self, job: dict, message: str) -> None:
        """Cancel a job that has not finished; a running one is killed with its children."""
        job_id = job["id"]
        active = self._active.get(job_id)
        changes: dict[str, Any] = {
            "status": Status.cancelled.value,
            "finished": utcnow(),
            "error": error_record("Cancelled", message),
        }
        if active and active.started is not None:
            changes["time_sec"] = round(time.time() - active.started, 6)
        start = active.job["status"] if active else job.get("status")
        withheld = self._waiting.take(job_id)  # it must not start while this is written
        try:
            ok = await self.store.write(
                self.store.store.update_job,
                job_id,
                changes,
                status_in={Status.created.value, *ACTIVE},
            )
        except BaseException:
            if withheld is not None and job_id in self._active:
                self._waiting.push(*withheld)  # not cancelled: it waits as before
            raise
        self.executor.cancel(job_id)
        self._taken_back(job_id)
        self._pump()
        if ok:
            self.forget(job_id)
            self.announce(job_id, start, Status.cancelled.value, job)

    # --- the executor's listener ----------------------------------------------------------

    def job_started(self, job_id: str) -> None:
        changes = {"status": Status.running.value, "started": utcnow()}
        active = self._active.get(job_id)
        if active is not None:
            active.started = time.time()
            active.job.update(changes)
        future = self.store.write(
            self.store.store.update_job, job_id, changes, status_in={Status.queued.value}
        )
        self.track(
            future,
            lambda: self.announce(
                job_id, Status.queued.value, Status.running.value, active, record=active
            ),
        )

    def job_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        active = self._active.get(job_id)
        if active is not None:
            active.job["progress"] = progress
        future = self.store.write(
            self.store.store.update_job,
            job_id,
            {"progress": progress},
            status_in={Status.running.value},
        )
        # like status changes, progress is announced once the record has it
        self.track(
            future,
            lambda: self.events.publish(job_id, {"event": "progress", "progress": progress}),
        )

    def job_finished(self, job_id: str, outcome: Outcome) -> None:
        self._taken_back(job_id)
        try:
            self._job_finished(job_id, outcome)
        finally:
            self._pump()  # its place goes to the next job, whoever's turn it is

    def _job_finished(self, job_id: str, outcome: Outcome) -> None:
        active = self._active.get(job_id)
        finished = time.time()
        result = outcome.result
        changes: dict[str, Any] = {
            "status": outcome.status,
            "finished": utcnow(),
            "result": RawJSON(result) if isinstance(result, str) else result,
            "error": outcome.error,
            "exit_code": outcome.exit_code,
        }
        if active is not None and active.started is not None:
            changes["time_sec"] = round(finished - active.started, 6)
        if outcome.progress is not None:
            changes["progress"] = outcome.progress
        if active is not None and outcome.provenance:
            # what the worker actually ran wins over what the registry said at creation
            before = active.job.get("provenance", {})
            changes["provenance"] = {**before, **outcome.provenance}
            if "parameters" in outcome.provenance:
                changes["provenance"]["parameters"] = {
                    **(before.get("parameters") or {}),
                    **outcome.provenance["parameters"],
                }
        self.forget(job_id)
        future = self.store.write(self.store.store.update_job, job_id, changes, status_in=ACTIVE)
        final = None
        if active is not None:
            final = {**active.job, **changes}
            if isinstance(result, DeferredJSON):
                del final["result"]  # those who wait read it from the store
            else:
                final["result"] = None if result is None else json.loads(result)
        self.track(
            future,
            lambda: self.announce(
                job_id, Status.running.value, outcome.status, active, record=final
            ),
            failed=lambda exc: self._retry(self._unrecorded(job_id, active, exc)),
        )
        if isinstance(result, DeferredJSON):  # the store has a copy once the write is done
            self.track(future, lambda: self.track(asyncio.to_thread(result.release)))

    # --- announcing -----------------------------------------------------------------------

    def announce(
        self,
        job_id: str,
        start: str | None,
        finish: str,
        about: dict[str, Any] | ActiveJob | None,
        *,
        record: dict[str, Any] | ActiveJob | None = None,
    ) -> None:
        """Tell the transition plugins of a stored change. ``about`` says whose job it is
        (so watchers only hear of jobs they may see); ``record`` is the record as stored,
        so that those waiting for it need not read it."""
        if isinstance(about, ActiveJob):
            about = about.job
        if isinstance(record, ActiveJob):
            record = {**record.job, "result": None}
        self.transitions.emit(job_id, start, finish, about, record)

    def track(
        self,
        future: Any,
        then: Callable[[], Any] | None = None,
        failed: Callable[[BaseException], Any] | None = None,
    ) -> None:
        """Keep a store write (or other work) alive, log its failure (and call ``failed``),
        and call ``then`` once it has succeeded (a write that changed nothing does not
        count)."""
        future = asyncio.ensure_future(future)
        self._pending.add(future)

        def done(f: asyncio.Future[Any]) -> None:
            self._pending.discard(f)
            if f.cancelled():
                return
            exc = f.exception()
            if exc is not None:
                self.log.error("jobserver: could not record a job change: %s", exc, exc_info=exc)
                if failed is not None:
                    failed(exc)
            elif then is not None and f.result() is not False:
                then()

        future.add_done_callback(done)

    def _retry(self, work: Awaitable[Any]) -> None:
        """Run ``work`` (which may wait a long while) until it ends or the server stops."""
        task = asyncio.ensure_future(work)
        self._retrying.add(task)
        task.add_done_callback(self._retrying.discard)

    async def _unrecorded(self, job_id: str, active: ActiveJob | None, exc: BaseException) -> None:
        """A job's end could not be written (its result could not be stored, or the disk
        is full): fail it with the reason rather than leave it ``running`` in the store,
        trying again for a while if the store cannot take even that."""
        changes: dict[str, Any] = {
            "status": Status.failed.value,
            "result": None,
            "error": error_record(
                "UnrecordedOutcome",
                f"the job ended but its outcome could not be stored: {type(exc).__name__}: {exc}",
            ),
        }
        for delay in UNRECORDED_RETRIES:
            await asyncio.sleep(delay)
            changes["finished"] = utcnow()
            try:
                written = await self.store.write(
                    self.store.store.update_job, job_id, changes, status_in=ACTIVE
                )
            except Exception as again:
                self.log.warning(
                    "jobserver: job %s: its end still cannot be stored: %s", job_id, again
                )
                continue
            if written:
                record = {**active.job, **changes} if active is not None else None
                self.announce(
                    job_id, Status.running.value, Status.failed.value, active, record=record
                )
            return
        self.log.error(
            "jobserver: job %s stays 'running' in the store until the server restarts", job_id
        )


def _where(field: str, value: Any) -> Any:
    return parse_filter({field: value})
