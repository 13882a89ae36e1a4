"""The messages between the local executor and its workers.

Each is a dict sent with ``multiprocessing.connection`` framing. The server sends
``{"op": RUN, "task": ...}``, ``{"op": DESCRIBE, "scripts": ...}`` or ``{"op": EXIT}``;
a worker answers with a ``type``: ``ready`` once, ``progress`` while a job runs, ``done``
when it ends (the :class:`~jupyter_jobserver.runtime.job.JobRunner` record), and
``described``.
"""

from __future__ import annotations

from typing import Any

RUN = "run"
DESCRIBE = "describe"
EXIT = "exit"

READY = "ready"
PROGRESS = "progress"
DONE = "done"
DESCRIBED = "described"


def ready(pid: int) -> dict[str, Any]:
    return {"type": READY, "pid": pid}


def progress(job_id: str, update: dict[str, Any]) -> dict[str, Any]:
    return {"type": PROGRESS, "job_id": job_id, "progress": update}


def described(scripts: dict[str, Any]) -> dict[str, Any]:
    return {"type": DESCRIBED, "scripts": scripts}
