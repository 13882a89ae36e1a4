"""Active-job slots in a shared store given back when their jobs end.

On a shared store a job is admitted by taking a slot in the store
(:meth:`~jupyter_jobserver.store.base.Store.admit_active`), so that the servers sharing
it hold a user to ``JobPolicy.max_active_jobs_per_user`` together. :class:`ReleaseSlots`
gives the slot back when the job finishes or is deleted, off the event loop; a slot
whose release was lost (the server died) is freed by the next admission that finds
every slot taken.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..store.base import Store
from ..vocabulary import FINISHED
from .transitions import TransitionPlugin


class ReleaseSlots(TransitionPlugin):
    """Frees a job's active-job slot when it ends."""

    def __init__(self, store: Store, log: logging.Logger) -> None:
        self.store = store
        self.log = log

    def transition(
        self,
        job_id: str,
        start: str | None,
        finish: str,
        job: dict[str, Any] | None,
        record: dict[str, Any] | None,
    ) -> None:
        if finish not in FINISHED and finish != "deleted":
            return
        future = asyncio.get_running_loop().run_in_executor(
            None, self.store.release_active, [job_id]
        )
        future.add_done_callback(self._done(job_id))

    def _done(self, job_id: str) -> Any:
        def done(future: asyncio.Future[Any]) -> None:
            if not future.cancelled() and future.exception() is not None:
                self.log.warning(
                    "jobserver: the active-job slot of job %s was not freed (the next "
                    "admission frees it): %s",
                    job_id,
                    future.exception(),
                )

        return done
