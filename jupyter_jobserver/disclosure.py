"""What a job's record shows to whom: the one place that decides it.

A job may be public even when its script is restricted, because a record never
carries the algorithm. The owner and administrators see everything: the full error
with its traceback, stderr, an eval job's code. Anyone else who may see a public job
sees it *without*

* ``code`` (an eval job's source),
* ``error.detail`` (the traceback: the script's file paths and source lines),
* file paths in ``error.message`` (each becomes ``<path>``),
* its stderr (where a failing job's traceback is written), by ``output/stderr`` or in
  the event stream.

The result, stdout, parameters, data binding and provenance (script name, version,
code hash) stay visible: they are what a public record is for.
"""

from __future__ import annotations

import re
from typing import Any

from .users import User

#: the streams only the owner and administrators read
PRIVATE_STREAMS = frozenset({"stderr"})

_PATH = re.compile(r"""(?:[A-Za-z]:)?(?:[/\\][^\s'"/\\:]+){1,}[/\\]?""")


def sees_everything(user: User, job: dict[str, Any]) -> bool:
    """The owner and administrators see a job whole."""
    return user.may_change(job)


def job_view(user: User, job: dict[str, Any]) -> dict[str, Any]:
    """``job`` as ``user`` may see it (see the module docstring)."""
    if sees_everything(user, job):
        return job
    view = dict(job)
    if view.get("code") is not None:
        view["code"] = None
    error = view.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        view["error"] = {
            **error,
            "message": _PATH.sub("<path>", message) if isinstance(message, str) else message,
            "detail": None,
        }
    return view


def may_read_stream(user: User, job: dict[str, Any], stream: str) -> bool:
    return stream not in PRIVATE_STREAMS or sees_everything(user, job)
