"""The queue of jobs waiting for the executor, fair between users.

Executors run what they are handed in order. If every queued job went to the executor at
once, one user's 10,000-job sweep would hold up another user's single job for the whole
sweep. So the life cycle hands over only as many jobs as the executor can start now (see
:attr:`~.lifecycle.JobLifecycle.dispatch_ahead`) and keeps the rest here; when a place
frees up, the next job is taken from the user with the fewest jobs handed over, and among
those, round-robin. The rule lives above the executor, so it holds for every executor.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator

from ..executor import Task


class FairQueue:
    """Tasks waiting to be handed to the executor, per owner; see the module docstring."""

    def __init__(self) -> None:
        #: each owner's waiting job ids, in the order they were queued; owners in the
        #: order they are served when their load is equal
        self._owners: collections.OrderedDict[str, collections.deque[str]] = (
            collections.OrderedDict()
        )
        self._tasks: dict[str, tuple[str, Task]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._tasks

    def push(self, owner: str, task: Task) -> None:
        self._tasks[task.job_id] = (owner, task)
        waiting = self._owners.get(owner)
        if waiting is None:
            waiting = self._owners[owner] = collections.deque()
        waiting.append(task.job_id)

    def pop(self, load: Callable[[str], int]) -> Task | None:
        """The next task: the first waiting one of the owner whose ``load`` (jobs handed
        over now) is least; that owner then goes to the back of the line."""
        best: str | None = None
        best_load = 0
        for owner in list(self._owners):
            if not self._trim(owner):
                continue
            owner_load = load(owner)
            if best is None or owner_load < best_load:
                best, best_load = owner, owner_load
                if owner_load == 0:
                    break
        if best is None:
            return None
        job_id = self._owners[best].popleft()
        self._owners.move_to_end(best)
        self._trim(best)
        return self._tasks.pop(job_id)[1]

    def _trim(self, owner: str) -> bool:
        """Drop removed ids at the head of ``owner``'s line; ``False`` (and the owner is
        gone) when nothing of theirs waits."""
        waiting = self._owners[owner]
        while waiting and waiting[0] not in self._tasks:
            waiting.popleft()
        if not waiting:
            del self._owners[owner]
            return False
        return True

    def remove(self, job_ids: Iterable[str]) -> list[str]:
        """Take these jobs out (cancelled, deleted); returns those that were waiting."""
        return [job_id for job_id in job_ids if self._tasks.pop(job_id, None) is not None]

    def take(self, job_id: str) -> tuple[str, Task] | None:
        """Take one job out, with its owner (to put it back with :meth:`push`)."""
        return self._tasks.pop(job_id, None)

    def ids(self) -> Iterator[str]:
        """Ids of the waiting jobs (per owner, in the order each owner queued them)."""
        for waiting in self._owners.values():
            yield from (job_id for job_id in waiting if job_id in self._tasks)
