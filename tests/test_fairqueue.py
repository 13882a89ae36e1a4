"""The fair queue on its own: who goes next when a worker frees up."""

from __future__ import annotations

from collections import Counter

from jupyter_jobserver.executor import Task
from jupyter_jobserver.jobs.fairqueue import FairQueue


def test_the_least_loaded_owner_goes_first_and_equals_take_turns() -> None:
    queue = FairQueue()
    for i in range(5):
        queue.push("alice", Task(job_id=f"a{i}", process="function"))
    queue.push("bob", Task(job_id="b0", process="function"))
    queue.push("carol", Task(job_id="c0", process="function"))
    queue.push("carol", Task(job_id="c1", process="function"))
    owners = {"a": "alice", "b": "bob", "c": "carol"}
    load = Counter({"alice": 2})  # two of alice's jobs run already
    order = []
    while (task := queue.pop(load.__getitem__)) is not None:
        order.append(task.job_id)
        load[owners[task.job_id[0]]] += 1  # handed over: that owner's load grows
    # bob and carol, with nothing running, go before alice; each owner's order is kept
    assert order == ["b0", "c0", "c1", "a0", "a1", "a2", "a3", "a4"]
    assert len(queue) == 0


def test_owners_with_equal_load_take_turns() -> None:
    queue = FairQueue()
    for owner in ("alice", "bob"):
        for i in range(3):
            queue.push(owner, Task(job_id=f"{owner[0]}{i}", process="function"))
    order = [task.job_id for task in iter(lambda: queue.pop(lambda owner: 1), None)]
    assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]


def test_removed_jobs_are_skipped() -> None:
    queue = FairQueue()
    for i in range(4):
        queue.push("alice", Task(job_id=f"a{i}", process="function"))
    assert queue.remove(["a1", "a2", "zz"]) == ["a1", "a2"]
    assert "a1" not in queue and len(queue) == 2
    assert list(queue.ids()) == ["a0", "a3"]
    taken = [queue.pop(lambda owner: 0), queue.pop(lambda owner: 0), queue.pop(lambda owner: 0)]
    assert [t.job_id if t else None for t in taken] == ["a0", "a3", None]
