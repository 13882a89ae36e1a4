"""Retention: finished jobs, with their output and files, removed once they are old
enough or once their owner has more than enough of them.

A sweep runs every ``JobRetention.interval`` seconds (and once at start-up) when a rule
is set; it only ever removes jobs whose status is final (``succeeded``, ``failed``,
``cancelled``): a job that is created, queued or running is never touched, nor counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from collections import Counter
from typing import Any

from traitlets import Float, Int
from traitlets.config import LoggingConfigurable

from ..store.query import parse_filter
from ..vocabulary import FINISHED

#: records read per page while a sweep looks for what to remove
PAGE = 1000


class JobRetention(LoggingConfigurable):
    """Which finished jobs to remove, and the periodic sweep that removes them."""

    max_age_days = Float(
        0.0,
        help="Remove finished jobs (record, output and files) this many days after they "
        "finished (0: keep them).",
    ).tag(config=True)

    max_jobs_per_user = Int(
        0,
        help="Keep at most this many finished jobs per user, the most recently finished "
        "(0: no limit); older ones are removed with their output and files.",
    ).tag(config=True)

    interval = Float(
        3600.0,
        help="Seconds between retention sweeps (0: only at start-up).",
    ).tag(config=True)

    def __init__(self, *, manager: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manager = manager
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return self.max_age_days > 0 or self.max_jobs_per_user > 0

    def start(self) -> None:
        """Sweep now and then every ``interval`` seconds, when a rule is set."""
        if self.active and self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                removed = await self.sweep()
                if removed:
                    self.log.info("jobserver: retention removed %d finished job(s)", removed)
            except Exception:
                self.log.exception("jobserver: the retention sweep failed")
            if self.interval <= 0:
                return
            await asyncio.sleep(self.interval)

    async def sweep(self, now: datetime.datetime | None = None) -> int:
        """Remove what the rules say; how many jobs were removed."""
        if not self.active:
            return 0
        finished = {"status": {"$in": list(FINISHED)}}
        doomed: dict[str, dict[str, Any]] = {}
        if self.max_age_days > 0:
            now = now or datetime.datetime.now(datetime.timezone.utc)
            cutoff = now - datetime.timedelta(days=self.max_age_days)
            old = parse_filter(
                {**finished, "finished": {"$lt": cutoff.isoformat().replace("+00:00", "Z")}}
            )
            for job in await self._all(old, [("finished", 1)]):
                doomed[job["id"]] = job
        if self.max_jobs_per_user > 0:
            kept: Counter[str] = Counter()
            newest_first = [("owner", 1), ("finished", -1)]
            for job in await self._all(parse_filter(finished), newest_first):
                kept[job["owner"]] += 1
                if kept[job["owner"]] > self.max_jobs_per_user:
                    doomed[job["id"]] = job
        if not doomed:
            return 0
        return await self.manager.remove_finished(list(doomed.values()))

    async def _all(self, where: Any, sort: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """Every matching job, read a page at a time (``id``, ``owner``, ``public``,
        ``status`` are what a sweep keeps of each)."""
        store = self.manager.store
        found: list[dict[str, Any]] = []
        offset = 0
        while True:
            page, total = await store.read(store.store.find_jobs, where, sort, PAGE, offset)
            found += [
                {k: job.get(k) for k in ("id", "owner", "public", "status", "script")}
                for job in page
            ]
            offset += len(page)
            if not page or offset >= total:
                return found
