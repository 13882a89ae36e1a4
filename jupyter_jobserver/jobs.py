"""The job service: every operation on jobs, for every front end.

REST handlers, the Python client (through REST), widgets and magics all end here. The
service owns the job state machine and the record; the executor runs processes; the
store keeps records. Nothing here knows about HTTP.

State machine::

    created ──run──▶ queued ──▶ running ──▶ succeeded | failed | cancelled
       └───────────────┴───────────┴──cancel──▶ cancelled

Each transition is one conditional store write ("only if the status is still X"), so a
cancel racing a finish cannot produce a job that is both.
"""

from __future__ import annotations

import asyncio
import builtins
import codecs
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from .errors import (
    Conflict,
    InvalidRequest,
    LimitReached,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from .events import JobEvents, Subscription
from .executor import Executor, Outcome, Task
from .models import (
    ACTIVE,
    FINISHED,
    JobCreate,
    JobDelete,
    JobEdit,
    JobQuery,
    JobRerun,
    Status,
)
from .query import Logical, Node, any_of, parse_filter, parse_sort, utcnow
from .scripts import Script, ScriptRegistry
from .store import RawJSON, ResultFile, StoreRunner
from .users import User

STREAMS = ("stdout", "stderr")
#: largest piece of output one read or one event carries
OUTPUT_CHUNK = 1 << 20


@dataclasses.dataclass
class JobSettings:
    """Limits and defaults, taken from the extension's configuration."""

    default_timeout: float | None = None
    max_timeout: float | None = None
    max_active_jobs_per_user: int = 0
    max_result_bytes: int = 64 << 20
    requeue_on_restart: bool = True
    allow_eval: bool = False
    output_poll_interval: float = 0.2


@dataclasses.dataclass
class _Active:
    """A queued or running job as the service holds it: its whole record (but the
    result), so that starting and finishing it, and answering those who wait for it,
    need no read of the store."""

    job: dict[str, Any]
    stored: bool = True
    started: float | None = None
    #: the result of a job that ended before its record was first written
    result: Any = None

    @property
    def owner(self) -> str:
        return self.job["owner"]


class JobService:
    """Create, run, watch and manage jobs; see the module docstring."""

    def __init__(
        self,
        *,
        store: StoreRunner,
        executor: Executor,
        registry: ScriptRegistry,
        jobs_dir: str,
        settings: JobSettings | None = None,
        events: JobEvents | None = None,
        data: Any = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.registry = registry
        self.jobs_dir = jobs_dir
        self.settings = settings or JobSettings()
        self.events = events or JobEvents()
        self.data = data
        self.log = log or logging.getLogger(__name__)
        self._active: dict[str, _Active] = {}
        self._active_by_owner: dict[str, set[str]] = defaultdict(set)
        self._pending: set[asyncio.Future[Any]] = set()
        self._started = asyncio.Event()
        self.broken: str | None = None
        self._retrying: set[asyncio.Future[Any]] = set()

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Reconcile jobs left over by a previous run, then accept new ones (also when the
        reconciliation fails: new jobs must not wait for ever on old ones)."""
        try:
            await self.reconcile()
        except Exception:
            self.log.exception("jobserver: could not reconcile the jobs of the previous run")
        finally:
            self._started.set()

    async def ready(self) -> None:
        await self._started.wait()
        if self.broken is not None:
            raise Unavailable(self.broken)

    def unavailable(self, reason: str) -> None:
        """The server could not start: every call that needs it says why, at once."""
        self.broken = reason
        self._started.set()

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
                    "error": _error(
                        "ServerStopped",
                        "the server was stopped while the job was running; rerun it",
                    ),
                },
                status_in={Status.running.value},
            )

    async def reconcile(self) -> None:
        """Leave no job ``running`` or ``queued`` from before this server started.

        A job that was running cannot be resumed (its process died with the old server):
        it is failed and says so. A job that was queued never started: it is queued
        again, in its original order (or failed, if ``requeue_on_restart`` is off).
        """
        store = self.store.store
        running = await self.store.read(store.job_ids, _where("status", Status.running.value))
        now = utcnow()
        for job_id in running:
            await self.store.write(
                store.update_job,
                job_id,
                {
                    "status": Status.failed.value,
                    "finished": now,
                    "error": _error(
                        "ServerRestart",
                        "the server stopped while this job was running; rerun it to try again",
                    ),
                },
                status_in={Status.running.value},
            )
        queued, _ = await self.store.read(
            store.find_jobs, _where("status", Status.queued.value), [("queued", 1)], 10**9, 0
        )
        if running or queued:
            self.log.info(
                "jobserver: %d job(s) were running when the server stopped (now failed), "
                "%d were queued (%s)",
                len(running),
                len(queued),
                "queued again" if self.settings.requeue_on_restart else "now failed",
            )
        for job in queued:
            if self.settings.requeue_on_restart:
                await self._enqueue(job)
            else:
                await self._fail_unstarted(
                    job["id"],
                    _error("ServerRestart", "the server stopped before this job could start"),
                )

    # --- create, read, list -----------------------------------------------------------

    async def create(
        self,
        user: User,
        request: JobCreate,
        *,
        rerun_of: str | None = None,
        wait: float | None = None,
    ) -> dict:
        """Create a job (and queue it when ``request.run``); 4xx errors for bad input.

        With ``wait``, a job that runs is returned once it has finished (or ``wait``
        seconds have passed): a quick job then costs a single call.
        """
        await self.ready()
        script = await self._check_request(user, request)
        parameters = script.bind(request.args, request.kwargs) if script else {}
        await self._check_binding(user, script, request.data)
        now = utcnow()
        job: dict[str, Any] = {
            "id": uuid.uuid4().hex,
            "script": script.name if script else None,
            "process": script.process if script else "eval",
            "status": Status.created.value,
            "owner": user.name,
            "public": request.public,
            "tags": list(request.tags),
            "args": request.args,
            "kwargs": request.kwargs,
            "data": request.data.model_dump() if request.data else None,
            "code": request.code if script is None else None,
            "timeout": self._timeout(request.timeout),
            "cores": script.cores if script else 1,
            "created": now,
            "edited": None,
            "queued": None,
            "started": None,
            "finished": None,
            "time_sec": None,
            "result": None,
            "error": None,
            "exit_code": None,
            "progress": None,
            "provenance": {
                "script": script.name if script else None,
                "version": script.version if script else None,
                "parameters": parameters,
            },
            "rerun_of": rerun_of,
        }
        if not request.run:
            await self.store.write(self.store.store.insert_job, job)
            self._announce(job["id"], job["status"], job)
            return job
        self._check_limit(user)
        job["status"] = Status.queued.value
        job["queued"] = now
        with self.events.subscribe(job["id"]) as subscription:
            # the job may start while its record is written, but no answer goes out
            # before the record is safe
            active, inserted = await self._enqueue(job, insert=True)
            assert inserted is not None  # a new job's record is always written
            try:
                await inserted
            except BaseException:
                self.executor.cancel(job["id"])
                self._forget(job["id"])
                raise
            job = {**active.job, "result": None}
            # a job can end before its record is first written (a broken executor fails it
            # at once); then only now can the change be announced
            self._announce(job["id"], job["status"], job)
            if not wait:
                return job
            return await self._until(user, subscription, job, set(FINISHED), wait)

    async def get(self, user: User, job_id: str, *, result: bool = True) -> dict:
        """A job the user may see (their own, a public one, or any for an admin)."""
        # the result stays the JSON text it is stored as: it is only ever sent on
        job = await self.store.read(self.store.store.get_job, job_id, result=result, raw=True)
        if job is None or not user.may_see(job):
            raise NotFound(f"no job with id {job_id!r}")
        return job

    async def wait(self, user: User, job_id: str, timeout: float, until: str | None = None) -> dict:
        """The job once it has finished (or reached status ``until``, e.g. ``running``),
        or as it is after ``timeout`` seconds."""
        targets = set(FINISHED)
        if until is not None:
            order = list(Status.__members__)
            targets |= set(order[order.index(_status("until", until)) :])
        with self.events.subscribe(job_id) as subscription:
            job = await self.get(user, job_id, result=False)
            if job["status"] in targets:
                return await self.get(user, job_id)
            return await self._until(user, subscription, job, targets, timeout)

    async def _until(
        self,
        user: User,
        subscription: Subscription,
        job: dict,
        targets: set[str],
        timeout: float,
    ) -> dict:
        """Follow ``subscription`` until the job's status is one of ``targets``; answer
        with the record the event carries, or read it when the event carries none."""
        deadline = time.monotonic() + max(0.0, timeout)
        status = job["status"]
        while True:
            remaining = deadline - time.monotonic()
            event = await subscription.get(remaining) if remaining > 0 else None
            if event is None:
                break
            status = event.get("status", status)
            if status in targets or status == "deleted":
                carried = event.get("job")
                if carried is not None and "result" in carried:
                    return carried
                break
        return await self.get(user, job["id"])

    async def list(
        self,
        user: User,
        *,
        status: list[str] | None = None,
        script: list[str] | None = None,
        owner: list[str] | None = None,
        tag: list[str] | None = None,
        sort: Any = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict], int]:
        """Jobs the user may see, filtered by simple query parameters."""
        spec = job_filter(status=status, script=script, owner=owner, tag=tag)
        return await self.query(user, JobQuery(filter=spec, sort=sort, limit=limit, offset=offset))

    async def query(self, user: User, request: JobQuery) -> tuple[builtins.list[dict], int]:
        """Jobs the user may see that match a MongoDB-style filter."""
        where = parse_filter(request.filter) if request.filter else None
        sort = parse_sort(request.sort)
        visible = _visibility(user)
        if visible is not None:
            where = visible if where is None else Logical("$and", (visible, where))
        return await self.store.read(
            self.store.store.find_jobs, where, sort, request.limit, request.offset
        )

    # --- change -----------------------------------------------------------------------

    async def edit(self, user: User, job_id: str, request: JobEdit) -> dict:
        """Change a job: what it runs only while ``created``; ``public``/``tags`` always."""
        job = await self._owned(user, job_id)
        changes = request.model_dump(exclude_unset=True)
        if not changes:
            return job
        run_fields = {"args", "kwargs", "data", "timeout"} & set(changes)
        if run_fields:
            if job["status"] != Status.created.value:
                raise Conflict(
                    f"the job is {job['status']}; only a created job can change "
                    f"{', '.join(sorted(run_fields))} (rerun it to run it differently)"
                )
            script = self.registry.get(job["script"]) if job["script"] else None
            args = changes.get("args", job["args"])
            kwargs = changes.get("kwargs", job["kwargs"])
            if script is not None:
                parameters = script.bind(args, kwargs)
                changes["provenance"] = {**job["provenance"], "parameters": parameters}
            if "data" in changes:
                await self._check_binding(user, script, request.data)
            if "timeout" in changes:
                changes["timeout"] = self._timeout(changes["timeout"])
        changes["edited"] = utcnow()
        status_in = {Status.created.value} if run_fields else None
        if not await self.store.write(
            self.store.store.update_job, job_id, changes, status_in=status_in
        ):
            raise Conflict("the job changed while it was being edited; try again")
        active = self._active.get(job_id)
        if active is not None:  # later events and records carry the change
            active.job.update({k: changes[k] for k in ("public", "tags", "edited") if k in changes})
        return await self.get(user, job_id)

    async def run(self, user: User, job_id: str) -> dict:
        """Queue a created job."""
        job = await self._owned(user, job_id)
        if job["status"] != Status.created.value:
            raise Conflict(f"the job is already {job['status']}; rerun it to run it again")
        if job["process"] == "eval":
            self._check_eval(user)
        self._check_limit(user)
        reserved = self._active_by_owner[user.name]
        reserved.add(job_id)  # held across the write below, so the limit cannot be outrun
        now = utcnow()
        changes = {"status": Status.queued.value, "queued": now}
        try:
            ok = await self.store.write(
                self.store.store.update_job, job_id, changes, status_in={Status.created.value}
            )
        finally:
            if job_id not in self._active:
                reserved.discard(job_id)
        if not ok:
            raise Conflict("the job was started or cancelled meanwhile")
        job.update(changes)
        await self._enqueue(job)
        self._announce(job_id, Status.queued.value, job)
        return job

    async def cancel(self, user: User, job_id: str) -> dict:
        """Cancel a job that has not finished; a running one is killed with its children."""
        job = await self._owned(user, job_id)
        if job["status"] in FINISHED:
            raise Conflict(f"the job has already finished ({job['status']})")
        await self._cancel(job, f"cancelled by {user.name}")
        return await self.get(user, job_id)

    async def _cancel(self, job: dict, message: str) -> None:
        job_id = job["id"]
        now = utcnow()
        active = self._active.get(job_id)
        changes: dict[str, Any] = {
            "status": Status.cancelled.value,
            "finished": now,
            "error": _error("Cancelled", message),
        }
        if active and active.started is not None:
            changes["time_sec"] = round(time.time() - active.started, 6)
        ok = await self.store.write(
            self.store.store.update_job,
            job_id,
            changes,
            status_in={Status.created.value, *ACTIVE},
        )
        self.executor.cancel(job_id)
        if ok:
            self._forget(job_id)
            self._announce(job_id, Status.cancelled.value, job)

    async def rerun(self, user: User, job_id: str, request: JobRerun) -> dict:
        """A new job with the same script, parameters and data as an existing one."""
        job = await self.get(user, job_id, result=False)
        binding = job.get("data")
        if binding is not None and self.data is not None:
            await self.data.check_unchanged(user, job, current=request.current_data)
        elif request.current_data:
            raise InvalidRequest("current_data applies to jobs that read a datafile or document")
        new = JobCreate.model_validate(
            {
                "script": job["script"],
                "process": "eval" if job["process"] == "eval" else None,
                "code": job.get("code"),
                "args": job["args"],
                "kwargs": _rerun_kwargs(job),
                "data": binding,
                "run": request.run,
                "public": job["public"] and job["owner"] == user.name,
                "timeout": job.get("timeout"),
                "tags": job.get("tags") or [],
            }
        )
        return await self.create(user, new, rerun_of=job_id)

    async def delete(self, user: User, job_id: str) -> None:
        """Delete a job and its output; a job still running is cancelled first."""
        job = await self._owned(user, job_id)
        await self._delete([job], user)

    async def delete_many(self, user: User, request: JobDelete) -> int:
        """Delete every job of the user's that matches the filter."""
        where = parse_filter(request.filter) if request.filter else None
        mine = Logical("$and", (_where("owner", user.name),) + ((where,) if where else ()))
        ids = await self.store.read(self.store.store.job_ids, mine)
        jobs = [{"id": i, "status": None, "owner": user.name, "public": False} for i in ids]
        return await self._delete(jobs, user)

    async def _delete(self, jobs: builtins.list[dict], user: User) -> int:
        for job in jobs:
            if job["id"] in self._active:
                await self._cancel(job, f"deleted by {user.name}")
        ids = [job["id"] for job in jobs]
        deleted = await self.store.write(self.store.store.delete_jobs, ids)
        await asyncio.to_thread(self._remove_dirs, ids)
        for job in jobs:
            self._announce(job["id"], "deleted", job, kind="deleted")
        return deleted

    def _remove_dirs(self, ids: builtins.list[str]) -> None:
        for job_id in ids:
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    # --- output -----------------------------------------------------------------------

    def job_dir(self, job_id: str) -> str:
        return os.path.join(self.jobs_dir, job_id)

    def output_path(self, job_id: str, stream: str) -> str:
        if stream not in STREAMS:
            raise NotFound(f"no output stream {stream!r}; streams are: {', '.join(STREAMS)}")
        return os.path.join(self.job_dir(job_id), stream)

    async def output(
        self, user: User, job_id: str, stream: str, offset: int = 0, limit: int | None = None
    ) -> OutputSlice:
        """A piece of a job's stream, from byte ``offset`` to what is written now (or
        ``limit`` bytes, ending on a whole character)."""
        job = await self.get(user, job_id, result=False)
        path = self.output_path(job_id, stream)
        if offset < 0:
            raise InvalidRequest("offset must be 0 or more")
        complete = job["status"] in FINISHED
        size = await asyncio.to_thread(_size, path)
        end = max(offset, size)
        if limit is not None and end - offset > limit:
            head = await asyncio.to_thread(_read_chunk, path, offset, limit)
            end = offset + len(head)
            complete = False
        return OutputSlice(path, offset, end, complete and end >= size)

    async def follow(self, user: User, job_id: str) -> AsyncGenerator[dict[str, Any], None]:
        """Events of one job as they happen, ending when the job ends.

        Yields ``status`` (first the current job, then each change), ``progress`` (the
        latest first, if any), ``output`` (new text of a stream, with the byte offset it
        ends at) and finally ``end`` with the finished job.
        """
        with self.events.subscribe(job_id) as subscription:
            job: dict[str, Any] = self._live(await self.get(user, job_id, result=False))
            yield {"event": "status", "job": job}
            if job.get("progress") and job["status"] not in FINISHED:
                yield {"event": "progress", "progress": job["progress"]}
            offsets = dict.fromkeys(STREAMS, 0)
            decoders: dict[str, codecs.IncrementalDecoder] = {
                s: codecs.getincrementaldecoder("utf-8")("replace") for s in STREAMS
            }
            finished = job["status"] in FINISHED
            while True:
                for stream in STREAMS:
                    async for event in self._new_output(job_id, stream, offsets, decoders):
                        yield event
                if finished:
                    break
                change = await subscription.get(self.settings.output_poll_interval)
                while change is not None:
                    if change["event"] == "progress":
                        yield {"event": "progress", "progress": change["progress"]}
                    elif change["event"] == "deleted":
                        yield {"event": "end", "job": None}
                        return
                    elif change["event"] == "status":
                        finished = change["status"] in FINISHED
                        if not finished:
                            job = self._live(await self.get(user, job_id, result=False))
                            yield {"event": "status", "job": job}
                    change = subscription.get_nowait()
            try:
                final: dict[str, Any] | None = await self.get(user, job_id)
            except NotFound:  # deleted as it ended (a delete cancels first)
                final = None
            yield {"event": "end", "job": final}

    def _live(self, job: dict[str, Any]) -> dict[str, Any]:
        """The record as it is now: a queued or running job's latest change (it started,
        it reported progress) may still be on its way to the store; a subscriber is told
        the job's state as it is, not as it was."""
        active = self._active.get(job["id"])
        return {**job, **active.job} if active is not None else job

    async def watch(self, user: User) -> AsyncGenerator[dict[str, Any], None]:
        """Status changes of every job the user may see, as they happen (never ends)."""
        with self.events.subscribe() as subscription:
            while True:
                event = await subscription.get()
                if event is None or event["event"] not in ("status", "deleted"):
                    continue
                if not user.may_see(event):  # events carry the job's owner and public flag
                    continue
                yield {
                    "event": event["event"],
                    "job_id": event["job_id"],
                    "status": event["status"],
                    "script": event.get("script"),
                    "owner": event.get("owner"),
                }

    async def _new_output(
        self,
        job_id: str,
        stream: str,
        offsets: dict[str, int],
        decoders: dict[str, codecs.IncrementalDecoder],
    ) -> AsyncGenerator[dict[str, Any], None]:
        path = os.path.join(self.job_dir(job_id), stream)
        while True:
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                return
            if size <= offsets[stream]:
                return
            chunk = await asyncio.to_thread(_read_chunk, path, offsets[stream], OUTPUT_CHUNK)
            if not chunk:
                return
            offsets[stream] += len(chunk)
            text = decoders[stream].decode(chunk)
            if text:
                yield {"event": "output", "stream": stream, "offset": offsets[stream], "text": text}

    # --- executor listener ------------------------------------------------------------

    def job_started(self, job_id: str) -> None:
        changes = {"status": Status.running.value, "started": utcnow()}
        active = self._active.get(job_id)
        if active is not None:
            active.started = time.time()
            active.job.update(changes)
            if not active.stored:
                return  # the record is about to be written, running already
        future = self.store.write(
            self.store.store.update_job, job_id, changes, status_in={Status.queued.value}
        )
        self._track(
            future,
            lambda: self._announce(job_id, Status.running.value, active, record=active),
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
        self._track(
            future,
            lambda: self.events.publish(job_id, {"event": "progress", "progress": progress}),
        )

    def job_finished(self, job_id: str, outcome: Outcome) -> None:
        active = self._active.get(job_id)
        finished = time.time()
        changes: dict[str, Any] = {
            "status": outcome.status,
            "finished": utcnow(),
            "result": _result(outcome),
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
        self._forget(job_id)
        if active is not None and not active.stored:
            # it ended before its record was written: the first write carries the end
            active.result = changes.pop("result")
            active.job.update(changes)
            return
        future = self.store.write(self.store.store.update_job, job_id, changes, status_in=ACTIVE)
        final = None
        if active is not None:
            final = {**active.job, **changes}
            if outcome.result_file is not None:
                del final["result"]  # those who wait read it from the store
            else:
                final["result"] = None if outcome.result is None else json.loads(outcome.result)
        self._track(
            future,
            lambda: self._announce(job_id, outcome.status, active, record=final),
            failed=lambda exc: self._retry(self._unrecorded(job_id, active, exc)),
        )
        result_file = outcome.result_file
        if result_file is not None:  # the store has a copy once the write is done
            self._track(future, lambda: self._track(asyncio.to_thread(_remove, result_file)))

    def _announce(
        self,
        job_id: str,
        status: str,
        about: dict[str, Any] | _Active | None,
        *,
        record: dict[str, Any] | _Active | None = None,
        kind: str = "status",
    ) -> None:
        """Tell subscribers of a change. ``about`` says whose job it is (so watchers only
        hear of jobs they may see); ``record`` is the record as stored, so that those
        waiting for it need not read it."""
        event: dict[str, Any] = {"event": kind, "status": status}
        if isinstance(about, _Active):
            about = about.job
        if about is not None:
            event["owner"] = about.get("owner")
            event["public"] = bool(about.get("public"))
            event["script"] = about.get("script")
        if isinstance(record, _Active):
            event["job"] = {**record.job, "result": None}
        elif record is not None:
            event["job"] = record
        self.events.publish(job_id, event)

    def _track(
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

    async def _unrecorded(self, job_id: str, active: _Active | None, exc: BaseException) -> None:
        """A job's end could not be written (its result could not be stored, or the disk
        is full): fail it with the reason rather than leave it ``running`` in the store,
        trying again for a while if the store cannot take even that."""
        changes: dict[str, Any] = {
            "status": Status.failed.value,
            "result": None,
            "error": _error(
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
                self._announce(job_id, Status.failed.value, active, record=record)
            return
        self.log.error(
            "jobserver: job %s stays 'running' in the store until the server restarts", job_id
        )

    # --- helpers ----------------------------------------------------------------------

    async def _check_request(self, user: User, request: JobCreate) -> Script | None:
        if request.process == "eval" or (request.code is not None and request.script is None):
            if request.script is not None:
                raise InvalidRequest("an eval job takes code, not a script")
            if request.code is None:
                raise InvalidRequest("an eval job needs code")
            if request.args or request.kwargs:
                raise InvalidRequest("an eval job takes no args or kwargs; bind data instead")
            self._check_eval(user)
            return None
        if request.script is None:
            raise InvalidRequest("missing field 'script' (or 'process': 'eval' with 'code')")
        if request.code is not None:
            raise InvalidRequest("'code' is only for eval jobs")
        await self.registry.ready()
        script = self.registry.get(request.script)
        if request.process is not None and request.process != script.process:
            raise InvalidRequest(
                f"{script.name} is a {script.process} script, not a {request.process} one"
            )
        self.registry.check_cores(script, self.executor.cores)
        return script

    def _check_eval(self, user: User) -> None:
        if not self.settings.allow_eval:
            raise PermissionDenied(
                "eval jobs are disabled on this server; an administrator can enable them "
                "with JobServerApp.allow_eval = True"
            )
        if not user.admin:
            raise PermissionDenied(
                f"only administrators may run eval jobs, and {user.name!r} is not one "
                "(see JobServerApp.admin_users)"
            )

    async def _check_binding(self, user: User, script: Script | None, binding: Any) -> None:
        spec = script.data_parameter if script else {"kind": "any"}
        name = script.name if script else "an eval job"
        if binding is None:
            if script is not None and spec and spec.get("required"):
                raise InvalidRequest(f"{name} needs data: bind a {' or '.join(script.data)}")
            return
        if not spec:
            raise InvalidRequest(f"{name} takes no data")
        if script is not None and binding.type not in script.data:
            raise InvalidRequest(
                f"{name} cannot read {binding.type} data; it accepts: {', '.join(script.data)}"
            )
        if self.data is None:
            raise InvalidRequest("this server has no data service to read bound data from")
        # a job reads data with its owner's own rights (as it will when it runs), so an
        # administrator's job cannot bind someone else's private data
        await self.data.check(User(user.name), script, binding)

    def _timeout(self, requested: float | None) -> float | None:
        timeout = requested if requested is not None else self.settings.default_timeout
        limit = self.settings.max_timeout
        if limit:
            if requested is not None and requested > limit:
                raise InvalidRequest(
                    f"timeout: {requested:g} s is more than this server allows ({limit:g} s)"
                )
            timeout = min(timeout or limit, limit)
        return timeout or None

    def _check_limit(self, user: User) -> None:
        limit = self.settings.max_active_jobs_per_user
        if limit and len(self._active_by_owner.get(user.name, ())) >= limit:
            raise LimitReached(
                f"{user.name} already has {limit} job(s) queued or running, the most this "
                "server allows; wait for one to finish or cancel one"
            )

    async def _owned(self, user: User, job_id: str) -> dict:
        job = await self.get(user, job_id, result=False)
        if not user.may_change(job):
            raise PermissionDenied(
                f"job {job_id} belongs to {job['owner']}; only its owner can change it "
                "(you may rerun it as your own)"
            )
        return job

    async def _enqueue(
        self, job: dict, *, insert: bool = False
    ) -> tuple[_Active, asyncio.Future[Any] | None]:
        """Hand a queued job to the executor.

        With ``insert``, the job is new: its record is written after the executor has
        seen it, so a job that starts at once is stored as ``running`` in one write
        instead of two (and one that fails at once, as ``failed``). The returned future
        is that write.
        """
        job_id = job["id"]
        active = _Active(job={k: v for k, v in job.items() if k != "result"}, stored=not insert)
        self._active[job_id] = active
        self._active_by_owner[job["owner"]].add(job_id)
        problem = self._cannot_run(active.job)
        if problem is None:
            try:
                task = await self._task(active)
            except Exception as exc:
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                problem = _error("DataUnavailable", message)
        if problem is None and self._active.get(job_id) is not active:
            return active, None  # cancelled or deleted while its data was being resolved
        if problem is not None:
            if not insert:
                await self._fail_unstarted(job_id, problem)
                return active, None
            self._forget(job_id)
            active.job.update(status=Status.failed.value, finished=utcnow(), error=problem)
        else:
            self.executor.submit(task)  # it may start, or even end, right here
        if not insert:
            return active, None
        active.stored = True
        record = {**active.job, "result": active.result}
        return active, self.store.write(self.store.store.insert_job, record)

    def _cannot_run(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """Why a queued job cannot run on this server as it is configured now."""
        if job["process"] == "eval" and not self.settings.allow_eval:
            return _error("EvalDisabled", "eval jobs are disabled on this server")
        cores = int(job.get("cores") or 1)
        if cores > self.executor.cores:
            return _error(
                "NotEnoughCores",
                f"the job needs {cores} cores; this server runs at most {self.executor.cores}",
            )
        return None

    async def _fail_unstarted(self, job_id: str, error: dict) -> None:
        active = self._active.get(job_id)
        self._forget(job_id)
        ok = await self.store.write(
            self.store.store.update_job,
            job_id,
            {"status": Status.failed.value, "finished": utcnow(), "error": error},
            status_in=ACTIVE,
        )
        if ok:
            self._announce(job_id, Status.failed.value, active)

    async def _task(self, active: _Active) -> Task:
        job = active.job
        script = self.registry.get(job["script"]) if job["script"] else None
        data = None
        if job.get("data") is not None:
            if self.data is None:
                raise InvalidRequest("this server has no data service")
            data, checksum = await self.data.resolve(job, self.job_dir(job["id"]))
            job["provenance"] = {**(job.get("provenance") or {}), "data": checksum}
            if active.stored:
                await self.store.write(
                    self.store.store.update_job,
                    job["id"],
                    {"provenance": job["provenance"]},
                    status_in={Status.queued.value},
                )
        return Task(
            job_id=job["id"],
            process=job["process"],
            job_dir=self.job_dir(job["id"]),
            target=script.target if script else None,
            file=script.file if script else None,
            code=job.get("code"),
            args=list(job.get("args") or []),
            kwargs=dict(job.get("kwargs") or {}),
            parameters=dict((job.get("provenance") or {}).get("parameters") or {}),
            data=data,
            data_parameter=script.data_parameter if script else None,
            cores=int(job.get("cores") or 1),
            timeout=job.get("timeout"),
            max_result_bytes=self.settings.max_result_bytes,
        )

    def _forget(self, job_id: str) -> None:
        active = self._active.pop(job_id, None)
        if active is not None:
            owned = self._active_by_owner.get(active.owner)
            if owned is not None:
                owned.discard(job_id)
                if not owned:
                    del self._active_by_owner[active.owner]


def _result(outcome: Outcome) -> Any:
    if outcome.result_file is not None:
        return ResultFile(outcome.result_file)
    return None if outcome.result is None else RawJSON(outcome.result)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def _rerun_kwargs(job: dict[str, Any]) -> dict[str, Any]:
    """The job's keyword arguments plus the defaults it ran with, as recorded: a rerun
    gets the values the first run got, even if the script's defaults have changed since."""
    recorded = (job.get("provenance") or {}).get("parameters") or {}
    if job["args"] or not isinstance(recorded, dict):
        return dict(job["kwargs"])  # which recorded values the args filled is not recorded
    defaults = {k: v for k, v in recorded.items() if not k.startswith("*")}
    return {**defaults, **job["kwargs"]}


#: seconds to wait before each attempt to record that a job's end could not be stored
UNRECORDED_RETRIES = (0, 1, 2, 5, 10, 30, *(60,) * 10)


def job_filter(
    *,
    status: list[str] | None = None,
    script: list[str] | None = None,
    owner: list[str] | None = None,
    tag: list[str] | None = None,
) -> dict[str, Any]:
    """The filter that simple query parameters stand for; an unknown status is a 400
    (it would match nothing, or, left out, everything)."""
    for value in status or ():
        _status("status", value)
    return any_of(status=status, script=script, owner=owner, tags=tag)


def _status(field: str, value: str) -> str:
    if value not in Status.__members__:
        known = ", ".join(Status.__members__)
        raise InvalidRequest(f"{field}: unknown status {value!r}; statuses are: {known}")
    return value


def _visibility(user: User) -> Node | None:
    if user.admin:
        return None
    return Logical("$or", (_where("owner", user.name), _where("public", True)))


def _where(field: str, value: Any) -> Node:
    return parse_filter({field: value})


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "detail": None}


@dataclasses.dataclass
class OutputSlice:
    """Bytes ``start`` to ``end`` of one output file; ``complete`` when that is all."""

    path: str
    start: int
    end: int
    complete: bool

    async def read(self, chunk: int = OUTPUT_CHUNK) -> AsyncGenerator[bytes, None]:
        """The bytes, a piece at a time, read off the event loop."""
        position = self.start
        while position < self.end:
            data = await asyncio.to_thread(
                _read_exact, self.path, position, min(chunk, self.end - position)
            )
            if not data:
                return
            position += len(data)
            yield data


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _read_exact(path: str, offset: int, limit: int) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(limit)
    except FileNotFoundError:
        return b""


def _read_chunk(path: str, offset: int, limit: int) -> bytes:
    """Up to ``limit`` bytes from ``offset``, not ending inside a UTF-8 character."""
    data = _read_exact(path, offset, limit)
    if len(data) < limit:
        return data
    lead = len(data) - 1
    while lead > 0 and len(data) - lead < 4 and (data[lead] & 0xC0) == 0x80:
        lead -= 1
    byte = data[lead]
    if byte >= 0xC0:
        width = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
        if len(data) - lead < width and lead > 0:
            return data[:lead]
    return data
