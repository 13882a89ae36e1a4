"""A failure a job has already reported in its own output."""

from __future__ import annotations


class ReportedFailure(Exception):
    """A job failed in a way its own output already shows (a file script's non-zero
    exit): no traceback is added to its stderr, and ``detail`` is the error's detail."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail
