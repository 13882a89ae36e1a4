"""The fields of each stored entity, in one table: what a filter may name (and compares
as which kind of value), what a list may be sorted by, and which index serves each.

Every store derives its columns and indexes from here, and the query language its
checks, so a field added once is filterable, sortable and indexed on every store.
"""

from __future__ import annotations

import dataclasses

#: an index on the field alone
ALONE = "alone"
#: an index on (field, created): the field is a selective filter and lists are newest first
BY_CREATED = "by_created"


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a stored record."""

    name: str
    #: what a filter compares it as (``string``, ``boolean``, ``time``, ``number``,
    #: ``integer``, ``tags``); ``None``: not filterable
    kind: str | None = None
    sortable: bool = False
    #: :data:`ALONE`, :data:`BY_CREATED` or ``None`` (the primary key needs none)
    index: str | None = None


class Entity:
    """The fields of one kind of record, and what follows from them."""

    def __init__(self, name: str, fields: tuple[Field, ...]) -> None:
        self.name = name
        self.fields = fields
        #: every field a record has, in order
        self.names = tuple(f.name for f in fields)
        #: field -> kind of value, for the fields a filter may name
        self.query_kinds = {f.name: f.kind for f in fields if f.kind is not None}
        #: fields a list may be sorted by
        self.sort_fields = tuple(f.name for f in fields if f.sortable)
        #: each index, as the fields it orders by
        self.indexes = tuple(
            (f.name,) if f.index == ALONE else (f.name, "created")
            for f in fields
            if f.index is not None
        )


JOBS = Entity(
    "jobs",
    (
        Field("id", "string"),
        Field("script", "string", sortable=True, index=BY_CREATED),
        Field("process", "string", index=ALONE),
        Field("status", "string", sortable=True, index=BY_CREATED),
        Field("owner", "string", sortable=True, index=BY_CREATED),
        Field("public", "boolean", index=BY_CREATED),
        Field("tags", "tags", index=ALONE),
        Field("args"),
        Field("kwargs"),
        Field("data"),
        Field("code"),
        Field("timeout"),
        Field("cores"),
        Field("created", "time", sortable=True, index=ALONE),
        Field("edited", "time", sortable=True, index=ALONE),
        Field("queued", "time", sortable=True, index=ALONE),
        Field("started", "time", sortable=True, index=ALONE),
        Field("finished", "time", sortable=True, index=ALONE),
        Field("time_sec", "number", sortable=True, index=ALONE),
        Field("result"),
        Field("error"),
        Field("exit_code", "integer", index=ALONE),
        Field("progress"),
        Field("provenance"),
        Field("rerun_of"),
        # the sweep the job belongs to, and its place in it (its row of the results
        # table); a rerun takes the place over, the job it replaces keeps only ``sweep``
        Field("sweep", "string", index=BY_CREATED),
        Field("sweep_index", "integer", index=ALONE),
    ),
)

DATA = Entity(
    "data",
    (
        Field("id", "string"),
        Field("name", "string", sortable=True, index=ALONE),
        Field("datatype", "string", sortable=True, index=ALONE),
        Field("description"),
        Field("owner", "string", sortable=True, index=BY_CREATED),
        Field("public", "boolean", index=BY_CREATED),
        Field("created", "time", sortable=True, index=ALONE),
        Field("edited", "time", sortable=True, index=ALONE),
        Field("revision", "integer", index=ALONE),
        Field("size", "integer", sortable=True, index=ALONE),
        Field("sha256"),
        Field("data"),
    ),
)

SWEEPS = Entity(
    "sweeps",
    (
        Field("id", "string"),
        Field("script", "string", sortable=True, index=BY_CREATED),
        Field("owner", "string", sortable=True, index=BY_CREATED),
        Field("public", "boolean", index=BY_CREATED),
        Field("size", "integer", sortable=True),
        Field("created", "time", sortable=True, index=ALONE),
        Field("cancelled", "time"),
        Field("tags"),
        Field("kwargs"),
        Field("grid"),
        Field("sets"),
        Field("datafiles"),
        Field("data"),
        Field("timeout"),
    ),
)

#: an ``Idempotency-Key`` a user sent with a request that creates something: the same
#: key again answers with what the first request made (``target``); ``fingerprint``
#: tells a retry from another request that reuses the key
IDEMPOTENCY_KEYS = Entity(
    "idempotency_keys",
    (
        Field("owner", "string"),
        Field("key", "string"),
        Field("target"),
        Field("fingerprint"),
        Field("created", "time"),
    ),
)
