"""Job policy: the limits and permissions every job is checked against.

The rules live here, apart from the state machine, so that a new limit (jobs per day,
per group) is one method and one setting, and the same rule answers wherever it is
asked: at creation, when a created job is run, when a queued job is started again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from traitlets import Bool, Dict, Float, Int, List, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from ..errors import InvalidRequest, LimitReached, PermissionDenied
from ..users import User
from ..vocabulary import error_record

#: what an entry of ``JobPolicy.limit_overrides`` may set
OVERRIDABLE = ("max_active_jobs", "max_jobs")


@dataclasses.dataclass(frozen=True)
class Limits:
    """One user's limits (0: none), and where each comes from, for the 429's message."""

    max_active_jobs: int
    max_jobs: int
    active_from: str
    total_from: str


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

    max_jobs_per_user = Int(
        0,
        help="Jobs one user may keep in the store in total, whatever their status "
        "(0: no limit); more are refused with 429 until some are deleted.",
    ).tag(config=True)

    limit_overrides = Dict(
        help="Limits for named users, or for groups as 'group:NAME' (see `groups`): "
        "{'alice': {'max_active_jobs': 8}, 'group:physics': {'max_jobs': 10000}}. "
        "Keys: max_active_jobs, max_jobs (0: no limit). A user's own entry wins; of "
        "several groups, the most generous value.",
    ).tag(config=True)

    groups = Dict(
        value_trait=List(Unicode()),
        help="Groups of users for `limit_overrides`: {'physics': ['alice', 'bob']}.",
    ).tag(config=True)

    admins_exempt = Bool(
        False,
        help="Administrators are not held to the per-user job limits.",
    ).tag(config=True)

    max_result_size = Int(
        64 << 20,
        help="Largest job result, in bytes of JSON; a larger one fails the job with a "
        "message saying so.",
    ).tag(config=True)

    max_request_size = Int(
        64 << 20,
        help="Largest body of a request that creates or edits a job (inline data "
        "included), in bytes (0: no limit); a larger one is refused with 413 before it "
        "is read.",
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

    @validate("limit_overrides")
    def _valid_overrides(self, proposal: Any) -> dict[str, Any]:
        for who, values in proposal["value"].items():
            if not isinstance(values, dict) or not set(values) <= set(OVERRIDABLE):
                raise TraitError(
                    f"JobPolicy.limit_overrides[{who!r}] must be a dict with keys among "
                    f"{', '.join(OVERRIDABLE)}"
                )
            for key, value in values.items():
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise TraitError(
                        f"JobPolicy.limit_overrides[{who!r}][{key!r}] must be a whole "
                        "number, 0 or more (0: no limit)"
                    )
        return dict(proposal["value"])

    def limits(self, user: User) -> Limits:
        """The limits ``user`` is held to: their own override, else the most generous
        of their groups' overrides, else the server's defaults."""
        if user.admin and self.admins_exempt:
            return Limits(0, 0, "JobPolicy.admins_exempt", "JobPolicy.admins_exempt")
        found = {
            "max_active_jobs": (
                self.max_active_jobs_per_user,
                "JobPolicy.max_active_jobs_per_user",
            ),
            "max_jobs": (self.max_jobs_per_user, "JobPolicy.max_jobs_per_user"),
        }
        overrides = self.limit_overrides
        for group in sorted(g for g, members in self.groups.items() if user.name in members):
            for key, value in overrides.get(f"group:{group}", {}).items():
                current, where = found[key]
                if where.startswith("JobPolicy.max") or _more_generous(value, current):
                    found[key] = (value, f"JobPolicy.limit_overrides['group:{group}']")
        for key, value in overrides.get(user.name, {}).items():
            found[key] = (value, f"JobPolicy.limit_overrides[{user.name!r}]")
        (active, active_from), (total, total_from) = found["max_active_jobs"], found["max_jobs"]
        return Limits(active, total, active_from, total_from)

    def check_active(self, user: User, active: int) -> None:
        """A 429 when ``user`` already has as many jobs queued or running as allowed."""
        limits = self.limits(user)
        limit = limits.max_active_jobs
        if limit and active >= limit:
            raise LimitReached(
                f"{user.name} already has {limit} job(s) queued or running, the most "
                f"allowed ({limits.active_from}); wait for one to finish or cancel one"
            )

    def check_total(self, user: User, total: int, adding: int = 1) -> None:
        """A 429 when ``user``, who keeps ``total`` jobs in the store, may not add
        ``adding`` more."""
        limits = self.limits(user)
        limit = limits.max_jobs
        if limit and total + adding > limit:
            if adding == 1:
                reason = f"{user.name} already has {limit} job(s), the most allowed"
            else:
                reason = (
                    f"{adding} more job(s) would give {user.name} {total + adding}, and at "
                    f"most {limit} are allowed"
                )
            raise LimitReached(f"{reason} ({limits.total_from}); delete some to create more")

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


def _more_generous(value: int, current: int) -> bool:
    """0 (no limit) is the most generous of all."""
    return current != 0 and (value == 0 or value > current)
