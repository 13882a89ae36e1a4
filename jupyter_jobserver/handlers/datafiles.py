"""REST handlers for datafiles: list, read, convert, upload (streamed) and delete."""

from __future__ import annotations

import asyncio
import copy
from typing import Any
from urllib.parse import quote

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..data.datafiles import FORMATS, MultipartFile, Upload
from ..errors import InvalidRequest, JobServerError, PermissionDenied, TooLarge
from ..models import DataFileCopy, parse
from .base import JobServerHandler

AUTH_RESOURCE = "jobserver"
#: how much of an upload's body is read at a time
UPLOAD_READ_SIZE = 1 << 20
#: slack on top of the file size limit for a multipart body's own headers
MULTIPART_OVERHEAD = 1 << 20


class DataFilesHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        files = self.jobserver.datafiles
        self.send({"datafiles": await files.list(self.user), "extensions": list(files.extensions)})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Copy a file that is under the Jupyter root into the data folder (it never
        travels through the browser). Reading it takes the right to read contents."""
        request = parse(DataFileCopy, await self.json_body())
        if not self.authorizer.is_authorized(self, self.current_user, "read", "contents"):
            raise PermissionDenied("you may not read files under the Jupyter root")
        contents = self.contents_manager
        root = getattr(contents, "root_dir", None) or self.jobserver.server.root_dir
        meta, replaced = await self.jobserver.datafiles.copy_in(
            self.user,
            root,
            request.path,
            name=request.name,
            overwrite=request.overwrite,
            shared=request.shared,
            allow_hidden=bool(getattr(contents, "allow_hidden", False)),
        )
        self.set_header("Location", self.location("datafiles", meta["name"]))
        self.send(meta, 200 if replaced else 201)

    @web.authenticated
    @authorized
    async def delete(self) -> None:
        self.send({"deleted": await self.jobserver.datafiles.delete_all(self.user)})


@web.stream_request_body
class DataFileHandler(JobServerHandler):
    """One datafile. ``PUT`` streams the body to disk as it arrives: a raw body, or the
    ``file`` field of a multipart form."""

    auth_resource = AUTH_RESOURCE
    upload: Upload | None = None
    multipart: MultipartFile | None = None
    failure: JobServerError | None = None

    async def prepare(self) -> None:  # type:ignore[override]  # as APIHandler's
        await super().prepare()  # authentication and XSRF, before any byte is accepted
        if self.request.method != "PUT":
            return
        if not self.authorizer.is_authorized(self, self.current_user, "write", AUTH_RESOURCE):
            raise PermissionDenied("you may not upload datafiles")
        files = self.jobserver.datafiles
        content_type = self.request.headers.get("Content-Type", "")
        length = self.request.headers.get("Content-Length")
        limit = files.max_datafile_size
        if content_type.startswith("multipart/form-data"):
            self.multipart = MultipartFile(content_type)
            if limit and length is not None and int(length) > limit + MULTIPART_OVERHEAD:
                raise TooLarge(
                    f"the upload is {int(length):,} bytes; datafiles may be at most {limit:,} bytes"
                )
        connection: Any = self.request.connection  # an HTTP1Connection while reading
        connection.set_max_body_size(1 << 62)  # the limit is enforced here, with a reason
        _larger_reads(connection)
        self.upload = files.start_upload(
            self.user,
            self.path_kwargs["name"],
            overwrite=self.bool_argument("overwrite"),
            expected_size=None if self.multipart or length is None else int(length),
            shared=self.bool_argument("shared"),
        )

    async def data_received(self, chunk: bytes) -> None:
        if self._refused is not None:
            await self.drain(chunk)  # answered already: the rest is read and dropped
            return
        if self.upload is None or self.failure is not None:
            return  # a refused upload: the rest of the body is read and dropped
        try:
            pieces = self.multipart.feed(chunk) if self.multipart else (chunk,)
            for piece in pieces:
                await self.upload.write(piece)
        except TooLarge as exc:  # answered at once, not after the whole body
            self.upload.abort()
            await self.refuse_body(exc)
        except JobServerError as exc:
            self.failure = exc
            self.upload.abort()

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        files = self.jobserver.datafiles
        fmt = self.get_query_argument("format", None)
        if fmt is None:
            self.send(await files.info(self.user, name))
            return
        if fmt == "raw":
            location, opened = await files.open(self.user, name)
            self.set_header("Content-Type", FORMATS["raw"])
            self.set_header("Content-Disposition", attachment(location.name))
            with opened as f:
                while chunk := await asyncio.to_thread(f.read, 1 << 20):
                    self.write(chunk)
                    await self.flush()
            self.finish(set_content_type=FORMATS["raw"])
            return
        content_type, body = await files.convert(self.user, name, fmt)
        self.finish(body, set_content_type=content_type)

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        assert self.upload is not None
        if self.failure is not None:
            raise self.failure
        if self.multipart is not None and not (self.multipart.found and self.multipart.complete):
            self.upload.abort()
            raise InvalidRequest("the multipart body has no complete field named 'file'")
        existed = self.upload.overwrite and self.upload.location.path.exists()
        meta = await self.upload.finish()
        self.set_header("Location", self.location("datafiles", meta["name"]))
        self.send(meta, 200 if existed else 201)

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.jobserver.datafiles.delete(self.user, name)
        self.set_status(204)
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self.request.method == "PUT":
            # the body may not have been read: the client must not reuse this connection
            self.set_header("Connection", "close")
        super().write_error(status_code, **kwargs)

    def on_connection_close(self) -> None:
        """The client went away mid-upload: nothing of it stays behind."""
        if self.upload is not None:
            self.upload.abort()
        super().on_connection_close()

    def on_finish(self) -> None:
        if self.upload is not None and self.get_status() >= 400:
            self.upload.abort()


def _larger_reads(connection: Any) -> None:
    """Read this request's body in pieces of 1 MiB rather than Tornado's 64 KiB: a large
    upload then costs the event loop a sixteenth of the wake-ups. (Only this connection's
    parameters change; Tornado shares the defaults between connections.)"""
    params = getattr(connection, "params", None)
    stream = getattr(connection, "stream", None)
    if params is None or stream is None:
        return
    connection.params = copy.copy(params)
    connection.params.chunk_size = UPLOAD_READ_SIZE
    stream.read_chunk_size = max(stream.read_chunk_size, UPLOAD_READ_SIZE)


def attachment(name: str) -> str:
    """``Content-Disposition`` for a download: a plain ASCII name for old clients, and
    the exact name in UTF-8 as RFC 6266 / 5987 say (a header cannot carry it as is)."""
    plain = "".join(c if " " <= c < "\x7f" and c not in '"\\%' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"
