"""Calls into a synchronous store, made from the event loop without blocking it.

Writes go to one thread, in the order they are made: a job's "running" is always written
before its "succeeded", even though neither call waits for the other. The writer takes
every write waiting at once and runs them as one batch (one SQLite transaction, one
wake-up of the event loop), so under load the cost of a commit and of a thread hop is
shared by many writes. Reads use a small pool of their own, so a long list does not hold
up a status change.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import Unavailable
from .base import Store

T = TypeVar("T")

_STOP = object()


class StoreRunner:
    """Runs store methods in threads; see the module docstring."""

    def __init__(self, store: Store, readers: int = 2) -> None:
        self.store = store
        self._pending: list[Any] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._writer = threading.Thread(
            target=self._write_loop, name="jobserver-store-writer", daemon=True
        )
        self._writer.start()
        self._readers = ThreadPoolExecutor(
            max_workers=readers, thread_name_prefix="jobserver-store-reader"
        )

    def write(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Queue a write now (its order is fixed by this call) and return its future."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        call = self._explained(functools.partial(method, *args, **kwargs))
        with self._lock:
            self._pending.append((call, future))
            if len(self._pending) == 1:  # the writer sleeps only when nothing is pending
                self._wake.set()
        return future

    def read(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run a read in the reader pool."""
        loop = asyncio.get_running_loop()
        call = self._explained(functools.partial(method, *args, **kwargs))
        return loop.run_in_executor(self._readers, call)

    def _explained(self, call: Callable[[], T]) -> Callable[[], T]:
        """``call``, with a failure of the storage itself turned into a 503 that says why
        (not a bare 500)."""
        errors = self.store.unavailable_errors
        if not errors:
            return call

        def explained() -> T:
            try:
                return call()
            except errors as exc:
                raise Unavailable(f"the job store cannot be used: {exc}") from exc

        return explained

    def close(self) -> None:
        """Finish the writes already queued, then close the store."""
        with self._lock:
            self._pending.append(_STOP)
            self._wake.set()
        self._writer.join()
        self._readers.shutdown(wait=True)
        self.store.close()

    def _write_loop(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                batch, self._pending = self._pending, []
                self._wake.clear()
            stop = _STOP in batch
            calls = [item for item in batch if item is not _STOP]
            if calls:
                self._run(calls)
            if stop:
                return

    def _run(self, calls: list[tuple[Callable[[], Any], asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            with self.store.batch():
                for call, future in calls:
                    try:
                        outcomes.append((future, call(), None))
                    except Exception as exc:  # one bad write fails alone
                        outcomes.append((future, None, exc))
        except Exception as exc:  # the batch itself could not be committed
            if isinstance(exc, self.store.unavailable_errors):
                exc = Unavailable(f"the job store cannot be used: {exc}")
            outcomes = [(future, None, exc) for _, future in calls]
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = defaultdict(list)
        for outcome in outcomes:
            by_loop[outcome[0].get_loop()].append(outcome)
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop closed: nobody waits now
                loop.call_soon_threadsafe(_settle, settled)


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
