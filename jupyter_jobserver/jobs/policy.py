"""Job policy: the limits and permissions every job is checked against.

The rules live here, apart from the state machine, so that a new limit (jobs per day,
per group) is one method and one setting, and the same rule answers wherever it is
asked: at creation, when a created job is run, when a queued job is started again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitlets import Bool, Float, Int
from traitlets.config import LoggingConfigurable

from ..errors import InvalidRequest, LimitReached, PermissionDenied
from ..users import User
from ..vocabulary import error_record


class JobPolicy(LoggingConfigurable):
    """Timeouts, per-user limits, who may run eval jobs, how many cores a job may take."""

    default_timeout = Float(
        0.0,
        help="Seconds a job may run when it does not ask for a timeout (0: no limit).",
    ).tag(config=True)

    max_timeout = Float(
        0.0,
        help="The longest timeout a job may ask for, in seconds (0: no limit).",
    ).tag(config=True)

    max_active_jobs_per_user = Int(
        0,
        help="Jobs one user may have queued or running at once (0: no limit); "
        "more are refused with 429.",
    ).tag(config=True)

    max_result_size = Int(
        64 << 20,
        help="Largest job result, in bytes of JSON; a larger one fails the job with a "
        "message saying so.",
    ).tag(config=True)

    max_files_size = Int(
        1 << 30,
        help="Most bytes of files one job may leave in its working folder (0: no limit); "
        "a job that leaves more fails with a message saying so, and its files are removed.",
    ).tag(config=True)

    allow_eval = Bool(
        False,
        help="Allow eval jobs (raw Python code) for admin_users. They run in a worker, "
        "never in the server, but can do anything the server's account can.",
    ).tag(config=True)

    def timeout(self, requested: float | None) -> float | None:
        """The timeout a job runs with: what it asks for, within the server's bounds."""
        timeout = requested if requested is not None else (self.default_timeout or None)
        limit = self.max_timeout
        if limit:
            if requested is not None and requested > limit:
                raise InvalidRequest(
                    f"timeout: {requested:g} s is more than this server allows ({limit:g} s)"
                )
            timeout = min(timeout or limit, limit)
        return timeout or None

    def check_eval(self, user: User) -> None:
        """A 403 unless eval jobs are enabled and ``user`` administers the server."""
        if not self.allow_eval:
            raise PermissionDenied(
                "eval jobs are disabled on this server; an administrator can enable them "
                "with JobPolicy.allow_eval = True"
            )
        if not user.admin:
            raise PermissionDenied(
                f"only administrators may run eval jobs, and {user.name!r} is not one "
                "(see JobServerApp.admin_users)"
            )

    def check_active(self, user: User, active: int) -> None:
        """A 429 when ``user`` already has as many jobs queued or running as allowed."""
        limit = self.max_active_jobs_per_user
        if limit and active >= limit:
            raise LimitReached(
                f"{user.name} already has {limit} job(s) queued or running, the most this "
                "server allows; wait for one to finish or cancel one"
            )

    def check_cores(self, name: str, cores: int, available: int) -> None:
        """A 400 for a script that needs more cores than the executor has."""
        if cores > available:
            raise InvalidRequest(
                f"{name} needs {cores} cores; this server runs at most {available} at once"
            )

    def cannot_run(self, job: Mapping[str, Any], available: int) -> dict[str, Any] | None:
        """Why a queued job cannot run on this server as it is configured now (a job
        queued before a restart may meet other settings), as the job's error."""
        if job["process"] == "eval" and not self.allow_eval:
            return error_record("EvalDisabled", "eval jobs are disabled on this server")
        cores = int(job.get("cores") or 1)
        if cores > available:
            return error_record(
                "NotEnoughCores",
                f"the job needs {cores} cores; this server runs at most {available}",
            )
        return None
