"""The store contract: where job records (and data documents) live.

A store is synchronous and thread-safe; the services call it off the event loop through
:class:`~jupyter_jobserver.store.runner.StoreRunner`. It speaks in plain dicts (JSON
documents) and parsed filters, never SQL, so the SQLite store and a MongoDB store are
interchangeable.

Job documents have the fields of :data:`~jupyter_jobserver.store.fields.JOBS`; ``result``
is held apart so that lists stay light. Sweep documents have the fields of
:data:`~jupyter_jobserver.store.fields.SWEEPS`; a sweep's jobs name it in their ``sweep``
field. Idempotency keys (:data:`~jupyter_jobserver.store.fields.IDEMPOTENCY_KEYS`) are
kept per owner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from ..serialize import RawJSON
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

    def insert_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """Add many new jobs at once, all or none (a sweep's jobs). The default inserts
        them one by one inside :meth:`batch`; a store should do better where it can."""
        with self.batch():
            for job in jobs:
                self.insert_job(job)

    def job_summary(self, where: Node | None) -> dict[str, Any]:
        """What the jobs matching ``where`` add up to, without reading them:
        ``{"counts": {status: n}, "started": first start, "finished": last finish}``
        (the times ``None`` when no job has one)."""
        raise NotImplementedError

    def job_results(self, job_ids: Iterable[str]) -> dict[str, RawJSON]:
        """The results of these jobs as JSON text, by id (jobs without a result, or
        that do not exist, are left out): a sweep's table in one read."""
        raise NotImplementedError

    # --- sweeps ---------------------------------------------------------------------------

    def insert_sweep(self, sweep: dict[str, Any]) -> None:
        """Add a new sweep document (its ``id`` is new)."""
        raise NotImplementedError

    def get_sweep(self, sweep_id: str) -> dict[str, Any] | None:
        """One sweep, or ``None``."""
        raise NotImplementedError

    def update_sweep(self, sweep_id: str, changes: dict[str, Any]) -> bool:
        """Set fields of one sweep; ``False`` when there is no such sweep."""
        raise NotImplementedError

    def find_sweeps(
        self,
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """Sweeps matching ``where`` (a filter on :data:`SWEEPS` fields), one page, and
        the total count."""
        raise NotImplementedError

    def delete_sweeps(self, sweep_ids: Iterable[str]) -> int:
        """Delete sweep documents by id (not their jobs); returns how many existed."""
        raise NotImplementedError

    # --- idempotency keys -----------------------------------------------------------------

    def claim_key(
        self, owner: str, key: str, target: str, fingerprint: str, created: str
    ) -> dict[str, Any] | None:
        """Record that ``owner``'s request with ``key`` makes ``target``, atomically;
        ``None`` when the claim is new, else the first claim (``{"target",
        "fingerprint", "created"}``), unchanged."""
        raise NotImplementedError

    def release_key(self, owner: str, key: str, target: str) -> None:
        """Forget a claim (the request that made it failed), if it is still for ``target``."""
        raise NotImplementedError

    # --- active-job admission -------------------------------------------------------------

    def admit_active(self, owner: str, job_id: str, limit: int, now: str) -> bool:
        """Count ``job_id`` among ``owner``'s queued or running jobs, atomically across
        every server sharing the store, unless ``limit`` are counted already (``False``).
        A store that is not shared admits everything: one server counts its own jobs."""
        return True

    def release_active(self, job_ids: Iterable[str]) -> None:
        """Stop counting these jobs (they finished, were deleted, or never got queued)."""

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
