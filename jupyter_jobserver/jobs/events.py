"""In-process notifications of what happens to jobs.

``GET jobs/{id}?wait=``, the server-sent event stream and the notebook widgets all learn
of status changes and progress from here instead of polling the store.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

ALL = "*"


class Subscription:
    """Events for one job (or all jobs) in the order they happened."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._events: collections.deque[dict[str, Any]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, or ``None`` when ``timeout`` seconds pass first."""
        if not self._events:
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            timer = None
            if timeout is not None:
                timer = loop.call_later(timeout, _resolve, self._waiter)
            try:
                await self._waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        return self._events.popleft() if self._events else None

    def get_nowait(self) -> dict[str, Any] | None:
        """The next event if one is waiting, else ``None``."""
        return self._events.popleft() if self._events else None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            event = await self.get()
            if event is not None:
                yield event


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class JobEvents:
    """A publish/subscribe hub keyed by job id."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    @contextlib.contextmanager
    def subscribe(self, job_id: str = ALL) -> Iterator[Subscription]:
        subscription = Subscription(job_id)
        self._subscribers[job_id].add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(job_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[job_id]

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        """Deliver ``event`` (which names its ``event`` kind) to the job's subscribers."""
        event = {**event, "job_id": job_id}
        for key in (job_id, ALL):
            for subscription in self._subscribers.get(key, ()):
                subscription.put(event)
