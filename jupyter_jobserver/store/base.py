"""The store contract: where job records (and data documents) live.

A store is synchronous and thread-safe; the services call it off the event loop through
:class:`~jupyter_jobserver.store.runner.StoreRunner`. It speaks in plain dicts (JSON
documents) and parsed filters, never SQL, so the SQLite store and a MongoDB store are
interchangeable.

Job documents have the fields of :data:`~jupyter_jobserver.store.fields.JOBS`; ``result``
is held apart so that lists stay light.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from .query import Node


class Store(LoggingConfigurable):
    """Base class of stores; see the module docstring."""

    url = Unicode(help="Where the store keeps its data (a path or a URI).").tag(config=True)

    #: several job servers may use the store at once (a shared database); a store that
    #: is not shared is locked by :meth:`open`, since two servers on it would each take
    #: the other's running jobs for leftovers of a crash, and run its queued jobs again
    shared: ClassVar[bool] = False

    #: errors of the storage itself (a full disk, a locked or damaged file, a lost
    #: connection): callers are told the store is unavailable, with the reason
    unavailable_errors: tuple[type[BaseException], ...] = ()

    def where(self) -> str:
        """Where the store is, as a log line or an error message may say it (without any
        credentials the URL holds)."""
        return self.url

    def open(self) -> None:
        """Take the store (its lock, when it is not shared), connect, create what is
        missing, migrate. Called once, off the event loop; a ``RuntimeError`` says why
        the store cannot be used."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""
        raise NotImplementedError

    def batch(self) -> AbstractContextManager[None]:
        """Group the writes made inside into one unit (one transaction, where the store
        has them); each write still succeeds or fails on its own."""
        return contextlib.nullcontext()

    # --- jobs -------------------------------------------------------------------------

    def insert_job(self, job: dict[str, Any]) -> None:
        """Add a new job document (its ``id`` is new)."""
        raise NotImplementedError

    def get_job(
        self, job_id: str, *, result: bool = True, raw: bool = False
    ) -> dict[str, Any] | None:
        """One job, or ``None``; without ``result`` when ``result`` is false, and with it as
        :class:`RawJSON` text when ``raw`` (to be sent on as it is)."""
        raise NotImplementedError

    def update_job(
        self,
        job_id: str,
        changes: dict[str, Any],
        *,
        status_in: Collection[str] | None = None,
    ) -> bool:
        """Set fields of one job, atomically and only while its status is one of
        ``status_in`` (any status when ``None``). ``False`` when nothing changed."""
        raise NotImplementedError

    def find_jobs(
        self,
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """Jobs matching ``where`` (without ``result``), one page, and the total count."""
        raise NotImplementedError

    def delete_jobs(self, job_ids: Iterable[str]) -> int:
        """Delete jobs by id; returns how many existed."""
        raise NotImplementedError

    def job_ids(self, where: Node | None) -> list[str]:
        """Ids of every job matching ``where`` (for bulk actions and reconciliation)."""
        raise NotImplementedError

    # --- data documents -------------------------------------------------------------------

    def insert_data(self, document: dict[str, Any]) -> None:
        """Add a new data document (``data`` may be :class:`RawJSON`)."""
        raise NotImplementedError

    def get_data(
        self, data_id: str, *, payload: bool = True, raw: bool = False
    ) -> dict[str, Any] | None:
        """One data document, or ``None``; without ``data`` when ``payload`` is false, and
        with it as :class:`RawJSON` text when ``raw``."""
        raise NotImplementedError

    def update_data(
        self, data_id: str, changes: dict[str, Any], *, revision: int | None = None
    ) -> bool:
        """Set fields of one document, only while its revision is ``revision`` (when
        given), so two editors cannot overwrite each other. ``False`` when nothing changed."""
        raise NotImplementedError

    def find_data(
        self,
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """Documents matching ``where`` (never with ``data``), one page, and the total."""
        raise NotImplementedError

    def delete_data(self, data_ids: Iterable[str]) -> int:
        """Delete documents by id; returns how many existed."""
        raise NotImplementedError
