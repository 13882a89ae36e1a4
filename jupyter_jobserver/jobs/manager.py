"""The job manager: every operation on jobs, for every front end.

REST handlers, the Python client (through REST), widgets and magics all end here. The
manager checks requests and answers them; it composes

* :class:`~.policy.JobPolicy`, the limits and permissions,
* :class:`~.lifecycle.JobLifecycle`, the jobs being worked on and their state machine,
* :class:`~.logs.JobLogs`, the jobs' captured output,
* :class:`~.files.JobFiles`, the files the jobs wrote,

over the store (records), the executor (where processes run) and the script registry.
Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from traitlets.config import LoggingConfigurable

from ..disclosure import job_view, may_read_stream
from ..errors import Conflict, InvalidRequest, NotFound, PermissionDenied, Unavailable
from ..executor import Executor
from ..limits import check_json
from ..models import JobCreate, JobDelete, JobEdit, JobQuery, JobRerun
from ..processes import get_process
from ..runtime.files import RUNNER_FILES
from ..scripts import Script, ScriptRegistry
from ..store import StoreRunner
from ..store.query import any_of, narrowed, parse_filter, parse_sort, utcnow
from ..users import User
from ..vocabulary import FINISHED, STATUSES, Status
from .events import JobEvents, Subscription
from .files import FILE_CHUNK, FolderJobFiles, JobFiles, check_path
from .idempotency import IdempotencyKeys
from .lifecycle import JobLifecycle
from .logs import JobLogs, OutputFollower, OutputSlice, check_stream, whole_characters
from .policy import JobPolicy
from .retention import JobRetention


class JobManager(LoggingConfigurable):
    """Create, run, watch and manage jobs; see the module docstring."""

    def __init__(
        self,
        *,
        store: StoreRunner,
        executor: Executor,
        registry: ScriptRegistry,
        logs: JobLogs,
        files: JobFiles | None = None,
        data: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.executor = executor
        self.registry = registry
        self.logs = logs
        self.files = files or FolderJobFiles(parent=self, root=getattr(logs, "root", ""))
        self.data = data
        self.events = JobEvents()
        self.policy = JobPolicy(parent=self)
        self.lifecycle = JobLifecycle(
            parent=self,
            store=store,
            executor=executor,
            registry=registry,
            policy=self.policy,
            events=self.events,
            data=data,
        )
        self.retention = JobRetention(parent=self, manager=self)
        self.keys = IdempotencyKeys(store)
        self._started = asyncio.Event()
        self.broken: str | None = None
        self._creating: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    # --- start and stop -----------------------------------------------------------------

    async def start(self) -> None:
        """Reconcile jobs left over by a previous run, then accept new ones (also when the
        reconciliation fails: new jobs must not wait for ever on old ones)."""
        try:
            await self.lifecycle.reconcile()
        except Exception:
            self.log.exception("jobserver: could not reconcile the jobs of the previous run")
        finally:
            self._started.set()
        self.retention.start()

    async def ready(self) -> None:
        await self._started.wait()
        if self.broken is not None:
            raise Unavailable(self.broken)

    def unavailable(self, reason: str) -> None:
        """The server could not start: every call that needs it says why, at once."""
        self.broken = reason
        self._started.set()

    async def stop(self) -> None:
        await self.retention.stop()
        await self.lifecycle.stop()

    def check_executor(self) -> None:
        """A 503, before anything is reserved, while the executor refuses new tasks (its
        cluster cannot be reached): the reason says when to try again."""
        reason = self.executor.unavailable()
        if reason is not None:
            raise Unavailable(reason)

    # --- create, read, list -------------------------------------------------------------

    async def create(
        self,
        user: User,
        request: JobCreate,
        *,
        rerun_of: str | None = None,
        wait: float | None = None,
        job_id: str | None = None,
    ) -> dict:
        """Create a job (and queue it when ``request.run``); 4xx errors for bad input.

        With ``wait``, a job that runs is returned once it has finished (or ``wait``
        seconds have passed): a quick job then costs a single call. ``job_id`` is the new
        job's id when it was chosen beforehand (an idempotency key was claimed for it).
        """
        await self.ready()
        _check_values(request)
        script = await self._check_request(user, request)
        parameters = script.bind(request.args, request.kwargs) if script else {}
        await self._check_binding(user, script, request.data)
        now = utcnow()
        job: dict[str, Any] = {
            "id": job_id or uuid.uuid4().hex,
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
            "timeout": self.policy.timeout(request.timeout),
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
            "sweep": None,
            "sweep_index": None,
        }
        lifecycle = self.lifecycle
        if not request.run:
            async with self.counted(user):
                await self.store.write(self.store.store.insert_job, job)
            lifecycle.announce(job["id"], None, job["status"], job)
            return job
        self.check_executor()
        job["status"] = Status.queued.value
        job["queued"] = now
        with self.events.subscribe(job["id"]) as subscription:
            async with self.counted(user):
                admitted = await self._admit(user, job["id"])
                try:
                    # no await between the check and enqueue's reservation: the limit holds
                    if not admitted:  # else the store counted it, for every server
                        self.policy.check_active(user, lifecycle.active_count(user.name))
                    # the record is written before the executor sees it: none runs unrecorded
                    active, _ = await lifecycle.enqueue(job, insert=True)
                except BaseException:
                    if admitted:
                        await self.store.write(self.store.store.release_active, [job["id"]])
                    raise
            job = {**active.job, "result": None}
            if not wait:
                return job
            return await self._until(user, subscription, job, set(FINISHED), wait)

    async def _admit(self, user: User, job_id: str) -> bool:
        """On a shared store, count the job among its owner's active jobs in the store
        itself, atomically, so that servers sharing it cannot together outrun the limit
        (a 429 when it is reached). ``True`` when the job was counted there: then the
        store's count is the one that holds (this server's own may lag behind a job
        another server cancelled)."""
        limit = self.policy.limits(user).max_active_jobs
        store = self.store.store
        if not limit or not store.shared:
            return False
        if not await self.store.write(store.admit_active, user.name, job_id, limit, utcnow()):
            self.policy.check_active(user, limit)
        return True

    @contextlib.asynccontextmanager
    async def counted(self, user: User, adding: int = 1) -> AsyncIterator[None]:
        """Hold the user's total-jobs limit across the first write of ``adding`` new jobs
        (one job, or a sweep's): the jobs are counted in the store, and one user's
        creations are taken one at a time while the limit is on, so that concurrent
        requests cannot outrun it."""
        if not self.policy.limits(user).max_jobs:
            yield
            return
        async with self._creating[user.name]:
            mine = parse_filter({"owner": user.name})
            _, total = await self.store.read(
                self.store.store.find_jobs, mine, [("created", -1)], 1, 0
            )
            self.policy.check_total(user, total, adding)
            yield

    async def create_once(
        self, user: User, request: JobCreate, key: str, *, wait: float | None = None
    ) -> tuple[dict, bool]:
        """:meth:`create`, once per ``Idempotency-Key``: the same key again answers with
        the job the first request made (and ``False``: nothing new was made)."""
        return await self.keys.once(
            user,
            key,
            "job",
            request,
            lambda job_id: self.create(user, request, wait=wait, job_id=job_id),
            lambda job_id: self.get(user, job_id),
        )

    async def get(self, user: User, job_id: str, *, result: bool = True) -> dict:
        """A job the user may see (their own, a public one, or any for an admin)."""
        # the result stays the JSON text it is stored as: it is only ever sent on
        job = await self.store.read(self.store.store.get_job, job_id, result=result, raw=True)
        if job is None or not user.may_see(job):
            raise NotFound(f"no job with id {job_id!r}")
        return job_view(user, job)

    async def wait(self, user: User, job_id: str, timeout: float, until: str | None = None) -> dict:
        """The job once it has finished (or reached status ``until``, e.g. ``running``),
        or as it is after ``timeout`` seconds."""
        targets = set(FINISHED)
        if until is not None:
            targets |= set(STATUSES[STATUSES.index(_status("until", until)) :])
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
                    return job_view(user, carried)
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
        where = narrowed(where, user.visible_filter())
        sort = parse_sort(request.sort)
        jobs, total = await self.store.read(
            self.store.store.find_jobs, where, sort, request.limit, request.offset
        )
        return [job_view(user, job) for job in jobs], total

    # --- change -------------------------------------------------------------------------

    async def edit(self, user: User, job_id: str, request: JobEdit) -> dict:
        """Change a job: what it runs only while ``created``; ``public``/``tags`` always."""
        job = await self._owned(user, job_id)
        changes = request.model_dump(exclude_unset=True)
        if not changes:
            return job
        _check_values(request)
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
                changes["timeout"] = self.policy.timeout(changes["timeout"])
        changes["edited"] = utcnow()
        status_in = {Status.created.value} if run_fields else None
        if not await self.store.write(
            self.store.store.update_job, job_id, changes, status_in=status_in
        ):
            raise Conflict("the job changed while it was being edited; try again")
        active = self.lifecycle.get(job_id)
        if active is not None:  # later events and records carry the change
            active.job.update({k: changes[k] for k in ("public", "tags", "edited") if k in changes})
        return await self.get(user, job_id)

    async def run(self, user: User, job_id: str) -> dict:
        """Queue a created job."""
        job = await self._owned(user, job_id)
        if job["status"] != Status.created.value:
            raise Conflict(f"the job is already {job['status']}; rerun it to run it again")
        if job["process"] == "eval":
            self.policy.check_eval(user)
        lifecycle = self.lifecycle
        self.check_executor()
        admitted = await self._admit(user, job_id)
        ok = False
        try:
            if not admitted:
                self.policy.check_active(user, lifecycle.active_count(user.name))
            lifecycle.reserve(user.name, job_id)  # held across the write, so the limit holds
            changes = {"status": Status.queued.value, "queued": utcnow()}
            try:
                ok = await self.store.write(
                    self.store.store.update_job, job_id, changes, status_in={Status.created.value}
                )
            finally:
                lifecycle.release(user.name, job_id)
        finally:
            if admitted and not ok:
                await self.store.write(self.store.store.release_active, [job_id])
        if not ok:
            raise Conflict("the job was started or cancelled meanwhile")
        job.update(changes)
        await lifecycle.enqueue(job)
        lifecycle.announce(job_id, Status.created.value, Status.queued.value, job)
        return job

    async def cancel(self, user: User, job_id: str) -> dict:
        """Cancel a job that has not finished; a running one is killed with its children."""
        job = await self._owned(user, job_id)
        if job["status"] in FINISHED:
            raise Conflict(f"the job has already finished ({job['status']})")
        await self.lifecycle.cancel(job, f"cancelled by {user.name}")
        return await self.get(user, job_id)

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
        mine = narrowed(where, {"owner": user.name})
        ids = await self.store.read(self.store.store.job_ids, mine)
        jobs = [{"id": i, "status": None, "owner": user.name, "public": False} for i in ids]
        return await self._delete(jobs, user)

    async def _delete(self, jobs: builtins.list[dict], user: User) -> int:
        for job in jobs:
            if job["id"] in self.lifecycle:
                await self.lifecycle.cancel(job, f"deleted by {user.name}")
        ids = [job["id"] for job in jobs]
        deleted = await self.store.write(self.store.store.delete_jobs, ids)
        await asyncio.to_thread(self.logs.delete, ids)
        await asyncio.to_thread(self.files.delete, ids)
        for job in jobs:
            self.lifecycle.announce(job["id"], job.get("status"), "deleted", job)
        return deleted

    async def remove_finished(self, jobs: builtins.list[dict]) -> int:
        """Remove finished jobs with their output and files (for retention: no user asks,
        and none of them is running, so there is nothing to cancel)."""
        jobs = [
            job for job in jobs if job["status"] in FINISHED and job["id"] not in self.lifecycle
        ]
        ids = [job["id"] for job in jobs]
        if not ids:
            return 0
        deleted = await self.store.write(self.store.store.delete_jobs, ids)
        await asyncio.to_thread(self.logs.delete, ids)
        await asyncio.to_thread(self.files.delete, ids)
        for job in jobs:
            self.lifecycle.announce(job["id"], job["status"], "deleted", job)
        return deleted

    # --- output -------------------------------------------------------------------------

    async def output(
        self, user: User, job_id: str, stream: str, offset: int = 0, limit: int | None = None
    ) -> OutputSlice:
        """A piece of a job's stream, from byte ``offset`` to what is written now (or
        ``limit`` bytes, ending on a whole character)."""
        job = await self.get(user, job_id, result=False)
        check_stream(stream)
        if not may_read_stream(user, job, stream):
            raise PermissionDenied(
                f"only the owner of job {job_id} and administrators may read its {stream}"
            )
        if offset < 0:
            raise InvalidRequest("offset must be 0 or more")
        complete = job["status"] in FINISHED
        size = await asyncio.to_thread(self.logs.size, job_id, stream)
        end = max(offset, size)
        if limit is not None and end - offset > limit:
            head = await asyncio.to_thread(self.logs.read, job_id, stream, offset, limit)
            end = offset + len(whole_characters(head, limit))
            complete = False
        return OutputSlice(self.logs, job_id, stream, offset, end, complete and end >= size)

    async def follow(self, user: User, job_id: str) -> AsyncGenerator[dict[str, Any], None]:
        """Events of one job as they happen, ending when the job ends.

        Yields ``status`` (first the current job, then each change), ``progress`` (the
        latest first, if any), ``output`` (new text of a stream, with the byte offset it
        ends at) and finally ``end`` with the finished job.
        """
        with self.events.subscribe(job_id) as subscription:
            job: dict[str, Any] = self._live(user, await self.get(user, job_id, result=False))
            yield {"event": "status", "job": job}
            if job.get("progress") and job["status"] not in FINISHED:
                yield {"event": "progress", "progress": job["progress"]}
            output = OutputFollower(self.logs, job_id)
            finished = job["status"] in FINISHED
            poll = self.lifecycle.output_poll_interval
            while True:
                async for event in output.new_output():
                    if may_read_stream(user, job, event.get("stream", "")):
                        yield event
                if finished:
                    break
                change = await subscription.get(poll)
                while change is not None:
                    if change["event"] == "progress":
                        yield {"event": "progress", "progress": change["progress"]}
                    elif change["event"] == "deleted":
                        yield {"event": "end", "job": None}
                        return
                    elif change["event"] == "status":
                        finished = change["status"] in FINISHED
                        if not finished:
                            job = self._live(user, await self.get(user, job_id, result=False))
                            yield {"event": "status", "job": job}
                    change = subscription.get_nowait()
            try:
                final: dict[str, Any] | None = await self.get(user, job_id)
            except NotFound:  # deleted as it ended (a delete cancels first)
                final = None
            yield {"event": "end", "job": final}

    # --- files --------------------------------------------------------------------------

    async def files_of(self, user: User, job_id: str) -> builtins.list[dict]:
        """The files a job wrote: once it has ended, those of its provenance, with size
        and sha256; while it runs, what is in its folder now (sizes only)."""
        job = await self.get(user, job_id, result=False)
        if job["status"] in FINISHED:
            return _recorded_files(job)
        if job["status"] == Status.created.value:
            return []
        skip = _skipped(job)
        return await asyncio.to_thread(self.files.list, job_id, skip)

    async def file(self, user: User, job_id: str, path: str) -> JobFile:
        """One file of a job, to be read a piece at a time: a 400 for a path that
        leaves the job's folder, a 404 for a file the job did not write."""
        check_path(path)
        job = await self.get(user, job_id, result=False)
        missing = NotFound(f"job {job_id} has no file {path!r}")
        if job["status"] in FINISHED:
            entry = next((f for f in _recorded_files(job) if f["path"] == path), None)
            if entry is None:
                raise missing
        elif job["status"] == Status.created.value or path.split("/")[0] in _skipped(job):
            raise missing
        else:
            entry = {"path": path, "sha256": None}
        try:
            size = await asyncio.to_thread(self.files.size, job_id, path)
        except (NotFound, OSError):
            raise missing from None
        return JobFile(self.files, job_id, path, size, entry.get("sha256"))

    def _live(self, user: User, job: dict[str, Any]) -> dict[str, Any]:
        """The record as it is now: a queued or running job's latest change (it started,
        it reported progress) may still be on its way to the store; a subscriber is told
        the job's state as it is, not as it was."""
        active = self.lifecycle.get(job["id"])
        return job_view(user, {**job, **active.job}) if active is not None else job

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
                    "sweep": event.get("sweep"),  # so a list of sweeps can follow new ones
                }

    # --- checks -------------------------------------------------------------------------

    async def _check_request(self, user: User, request: JobCreate) -> Script | None:
        """The script a request runs (``None`` for an eval job), once the request is
        known to be one its process can take."""
        kind = request.process
        if kind is None:
            kind = "eval" if request.code is not None and request.script is None else None
        process = get_process(kind) if kind is not None else None
        if process is not None and not process.has_scripts:
            process.check_request(request)
            self.policy.check_eval(user)
            return None
        if request.script is None:
            raise InvalidRequest("missing field 'script' (or 'process': 'eval' with 'code')")
        if request.code is not None:
            raise InvalidRequest("'code' is only for eval jobs")
        await self.registry.ready()
        script = self.registry.get(request.script)
        if process is not None and process.name != script.process:
            raise InvalidRequest(
                f"{script.name} is a {script.process} script, not a {process.name} one"
            )
        self.policy.check_cores(script.name, script.cores, self.executor.cores)
        return script

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

    async def _owned(self, user: User, job_id: str) -> dict:
        job = await self.get(user, job_id, result=False)
        if not user.may_change(job):
            raise PermissionDenied(
                f"job {job_id} belongs to {job['owner']}; only its owner can change it "
                "(you may rerun it as your own)"
            )
        return job


def _check_values(request: JobCreate | JobEdit) -> None:
    """The values a job carries within the input limits, before anything is reserved:
    a REST body has passed them already, a caller of the service may not have."""
    for field in ("args", "kwargs", "data"):
        value = getattr(request, field, None)
        if value is not None:
            check_json(value.model_dump() if field == "data" else value, field)


class JobFile:
    """One file of a job: its size, its checksum (once the job has ended) and its
    bytes, read off the event loop a piece at a time."""

    def __init__(
        self, files: JobFiles, job_id: str, path: str, size: int, sha256: str | None
    ) -> None:
        self.files = files
        self.job_id = job_id
        self.path = path
        self.size = size
        self.sha256 = sha256

    async def read(self, chunk: int = FILE_CHUNK) -> AsyncGenerator[bytes, None]:
        position = 0
        while position < self.size:
            data = await asyncio.to_thread(
                self.files.read, self.job_id, self.path, position, min(chunk, self.size - position)
            )
            if not data:
                return
            position += len(data)
            yield data


def _recorded_files(job: dict[str, Any]) -> builtins.list[dict]:
    return list((job.get("provenance") or {}).get("files") or [])


def _skipped(job: dict[str, Any]) -> frozenset[str]:
    """Names in a job's folder that are not its files (output, handed-over inputs)."""
    try:
        own = get_process(job["process"]).own_files
    except InvalidRequest:
        own = frozenset()
    return RUNNER_FILES | own


def _rerun_kwargs(job: dict[str, Any]) -> dict[str, Any]:
    """The job's keyword arguments plus the defaults it ran with, as recorded: a rerun
    gets the values the first run got, even if the script's defaults have changed since."""
    recorded = (job.get("provenance") or {}).get("parameters") or {}
    if job["args"] or not isinstance(recorded, dict):
        return dict(job["kwargs"])  # which recorded values the args filled is not recorded
    defaults = {k: v for k, v in recorded.items() if not k.startswith("*")}
    return {**defaults, **job["kwargs"]}


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
    if value not in STATUSES:
        known = ", ".join(STATUSES)
        raise InvalidRequest(f"{field}: unknown status {value!r}; statuses are: {known}")
    return value
