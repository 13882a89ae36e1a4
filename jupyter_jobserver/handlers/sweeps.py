"""REST handlers for sweeps: many jobs of one script, made, followed and collected as one."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import InvalidRequest, NotFound
from ..jobs.sweeptable import table_csv
from ..models import SweepCreate, SweepRerun, parse
from .base import JobServerHandler

AUTH_RESOURCE = "jobserver"
CSV = "text/csv; charset=UTF-8"
#: the header that makes a create request idempotent
IDEMPOTENCY_KEY = "Idempotency-Key"


class SweepsHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.only_arguments("limit", "offset")
        sweeps, total = await self.jobserver.sweeps.list(
            self.user,
            limit=self.int_argument("limit", 20, 1, 1000),
            offset=self.int_argument("offset", 0),
        )
        self.send({"sweeps": sweeps, "total": total})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        self.only_arguments()
        request = parse(SweepCreate, await self.json_body())
        key = self.request.headers.get(IDEMPOTENCY_KEY)
        service = self.jobserver.sweeps
        if key is None:
            sweep, made = await service.create(self.user, request), True
        else:
            sweep, made = await service.create_once(self.user, request, key)
            self.set_header("Idempotent-Replayed", "false" if made else "true")
        self.set_header("Location", self.location("sweeps", sweep["id"]))
        self.send(sweep, 201 if made else 200)


class SweepHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, sweep_id: str) -> None:
        self.only_arguments()
        self.send(await self.jobserver.sweeps.get(self.user, sweep_id))

    @web.authenticated
    @authorized
    async def delete(self, sweep_id: str) -> None:
        await self.jobserver.sweeps.delete(self.user, sweep_id)
        self.set_status(204)
        self.finish()


class SweepActionHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def post(self, sweep_id: str, action: str) -> None:
        sweeps = self.jobserver.sweeps
        if action == "run":
            sweep = await sweeps.run(self.user, sweep_id)
        elif action == "cancel":
            sweep = await sweeps.cancel(self.user, sweep_id)
        elif action == "rerun":
            request = parse(SweepRerun, await self.json_body())
            sweep = await sweeps.rerun(self.user, sweep_id, request)
        else:
            raise NotFound(f"no action {action!r}; actions are: run, cancel, rerun")
        self.send(sweep, 202)


class SweepJobsHandler(JobServerHandler):
    """The sweep's jobs, every attempt, with the filters of ``GET jobs``."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, sweep_id: str) -> None:
        self.only_arguments("status", "tag", "sort", "limit", "offset")
        jobs, total = await self.jobserver.sweeps.list_jobs(
            self.user,
            sweep_id,
            status=self.list_argument("status"),
            tag=self.list_argument("tag"),
            sort=self.get_query_argument("sort", None),
            limit=self.int_argument("limit", 100, 1, 1000),
            offset=self.int_argument("offset", 0),
        )
        self.send({"jobs": jobs, "total": total})


class SweepResultsHandler(JobServerHandler):
    """The sweep as one table, a row per job: ``?format=json`` (default) or ``csv``."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, sweep_id: str) -> None:
        self.only_arguments("format")
        kind = self.get_query_argument("format", "json")
        if kind not in ("json", "csv"):
            raise InvalidRequest(f"format must be json or csv, not {kind!r}")
        table = await self.jobserver.sweeps.results(self.user, sweep_id)
        if kind == "json":
            self.send(table)
            return
        self.set_header("Content-Type", CSV)
        self.set_header("Content-Disposition", f'attachment; filename="sweep-{sweep_id}.csv"')
        self.finish(table_csv(table), set_content_type=CSV)


class SweepEventsHandler(JobServerHandler):
    """Server-sent events of a sweep: ``progress`` (the sweep, with its counts) as its
    jobs change, then ``end``."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, sweep_id: str) -> None:
        await self.stream_events(self.jobserver.sweeps.follow(self.user, sweep_id))
