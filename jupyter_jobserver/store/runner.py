"""Calls into a synchronous store, made from the event loop without blocking it.

Writes go through one thread, in the order they are made: a job's "running" is always
written before its "succeeded", even though neither call waits for the other. Reads use a
small pool of their own, so a long list does not hold up a status change.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .base import Store

T = TypeVar("T")


class StoreRunner:
    """Runs store methods in threads; see the module docstring."""

    def __init__(self, store: Store, readers: int = 2) -> None:
        self.store = store
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobserver-store-w")
        self._readers = ThreadPoolExecutor(
            max_workers=readers, thread_name_prefix="jobserver-store-r"
        )

    def write(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Queue a write now (its order is fixed by this call) and return its future."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._writer, functools.partial(method, *args, **kwargs))

    def read(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run a read in the reader pool."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._readers, functools.partial(method, *args, **kwargs))

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.store.close()
