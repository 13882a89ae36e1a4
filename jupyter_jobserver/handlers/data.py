"""REST handlers for stored data documents."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..limits import SMALL_BODY
from ..models import DataCreate, DataEdit, DataReplace, parse
from .base import JobServerHandler

AUTH_RESOURCE = "jobserver"


class DataListHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    def body_limit(self) -> int:
        return _document_body_limit(self)

    @web.authenticated
    @authorized
    async def get(self) -> None:
        documents, total = await self.jobserver.documents.list(
            self.user,
            name=self.list_argument("name"),
            datatype=self.list_argument("datatype"),
            owner=self.list_argument("owner"),
            sort=self.get_query_argument("sort", None),
            limit=self.int_argument("limit", 100, 1, 1000),
            offset=self.int_argument("offset", 0),
        )
        self.send({"data": documents, "total": total})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        request = parse(DataCreate, await self.json_body())
        document = await self.jobserver.documents.create(self.user, request)
        self.set_header("Location", self.location("data", document["id"]))
        self.send(document, 201)


class DataDocumentHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    def body_limit(self) -> int:
        return _document_body_limit(self)

    @web.authenticated
    @authorized
    async def get(self, data_id: str) -> None:
        self.send(await self.jobserver.documents.get(self.user, data_id, raw=True))

    @web.authenticated
    @authorized
    async def put(self, data_id: str) -> None:
        request = parse(DataReplace, await self.json_body())
        changes = request.model_dump(exclude={"revision"})
        self.send(
            await self.jobserver.documents.edit(self.user, data_id, changes, request.revision)
        )

    @web.authenticated
    @authorized
    async def patch(self, data_id: str) -> None:
        request = parse(DataEdit, await self.json_body())
        changes = request.model_dump(exclude_unset=True, exclude={"revision"})
        self.send(
            await self.jobserver.documents.edit(self.user, data_id, changes, request.revision)
        )

    @web.authenticated
    @authorized
    async def delete(self, data_id: str) -> None:
        await self.jobserver.documents.delete(self.user, data_id)
        self.set_status(204)
        self.finish()


def _document_body_limit(handler: JobServerHandler) -> int:
    """A document's body: the largest document, plus room for its other fields."""
    size = handler.jobserver.documents.max_document_size
    return size + SMALL_BODY if size else 0
