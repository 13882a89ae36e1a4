"""Sweeps: one request that makes many jobs of one script, followed, cancelled and
collected as one table.

A sweep's jobs are every combination of its datafiles (or its one data binding), its
parameter sets and the points of its grid (see :class:`~jupyter_jobserver.models.SweepCreate`).
Each is an ordinary job record (provenance, output, rerun) that names its sweep
(``sweep``) and its row in the sweep's table (``sweep_index``).

The whole request is checked before anything is made; then the sweep and all its jobs are
written in one store transaction and handed to the life cycle in one go. Nothing is done
once per job that can be done once per sweep: the script, the data and the template
record are looked up once, and per job only its parameters are bound. What a request
expands to is :mod:`.sweepgrid`; the results table is :mod:`.sweeptable`.

Nothing here knows about HTTP.
"""

from __future__ import annotations

import asyncio
import builtins
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from ..errors import (
    Conflict,
    InvalidRequest,
    JobServerError,
    LimitReached,
    NotFound,
    PermissionDenied,
    TooLarge,
)
from ..models import DatafileBinding, JobQuery, SweepCreate, SweepRerun
from ..store.fields import SWEEPS
from ..store.query import any_of, narrowed, parse_filter, utcnow
from ..users import User
from ..vocabulary import FINISHED, Status
from .manager import JobManager, job_filter
from .sweepgrid import check_names, job_records, size_of
from .sweeptable import results_table

#: the filter of a sweep's current jobs (a rerun takes its job's place, the job it
#: replaces keeps naming the sweep but has no place in it)
PLACED = {"$exists": True}

#: how a sweep's jobs are listed for its table: by their place in it
BY_PLACE = [("sweep_index", 1)]

#: the longest list of jobs read at once for a sweep's table
TABLE_PAGE = 100_000


class SweepService(LoggingConfigurable):
    """Create, follow, cancel, rerun and collect sweeps; see the module docstring."""

    max_sweep_size = Int(
        100_000,
        help="The most jobs one sweep may make; a larger sweep is refused with 413.",
    ).tag(config=True)

    progress_interval = Float(
        0.25,
        help="Seconds between progress events of a sweep's event stream while its jobs "
        "change (changes in between are summed up in the next one).",
    ).tag(config=True)

    def __init__(self, *, jobs: JobManager, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jobs = jobs

    @property
    def _store(self) -> Any:
        return self.jobs.store.store

    # --- create ----------------------------------------------------------------------

    async def create(
        self, user: User, request: SweepCreate, *, sweep_id: str | None = None
    ) -> dict:
        """Check the whole request, then make the sweep and all its jobs at once (and
        queue them when ``request.run``). Refused with 400 (naming the parameter set and
        the parameter), 413 (too many jobs) or 429 (over the user's limit)."""
        jobs = self.jobs
        await jobs.ready()
        await jobs.registry.ready()
        script = jobs.registry.get(request.script)
        jobs.policy.check_cores(script.name, script.cores, jobs.executor.cores)
        bindings = self._bindings(request)
        sets = request.sets if request.sets is not None else [{}]
        size = size_of(request, len(bindings), len(sets))
        self._check_size(user, size, request.run)
        check_names(request, sets)
        for binding in bindings:
            where = f"datafile {binding.name!r}: " if isinstance(binding, DatafileBinding) else ""
            try:
                await jobs._check_binding(user, script, binding)
            except JobServerError as exc:
                exc.message = where + exc.message
                raise
        timeout = jobs.policy.timeout(request.timeout)
        now = utcnow()
        sweep: dict[str, Any] = {
            "id": sweep_id or uuid.uuid4().hex,
            "script": script.name,
            "owner": user.name,
            "public": request.public,
            "size": size,
            "created": now,
            "cancelled": None,
            "tags": list(request.tags),
            "kwargs": request.kwargs,
            "grid": request.grid,
            "sets": request.sets,
            "datafiles": request.datafiles,
            "data": request.data.model_dump() if request.data else None,
            "timeout": timeout,
        }
        # binding thousands of parameter sets takes a while: not on the event loop
        records = await asyncio.to_thread(job_records, sweep, script, request, bindings, sets)
        if request.run:
            jobs.check_executor()
        async with jobs.counted(user, len(records)):
            self._check_size(user, size, request.run)  # again: other jobs may have come
            await jobs.store.write(_insert, self._store, sweep, records)
        if request.run:
            await jobs.lifecycle.enqueue_stored(records)
        return await self._model(sweep)

    async def create_once(self, user: User, request: SweepCreate, key: str) -> tuple[dict, bool]:
        """:meth:`create`, once per ``Idempotency-Key`` (see :mod:`.idempotency`)."""
        return await self.jobs.keys.once(
            user,
            key,
            "sweep",
            request,
            lambda sweep_id: self.create(user, request, sweep_id=sweep_id),
            lambda sweep_id: self.get(user, sweep_id),
        )

    def _bindings(self, request: SweepCreate) -> builtins.list[Any]:
        """The data each row of jobs reads: one per datafile, or the one binding."""
        if request.datafiles is not None:
            if request.data is not None:
                raise InvalidRequest("give either datafiles or data, not both")
            if not request.datafiles:
                raise InvalidRequest("datafiles: the list is empty; leave it out for no data")
            if len(set(request.datafiles)) != len(request.datafiles):
                raise InvalidRequest("datafiles: a datafile is named twice")
            return [DatafileBinding(type="datafile", name=n) for n in request.datafiles]
        return [request.data]

    def _check_size(self, user: User, size: int, run: bool) -> None:
        if size > self.max_sweep_size:
            raise TooLarge(
                f"the sweep would make {size} jobs; this server makes at most "
                f"{self.max_sweep_size} per sweep (SweepService.max_sweep_size)"
            )
        limits = self.jobs.policy.limits(user)
        limit = limits.max_active_jobs
        active = self.jobs.lifecycle.active_count(user.name)
        if run and limit and active + size > limit:
            raise LimitReached(
                f"the sweep would queue {size} jobs and {user.name} has {active} queued or "
                f"running; {limit} are allowed at once ({limits.active_from}): create it "
                "without run, or wait"
            )

    # --- read ------------------------------------------------------------------------

    async def get(self, user: User, sweep_id: str) -> dict:
        """A sweep the user may see, with its counts by status, progress and times."""
        return await self._model(await self._visible(user, sweep_id))

    async def list(
        self, user: User, *, limit: int = 20, offset: int = 0
    ) -> tuple[builtins.list[dict], int]:
        """The sweeps the user may see, newest first, each with its counts."""
        where = narrowed(None, user.visible_filter(), SWEEPS.query_kinds)
        found, total = await self.jobs.store.read(
            self._store.find_sweeps, where, [("created", -1)], limit, offset
        )
        return [await self._model(sweep) for sweep in found], total

    async def list_jobs(
        self,
        user: User,
        sweep_id: str,
        *,
        status: builtins.list[str] | None = None,
        tag: builtins.list[str] | None = None,
        sort: Any = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[builtins.list[dict], int]:
        """The sweep's jobs (every attempt), with the usual filters of a job list."""
        await self._visible(user, sweep_id)
        spec = {**job_filter(status=status), **any_of(tags=tag), "sweep": sweep_id}
        query = JobQuery(filter=spec, sort=sort, limit=limit, offset=offset)
        return await self.jobs.query(user, query)

    async def _visible(self, user: User, sweep_id: str) -> dict:
        sweep = await self.jobs.store.read(self._store.get_sweep, sweep_id)
        if sweep is None or not user.may_see(sweep):
            raise NotFound(f"no sweep with id {sweep_id!r}")
        return sweep

    async def _owned(self, user: User, sweep_id: str) -> dict:
        sweep = await self._visible(user, sweep_id)
        if not user.may_change(sweep):
            raise PermissionDenied(
                f"sweep {sweep_id} belongs to {sweep['owner']}; only its owner can change it"
            )
        return sweep

    async def _model(self, sweep: dict) -> dict:
        summary = await self.jobs.store.read(self._store.job_summary, _placed(sweep["id"]))
        return describe(sweep, summary)

    # --- change ----------------------------------------------------------------------

    async def cancel(self, user: User, sweep_id: str) -> dict:
        """Cancel every job of the sweep that has not ended; none of them starts after
        this call has begun (those waiting are withheld first, at once)."""
        sweep = await self._owned(user, sweep_id)
        lifecycle = self.jobs.lifecycle
        ids = await self.jobs.store.read(
            self._store.job_ids,
            parse_filter({"sweep": sweep_id, "status": {"$nin": sorted(FINISHED)}}),
        )
        lifecycle.withhold(ids)
        now = utcnow()
        await self.jobs.store.write(self._store.update_sweep, sweep_id, {"cancelled": now})
        sweep["cancelled"] = now
        message = f"cancelled with its sweep by {user.name}"
        await asyncio.gather(
            *(
                lifecycle.cancel(
                    {"id": i, "status": None, "owner": sweep["owner"], "sweep": sweep_id}, message
                )
                for i in ids
            )
        )
        return await self._model(sweep)

    async def run(self, user: User, sweep_id: str) -> dict:
        """Queue every job of a sweep made without ``run`` (those still ``created``)."""
        sweep = await self._owned(user, sweep_id)
        where = parse_filter(
            {"sweep": sweep_id, "sweep_index": PLACED, "status": Status.created.value}
        )
        waiting, _ = await self.jobs.store.read(
            self._store.find_jobs, where, BY_PLACE, TABLE_PAGE, 0
        )
        if not waiting:
            raise Conflict("no job of the sweep is waiting to run (each is queued or has run)")
        self.jobs.check_executor()
        self._check_size(user, len(waiting), True)
        now = utcnow()
        await self.jobs.store.write(_queue, self._store, [j["id"] for j in waiting], now)
        for job in waiting:
            job.update(status=Status.queued.value, queued=now)
        await self.jobs.lifecycle.enqueue_stored(waiting)
        return await self._model(sweep)

    async def rerun(self, user: User, sweep_id: str, request: SweepRerun) -> dict:
        """Run the sweep's failed (or cancelled) jobs again: each gets a new job that
        takes its place in the sweep's table, with the same parameters and data."""
        sweep = await self._owned(user, sweep_id)
        where = parse_filter(
            {"sweep": sweep_id, "sweep_index": PLACED, "status": {"$in": request.statuses}}
        )
        old, _ = await self.jobs.store.read(self._store.find_jobs, where, BY_PLACE, TABLE_PAGE, 0)
        if not old:
            return await self._model(sweep)
        self.jobs.check_executor()
        self._check_size(user, len(old), True)
        now = utcnow()
        records = []
        for job in old:
            record = {
                **job,
                "id": uuid.uuid4().hex,
                "status": Status.queued.value,
                "created": now,
                "edited": None,
                "queued": now,
                "started": None,
                "finished": None,
                "time_sec": None,
                "result": None,
                "error": None,
                "exit_code": None,
                "progress": None,
                "provenance": {
                    k: v
                    for k, v in (job.get("provenance") or {}).items()
                    if k in ("script", "version", "parameters")
                },
                "rerun_of": job["id"],
            }
            records.append(record)
        async with self.jobs.counted(user, len(records)):
            await self.jobs.store.write(
                _replace, self._store, sweep_id, [j["id"] for j in old], records
            )
        await self.jobs.lifecycle.enqueue_stored(records)
        sweep["cancelled"] = None
        return await self._model(sweep)

    async def delete(self, user: User, sweep_id: str) -> None:
        """Delete the sweep and every job of it (those not ended are cancelled first)."""
        sweep = await self._owned(user, sweep_id)
        ids = await self.jobs.store.read(self._store.job_ids, parse_filter({"sweep": sweep_id}))
        self.jobs.lifecycle.withhold(ids)
        owned = [{"id": i, "status": None, "owner": sweep["owner"], "public": False} for i in ids]
        await self.jobs._delete(owned, user)
        await self.jobs.store.write(self._store.delete_sweeps, [sweep_id])

    # --- results ---------------------------------------------------------------------

    async def results(self, user: User, sweep_id: str) -> dict[str, Any]:
        """The sweep as one table: a row per place, with its parameters, status, time,
        result (a scalar, or a flat dict's values as columns) and error."""
        sweep = await self._visible(user, sweep_id)
        found, _ = await self.jobs.store.read(
            self._store.find_jobs, _placed(sweep_id), BY_PLACE, TABLE_PAGE, 0
        )
        ended = [job["id"] for job in found if job["status"] == Status.succeeded.value]
        results = await self.jobs.store.read(self._store.job_results, ended)
        return await asyncio.to_thread(results_table, sweep, found, results)

    async def follow(self, user: User, sweep_id: str) -> AsyncGenerator[dict[str, Any], None]:
        """The sweep's progress as it changes: ``progress`` events (the sweep with its
        counts), at most one per ``progress_interval``, and ``end`` once every job of it
        has ended."""
        with self.jobs.events.subscribe() as subscription:
            sweep = await self._visible(user, sweep_id)
            model = await self._model(sweep)
            yield {"event": "progress", "sweep": model}
            while not _ended(model):
                event = await subscription.get()
                if event is None or event.get("sweep") != sweep_id:
                    continue
                deadline = time.monotonic() + self.progress_interval
                while (left := deadline - time.monotonic()) > 0:
                    await subscription.get(left)  # changes in between are summed up
                while subscription.get_nowait() is not None:
                    pass
                current = await self.jobs.store.read(self._store.get_sweep, sweep_id)
                if current is None:
                    yield {"event": "end", "sweep": None}
                    return
                model = await self._model(current)
                yield {"event": "progress", "sweep": model}
            yield {"event": "end", "sweep": model}


# --- pieces ----------------------------------------------------------------------------


def _placed(sweep_id: str) -> Any:
    return parse_filter({"sweep": sweep_id, "sweep_index": PLACED})


def _insert(store: Any, sweep: dict[str, Any], jobs: list[dict[str, Any]]) -> None:
    """The sweep and its jobs, all in one transaction (in the store's writer thread)."""
    with store.batch():
        store.insert_sweep(sweep)
        store.insert_jobs(jobs)


def _queue(store: Any, job_ids: list[str], now: str) -> None:
    """Created jobs queued, in one transaction (any already moved on stay as they are)."""
    changes = {"status": Status.queued.value, "queued": now}
    with store.batch():
        for job_id in job_ids:
            store.update_job(job_id, changes, status_in={Status.created.value})


def _replace(store: Any, sweep_id: str, old: list[str], new: list[dict[str, Any]]) -> None:
    """Rerun jobs take the places of the jobs they rerun, in one transaction."""
    with store.batch():
        for job_id in old:
            store.update_job(job_id, {"sweep_index": None})
        store.insert_jobs(new)
        store.update_sweep(sweep_id, {"cancelled": None})


def _ended(model: dict[str, Any]) -> bool:
    return model["status"] in FINISHED


def describe(sweep: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """The sweep as the API shows it: its record, counts by status, progress and times."""
    counts = {status: summary["counts"].get(status, 0) for status in Status.__members__}
    size = sweep["size"]
    done = sum(counts[s] for s in FINISHED)
    if counts["running"]:
        status = Status.running.value
    elif counts["queued"]:
        status = Status.queued.value
    elif counts["created"]:
        status = Status.created.value
    elif counts["failed"]:
        status = Status.failed.value
    elif counts["cancelled"] or sweep.get("cancelled"):
        status = Status.cancelled.value
    else:
        status = Status.succeeded.value
    finished = summary["finished"] if status in FINISHED else None
    started = summary["started"]
    return {
        **sweep,
        "status": status,
        "counts": counts,
        "progress": {"done": done, "total": size, "fraction": done / size if size else 1.0},
        "started": started,
        "finished": finished,
    }


__all__ = ["SweepService", "describe"]
