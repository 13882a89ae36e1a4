"""Stored data documents: JSON in the store, bound to jobs as ``{"type": "mongodb"}``.

A document has a ``datatype`` that says how it becomes a Python value (see
:mod:`jupyter_jobserver.data.datatypes`), an owner, and a ``revision`` that goes up with every
change, so a job can record exactly which version of the data it read and an editor
cannot silently overwrite someone else's change. Lists never carry the payload.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

from traitlets import Int
from traitlets.config import LoggingConfigurable

from ..errors import Conflict, InvalidRequest, NotFound, PermissionDenied, TooLarge
from ..models import DataCreate
from ..store import RawJSON, StoreRunner
from ..store.query import (
    DATA_FIELDS,
    DATA_SORT_FIELDS,
    any_of,
    narrowed,
    parse_filter,
    parse_sort,
    utcnow,
)
from ..users import User
from . import datatypes

_UNSET = object()


class DataDocuments(LoggingConfigurable):
    """Create, read, change and delete data documents."""

    max_document_size = Int(
        64 << 20,
        help="Largest stored data document, in bytes of JSON.",
    ).tag(config=True)

    def __init__(self, store: StoreRunner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store

    async def create(self, user: User, request: DataCreate) -> dict[str, Any]:
        payload = await self._payload(request.datatype, request.data)
        now = utcnow()
        document = {
            "id": uuid.uuid4().hex,
            "name": request.name,
            "datatype": request.datatype,
            "description": request.description,
            "owner": user.name,
            "public": request.public,
            "created": now,
            "edited": None,
            "revision": 1,
            **payload,
        }
        await self.store.write(self.store.store.insert_data, document)
        return {**document, "data": request.data}

    async def get(
        self, user: User, data_id: str, *, payload: bool = True, raw: bool = False
    ) -> dict[str, Any]:
        """A document the user may see; with ``raw``, its payload as the stored JSON text
        (to send on as it is)."""
        document = await self.store.read(
            self.store.store.get_data, data_id, payload=payload, raw=raw
        )
        if document is None or not user.may_see(document):
            raise NotFound(f"no data document with id {data_id!r}")
        return document

    async def list(
        self,
        user: User,
        *,
        name: list[str] | None = None,
        datatype: list[str] | None = None,
        owner: list[str] | None = None,
        sort: Any = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        spec = any_of(name=name, datatype=datatype, owner=owner)
        where = parse_filter(spec, DATA_FIELDS) if spec else None
        where = narrowed(where, user.visible_filter(), DATA_FIELDS)
        order = parse_sort(sort, DATA_SORT_FIELDS)
        return await self.store.read(self.store.store.find_data, where, order, limit, offset)

    async def edit(
        self, user: User, data_id: str, changes: dict[str, Any], revision: int | None = None
    ) -> dict[str, Any]:
        """Change fields of a document; with ``revision``, only if it is still current."""
        current = await self._owned(user, data_id)
        changes = dict(changes)
        datatype = changes.get("datatype", current["datatype"])
        payload = changes.pop("data", _UNSET)
        if payload is not _UNSET:
            changes.update(await self._payload(datatype, payload))
        elif "datatype" in changes and datatype != current["datatype"]:
            # the stored payload must suit the new datatype
            await self._payload(datatype, (await self.get(user, data_id))["data"])
        changes["revision"] = current["revision"] + 1
        changes["edited"] = utcnow()
        expected = revision if revision is not None else current["revision"]
        if not await self.store.write(
            self.store.store.update_data, data_id, changes, revision=expected
        ):
            if revision is not None:
                raise Conflict(
                    f"data document {data_id} is no longer at revision {revision}; "
                    "read it again and repeat the change"
                )
            raise Conflict(f"data document {data_id} changed meanwhile; try again")
        if payload is _UNSET:
            return await self.get(user, data_id)
        return {**current, **changes, "data": payload}

    async def delete(self, user: User, data_id: str) -> None:
        await self._owned(user, data_id)
        await self.store.write(self.store.store.delete_data, [data_id])

    async def _owned(self, user: User, data_id: str) -> dict[str, Any]:
        document = await self.get(user, data_id, payload=False)
        if not user.may_change(document):
            raise PermissionDenied(
                f"data document {data_id} belongs to {document['owner']}; "
                "only its owner can change it"
            )
        return document

    async def _payload(self, datatype: str, data: Any) -> dict[str, Any]:
        """Check a payload against its datatype; its stored text, size and checksum."""
        try:
            await asyncio.to_thread(datatypes.validate, datatype, data)
        except (ValueError, TypeError) as exc:
            raise InvalidRequest(f"data: {exc}") from None
        try:
            text, digest = await asyncio.to_thread(canonical, data)
        except ValueError:
            raise InvalidRequest("data: NaN and infinities are not JSON; use null") from None
        if len(text) > self.max_document_size:
            raise TooLarge(
                f"the data is {len(text):,} bytes of JSON; documents may be at most "
                f"{self.max_document_size:,} bytes"
            )
        return {"data": RawJSON(text), "size": len(text), "sha256": digest}


def canonical(data: Any) -> tuple[str, str]:
    """Compact JSON with sorted keys, and its sha256: equal data, equal checksum."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text, hashlib.sha256(text.encode()).hexdigest()
