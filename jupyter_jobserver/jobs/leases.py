"""Several job servers on one shared store: each records itself with a heartbeat, and
every job it has queued or runs holds a lease that the heartbeat renews.

A server that dies stops renewing. Any other server sharing the store sees the lease
expire (within ``lease_time`` plus one ``heartbeat_interval``) and fails the job with a
reason that names the lost server, so no job stays ``queued`` or ``running`` for ever;
a server that starts leaves alone the jobs whose leases are alive (they are another
server's), instead of taking them for leftovers of its own crash.

Leases are documents ``{_id: job id, server, expires}`` in the ``leases`` collection,
servers ``{_id, host, pid, started, heartbeat}`` in ``servers``; times are seconds since
the epoch, so the servers' clocks must agree to well within ``lease_time``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from traitlets import Float
from traitlets.config import LoggingConfigurable

from ..store.mongo import MongoStore, StoreUnavailable
from ..store.query import utcnow
from ..vocabulary import FINISHED, Status, error_record
from .transitions import TransitionPlugin

#: statuses a lease keeps: the job is this server's until it ends
HELD = (Status.queued.value, Status.running.value)


class Leases(LoggingConfigurable, TransitionPlugin):
    """This server's heartbeat and its jobs' leases; see the module docstring."""

    heartbeat_interval = Float(
        5.0, help="Seconds between two heartbeats of this server (each renews its leases)."
    ).tag(config=True)

    lease_time = Float(
        30.0,
        help=(
            "Seconds a lease lasts without renewal: once it has passed, another server "
            "fails the job as lost with its server."
        ),
    ).tag(config=True)

    def __init__(self, store: MongoStore, lifecycle: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.lifecycle = lifecycle
        self.server_id = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        # one thread: a lease is taken before it is released, as the changes happened
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobserver-lease")
        self._task: asyncio.Task[None] | None = None

    def describe(self) -> str:
        return f"{self.host}, pid {self.pid}, server {self.server_id[:8]}"

    # --- taking and releasing ---------------------------------------------------------

    def transition(
        self,
        job_id: str,
        start: str | None,
        finish: str,
        job: dict[str, Any] | None,
        record: dict[str, Any] | None,
    ) -> None:
        if finish == Status.queued.value:
            self._submit(self._take, job_id)
        elif finish in FINISHED or finish == "deleted":
            self._submit(self._release, job_id)

    def _submit(self, call: Any, job_id: str) -> None:
        future = asyncio.get_running_loop().run_in_executor(self._writer, call, job_id)
        future.add_done_callback(self._logged)

    def _logged(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            self.log.warning("jobserver: a job lease could not be written: %s", future.exception())

    def _take(self, job_id: str) -> None:
        with self.store.guard():
            self.store.collection("leases").replace_one(
                {"_id": job_id},
                {"server": self.server_id, "expires": time.time() + self.lease_time},
                upsert=True,
            )

    def _release(self, job_id: str) -> None:
        with self.store.guard():
            self.store.collection("leases").delete_one({"_id": job_id, "server": self.server_id})

    # --- the heartbeat ----------------------------------------------------------------

    async def start(self) -> None:
        """Record this server, fail the jobs of servers already gone, and keep beating."""
        await self.beat()
        self._task = asyncio.ensure_future(self._beating())

    async def stop(self) -> None:
        """Stop beating and forget this server (its jobs are ended by then)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(StoreUnavailable):
            await asyncio.get_running_loop().run_in_executor(self._writer, self._leave)
        self._writer.shutdown(wait=True)

    async def _beating(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self.beat()
            except StoreUnavailable as exc:  # MongoDB away: beat again once it is back
                self.log.warning("jobserver: heartbeat missed: %s", exc)
            except Exception:
                self.log.exception("jobserver: heartbeat failed")

    async def beat(self) -> None:
        """Renew this server's record and leases, then end the jobs of lost servers."""
        loop = asyncio.get_running_loop()
        expired = await loop.run_in_executor(self._writer, self._renew)
        for lease in expired:
            await self._end_lost(lease)

    def _renew(self) -> list[dict[str, Any]]:
        now = time.time()
        servers, leases = self.store.collection("servers"), self.store.collection("leases")
        with self.store.guard():
            servers.update_one(
                {"_id": self.server_id},
                {
                    "$set": {"heartbeat": now, "host": self.host, "pid": self.pid},
                    "$setOnInsert": {"started": now},
                },
                upsert=True,
            )
            leases.update_many(
                {"server": self.server_id}, {"$set": {"expires": now + self.lease_time}}
            )
            return list(leases.find({"expires": {"$lt": now}, "server": {"$ne": self.server_id}}))

    def _leave(self) -> None:
        with self.store.guard():
            self.store.collection("servers").delete_one({"_id": self.server_id})

    async def _end_lost(self, lease: dict[str, Any]) -> None:
        """Fail a job whose server stopped renewing its lease, naming that server."""
        job_id, server = lease["_id"], lease["server"]

        def end() -> tuple[dict[str, Any] | None, dict[str, Any]]:
            with self.store.guard():
                known = self.store.collection("servers").find_one({"_id": server}) or {}
                job = self.store.get_job(job_id, result=False)
                lost = f"{known.get('host', 'unknown host')}, pid {known.get('pid', '?')}"
                changes = {
                    "status": Status.failed.value,
                    "finished": utcnow(),
                    "error": error_record(
                        "LostServer",
                        f"the job server that ran this job ({lost}, server {server[:8]}) "
                        f"stopped renewing its lease for {self.lease_time:g} s: it is gone; "
                        "rerun the job",
                    ),
                }
                ended = job is not None and self.store.update_job(job_id, changes, status_in=HELD)
                # only the lease seen expired: a server that took it again keeps it
                self.store.collection("leases").delete_one(
                    {"_id": job_id, "server": server, "expires": lease["expires"]}
                )
                return (job if ended else None), changes

        job, changes = await asyncio.get_running_loop().run_in_executor(self._writer, end)
        if job is not None:
            self.log.warning("jobserver: job %s: %s", job_id, changes["error"]["message"])
            self.lifecycle.announce(
                job_id,
                job["status"],
                Status.failed.value,
                job,
                record={**job, **changes, "result": None},
            )

    async def held_elsewhere(self) -> set[str]:
        """Ids of the jobs other servers hold live leases on (not leftovers of a crash)."""

        def held() -> set[str]:
            with self.store.guard():
                live = self.store.collection("leases").find(
                    {"expires": {"$gte": time.time()}, "server": {"$ne": self.server_id}},
                    {"_id": 1},
                )
                return {doc["_id"] for doc in live}

        return await asyncio.get_running_loop().run_in_executor(self._writer, held)
