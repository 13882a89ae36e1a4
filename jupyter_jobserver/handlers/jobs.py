"""REST handlers for jobs: create, watch, change and remove them."""

from __future__ import annotations

import mimetypes
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..errors import InvalidRequest, NotFound
from ..jobs import job_filter
from ..models import JobCreate, JobDelete, JobEdit, JobQuery, JobRerun, parse
from .base import JobServerHandler

AUTH_RESOURCE = "jobserver"
TEXT = "text/plain; charset=UTF-8"
#: longest ``?wait=`` a request may hold the connection for
MAX_WAIT = 300.0


class JobsHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    def body_limit(self) -> int:
        if self.request.method == "POST":  # a job may carry its data inline
            return self.jobserver.jobs.policy.max_request_size
        return super().body_limit()

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.only_arguments("status", "script", "owner", "mine", "tag", "sort", "limit", "offset")
        jobs, total = await self.jobserver.jobs.list(
            self.user,
            status=self.list_argument("status"),
            script=self.list_argument("script"),
            owner=[self.user.name] if self.bool_argument("mine") else self.list_argument("owner"),
            tag=self.list_argument("tag"),
            sort=self.get_query_argument("sort", None),
            limit=self.int_argument("limit", 100, 1, 1000),
            offset=self.int_argument("offset", 0),
        )
        self.send({"jobs": jobs, "total": total})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        wait = self.float_argument("wait", None)
        request = parse(JobCreate, await self.json_body())
        jobs = self.jobserver.jobs
        # with ?wait, a quick job is one round trip: the answer comes when it has ended
        held = min(wait, MAX_WAIT) if wait else None
        key = self.request.headers.get("Idempotency-Key")
        if key is None:
            job, made = await jobs.create(self.user, request, wait=held), True
        else:  # the same key again answers with the job the first request made
            job, made = await jobs.create_once(self.user, request, key, wait=held)
            self.set_header("Idempotent-Replayed", "false" if made else "true")
        self.set_header("Location", self.location("jobs", job["id"]))
        self.send(job, 201 if made else 200)

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        # a typo here must not widen what is deleted: every part of the request is checked
        self.only_arguments("status", "script", "tag")
        body = await self.json_body()
        if body is not None:
            if any(self.get_query_arguments(name) for name in ("status", "script", "tag")):
                raise InvalidRequest(
                    "say which jobs to delete with query parameters or with a JSON body "
                    '({"filter": ...}), not both'
                )
            request = parse(JobDelete, body)
        else:
            request = JobDelete(
                filter=job_filter(
                    status=self.list_argument("status"),
                    script=self.list_argument("script"),
                    tag=self.list_argument("tag"),
                )
            )
        deleted = await self.jobserver.jobs.delete_many(self.user, request)
        self.send({"deleted": deleted})


class JobQueryHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = parse(JobQuery, await self.json_body())
        jobs, total = await self.jobserver.jobs.query(self.user, request)
        self.send({"jobs": jobs, "total": total})


class JobHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    def body_limit(self) -> int:  # an edit may bind inline data
        return self.jobserver.jobs.policy.max_request_size

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        wait = self.float_argument("wait", None)
        jobs = self.jobserver.jobs
        if wait:
            until = self.get_query_argument("until", None)
            job = await jobs.wait(self.user, job_id, min(wait, MAX_WAIT), until)
        else:
            job = await jobs.get(self.user, job_id)
        self.send(job)

    @web.authenticated
    @authorized
    async def patch(self, job_id: str) -> None:
        request = parse(JobEdit, await self.json_body())
        self.send(await self.jobserver.jobs.edit(self.user, job_id, request))

    @web.authenticated
    @authorized
    async def delete(self, job_id: str) -> None:
        await self.jobserver.jobs.delete(self.user, job_id)
        self.set_status(204)
        self.finish()


class JobActionHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def post(self, job_id: str, action: str) -> None:
        jobs = self.jobserver.jobs
        if action == "run":
            job = await jobs.run(self.user, job_id)
        elif action == "cancel":
            job = await jobs.cancel(self.user, job_id)
        elif action == "rerun":
            job = await jobs.rerun(self.user, job_id, parse(JobRerun, await self.json_body()))
            self.set_header("Location", self.location("jobs", job["id"]))
        else:
            raise NotFound(f"no action {action!r}; actions are: run, cancel, rerun")
        self.send(job, 202)


class JobOutputHandler(JobServerHandler):
    """A job's captured stdout or stderr as text, from a byte ``offset`` on.

    The answer says where to continue (``X-Jobserver-Next-Offset``) and whether the job has
    finished, so nothing more will come (``X-Jobserver-Complete``). Large output is sent in
    pieces, never read whole into memory.
    """

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, job_id: str, stream: str) -> None:
        limit = self.int_argument("limit", 0, 0)
        piece = await self.jobserver.jobs.output(
            self.user, job_id, stream, self.int_argument("offset", 0), limit or None
        )
        self.set_header("Content-Type", TEXT)
        self.set_header("X-Jobserver-Offset", str(piece.start))
        self.set_header("X-Jobserver-Next-Offset", str(piece.end))
        self.set_header("X-Jobserver-Complete", "true" if piece.complete else "false")
        self.set_header("Cache-Control", "no-store")
        async for chunk in piece.read():
            self.write(chunk)
            await self.flush()
        self.finish(set_content_type=TEXT)


class JobEventsHandler(JobServerHandler):
    """Server-sent events of one job: ``status``, ``progress``, ``output`` and ``end``."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        await self.stream_events(self.jobserver.jobs.follow(self.user, job_id))


class JobsEventsHandler(JobServerHandler):
    """Server-sent events of every job the user may see: ``status`` and ``deleted``."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        await self.stream_events(self.jobserver.jobs.watch(self.user), first=False)


class JobFilesHandler(JobServerHandler):
    """The files a job wrote in its working folder, with size and sha256."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        self.only_arguments()
        self.send({"files": await self.jobserver.jobs.files_of(self.user, job_id)})


class JobFileHandler(JobServerHandler):
    """One file of a job, sent a piece at a time; ``?download=1`` asks the browser to save
    it rather than show it."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, job_id: str, path: str) -> None:
        self.only_arguments("download")
        download = self.bool_argument("download")
        found = await self.jobserver.jobs.file(self.user, job_id, path)
        kind = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind in ("application/json", "image/svg+xml"):
            kind += "; charset=UTF-8"
        self.set_header("Content-Type", kind)
        if found.sha256:  # the job has ended: the file no longer changes
            self.set_header("Content-Length", str(found.size))
            self.set_header("X-Jobserver-Sha256", found.sha256)
        self.set_header("X-Content-Type-Options", "nosniff")
        # a page a job wrote (HTML, SVG) must not run as the server's own origin
        self.set_header("Content-Security-Policy", "sandbox")
        name = quote(path.rsplit("/", 1)[-1])
        disposition = "attachment" if download else "inline"
        self.set_header("Content-Disposition", f"{disposition}; filename*=UTF-8''{name}")
        self.set_header("Cache-Control", "no-store")
        async for chunk in found.read():
            self.write(chunk)
            await self.flush()
        self.finish()
