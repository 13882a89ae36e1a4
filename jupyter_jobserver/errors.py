"""Errors raised by the service layer.

The services know nothing of HTTP; each error carries the status a REST handler should
answer with and a short machine-readable code, so that every front end (REST, the Python
client, widgets, magics) reports the same message to a person.
"""

from __future__ import annotations


class JobServerError(Exception):
    """Base class of every error a person should see as a clear message."""

    status: int = 500
    code: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(JobServerError):
    """The request is malformed or a value is out of range."""

    status = 400
    code = "invalid_request"


class PermissionDenied(JobServerError):
    """The user is known but may not do this."""

    status = 403
    code = "forbidden"


class NotFound(JobServerError):
    """No such thing, or it belongs to someone else and is private."""

    status = 404
    code = "not_found"


class Conflict(JobServerError):
    """The thing exists but its state does not allow the change."""

    status = 409
    code = "conflict"


class TooLarge(JobServerError):
    """A size limit or a quota would be exceeded."""

    status = 413
    code = "too_large"


class LimitReached(JobServerError):
    """A per-user limit on concurrent work is reached; try again later."""

    status = 429
    code = "limit_reached"


class Unavailable(JobServerError):
    """The job server could not start (its store cannot be opened, or another server
    holds it); every request says why until the problem is fixed and it restarts."""

    status = 503
    code = "unavailable"
