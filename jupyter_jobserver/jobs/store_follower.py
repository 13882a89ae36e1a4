"""Status changes made by other servers sharing the store, heard on this one.

Every server announces the changes it makes itself (the event streams, ``?wait=``,
Jupyter events). A job another server runs changes in the store only, so this server
polls the store every ``poll_interval`` seconds for jobs created, queued, started or
finished lately, and announces each status it has not announced yet. A change made
elsewhere is therefore heard here within ``poll_interval`` plus one store read (change
streams would be faster, but not every deployment offers them: the local wire server the
tests use does not). Output of such a job is served once it ended
(:mod:`~jupyter_jobserver.jobs.mongo_logs`); progress is not followed across servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections import OrderedDict
from typing import Any

from traitlets import Float
from traitlets.config import LoggingConfigurable

from ..store.base import Store
from ..store.query import format_time, parse_filter
from .transitions import TransitionPlugin

#: statuses remembered per job, at most (the oldest are forgotten first)
REMEMBERED = 100_000
#: jobs read per poll, at most
PAGE = 1000


class StoreFollower(LoggingConfigurable, TransitionPlugin):
    """Polls a shared store for other servers' status changes; see the module docstring."""

    poll_interval = Float(
        1.0, help="Seconds between two looks for status changes made by other servers."
    ).tag(config=True)

    clock_skew = Float(
        5.0,
        help=(
            "Seconds each look reaches back beyond the previous one, for servers whose "
            "clocks run behind and for writes that took a while."
        ),
    ).tag(config=True)

    def __init__(self, store: Store, lifecycle: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store
        self.lifecycle = lifecycle
        self._seen: OrderedDict[str, str] = OrderedDict()
        self._since = ""
        self._task: asyncio.Task[None] | None = None

    def transition(
        self,
        job_id: str,
        start: str | None,
        finish: str,
        job: dict[str, Any] | None,
        record: dict[str, Any] | None,
    ) -> None:
        """Remember what was announced here, so that it is not announced twice."""
        self._remember(job_id, finish)

    def _remember(self, job_id: str, status: str) -> None:
        self._seen[job_id] = status
        self._seen.move_to_end(job_id)
        while len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)

    async def start(self) -> None:
        self._since = self._now(-self.clock_skew)
        self._task = asyncio.ensure_future(self._polling())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _polling(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.poll()
            except Exception as exc:  # the store away: look again next time
                self.log.warning("jobserver: could not look for other servers' jobs: %s", exc)

    async def poll(self) -> None:
        """Announce the status changes made elsewhere since the last look."""
        since, upto = self._since, self._now(-self.clock_skew)
        recent = {"$gte": since}
        where = parse_filter(
            {
                "$or": [
                    {"created": recent},
                    {"queued": recent},
                    {"started": recent},
                    {"finished": recent},
                ]
            }
        )
        jobs, _ = await asyncio.to_thread(self.store.find_jobs, where, [("created", 1)], PAGE, 0)
        self._since = upto
        for job in jobs:
            before = self._seen.get(job["id"])
            if before == job["status"] or self.lifecycle.get(job["id"]) is not None:
                continue  # heard already, or this server's own
            self.lifecycle.announce(job["id"], before, job["status"], job)

    @staticmethod
    def _now(shift: float) -> str:
        return format_time(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=shift))
