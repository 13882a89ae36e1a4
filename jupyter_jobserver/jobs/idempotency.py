"""Idempotent creation: a request sent again with the same ``Idempotency-Key`` answers
with what the first one made, so a retry after a lost answer never doubles the work.

The key is claimed in the store (per user) *before* anything is made, for the id the new
job or sweep will have; a claim that is already there points to the first one. A request
that fails gives its claim back, so the key can be used again. The request's fingerprint
is kept with the key: the same key with another request is a mistake, and is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from ..errors import Conflict, InvalidRequest, NotFound
from ..store import StoreRunner
from ..store.query import utcnow
from ..users import User

T = TypeVar("T")

#: what a key may be: printable ASCII, as in an HTTP header, and not too long to keep
KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def fingerprint(kind: str, request: BaseModel) -> str:
    """What a request asks for, as a short hash (the same request, the same text)."""
    text = json.dumps([kind, request.model_dump(mode="json")], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotencyKeys:
    """Claims of idempotency keys in the store; see the module docstring."""

    def __init__(self, store: StoreRunner) -> None:
        self.store = store

    async def once(
        self,
        user: User,
        key: str,
        kind: str,
        request: BaseModel,
        make: Callable[[str], Awaitable[T]],
        fetch: Callable[[str], Awaitable[T]],
    ) -> tuple[T, bool]:
        """``make(new_id)`` the first time ``user`` sends ``key``; ``fetch(first_id)``
        every time after. Returns the thing and whether it was made now."""
        if not KEY.match(key):
            raise InvalidRequest(
                "Idempotency-Key must be 1 to 255 printable ASCII characters without spaces"
            )
        print_ = fingerprint(kind, request)
        target = uuid.uuid4().hex
        store = self.store.store
        first = await self.store.write(store.claim_key, user.name, key, target, print_, utcnow())
        if first is None:
            try:
                return await make(target), True
            except BaseException:
                # the key is free again: the next try with it makes the thing anew
                released = self.store.write(store.release_key, user.name, key, target)
                released.add_done_callback(_quiet)
                raise
        if first["fingerprint"] != print_:
            raise Conflict(
                f"the Idempotency-Key {key!r} was used on {first['created']} for another "
                f"request; send a new key with a new {kind}"
            )
        try:
            return await fetch(first["target"]), False
        except NotFound:
            raise Conflict(
                f"the {kind} first made with the Idempotency-Key {key!r} is still being "
                "made, or was deleted since; try again in a moment, or send a new key"
            ) from None


def _quiet(future: Any) -> None:
    """A failed release is only a key that stays taken: nothing to report to anyone."""
    if not future.cancelled():
        future.exception()
