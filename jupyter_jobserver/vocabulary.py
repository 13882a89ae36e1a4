"""The job server's fixed words, in one place for every side: the server, a worker, a
kernel's client and widgets.

Only the standard library is imported here, so a worker or a kernel can use these names
without pulling in the server.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

#: where the REST API lives, under a Jupyter server's base URL
API_PREFIX = "jobserver/api"

#: what a kernel started by a Jupyter server with the job server finds in its
#: environment: where the server is, and the token to reach it
ENV_URL = "JUPYTER_JOBSERVER_URL"
ENV_TOKEN = "JUPYTER_JOBSERVER_TOKEN"


class Status(str, Enum):
    """Job statuses: ``created → queued → running → succeeded | failed | cancelled``."""

    created = "created"
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


#: statuses of a job the server is working on
ACTIVE = frozenset({Status.queued.value, Status.running.value})
#: statuses a job ends in; nothing changes what it ran after that
FINISHED = frozenset({Status.succeeded.value, Status.failed.value, Status.cancelled.value})
#: every status, in the order a job passes through them
STATUSES = tuple(Status.__members__)

#: what a job can read: a datafile, a stored data document, or inline JSON
BINDING_KINDS = ("datafile", "mongodb", "raw_data")


def error_record(kind: str, message: str, detail: str | None = None) -> dict[str, Any]:
    """A job's ``error``: what went wrong (``kind``, often an exception's name), a
    sentence for a person, and the traceback or output tail when there is one."""
    return {"type": kind, "message": message, "detail": detail}
