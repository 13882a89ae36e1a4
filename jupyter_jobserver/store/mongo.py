"""The shared store: jobs and data documents in MongoDB, through pymongo.

Several job servers may use one database at once (:attr:`Store.shared`), so nothing here
relies on being alone: a status change is one ``find_one_and_update`` whose filter holds
the expected current status, and a data document changes only while its revision is the
one the editor read.

The fields a filter or a sort may name are kept as native BSON values (indexed as
:mod:`~jupyter_jobserver.store.fields` says); every other field is kept as its JSON text,
so any JSON a job holds (keys with ``$`` or ``.``, integers beyond 64 bits, key order)
comes back exactly as it went in, and a result is sent on without being decoded.

The connection string may carry credentials; they never appear in a log line or an error
message (:meth:`MongoStore.where` and :func:`redact`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Collection, Iterable, Iterator
from typing import Any

import pymongo
import pymongo.errors
from traitlets import Bool, Float, Unicode

from ..serialize import DeferredJSON, RawJSON
from ..vocabulary import ACTIVE, FINISHED
from .base import Store
from .fields import DATA, IDEMPOTENCY_KEYS, JOBS, SWEEPS, Entity
from .query import Condition, Logical, Node, Not

#: job fields kept as native values (filterable, sortable); the others are JSON text
JOB_NATIVE = frozenset(JOBS.query_kinds)
DATA_NATIVE = frozenset(DATA.query_kinds) | {"description", "sha256"}
SWEEP_NATIVE = frozenset(SWEEPS.query_kinds) | {"cancelled"}

#: the collection of active-job slots (:meth:`MongoStore.admit_active`)
ACTIVE_SLOTS = "active_slots"
#: seconds after which a slot whose job is neither queued nor running (or has no record)
#: is taken for the leftover of a submission that failed half-way
SLOT_GRACE = 60.0

#: a filter that matches nothing (``$in`` of no values)
NOTHING: dict[str, Any] = {"_id": {"$in": []}}

_USERINFO = re.compile(r"(mongodb(?:\+srv)?://)[^@/]*@")


class StoreUnavailable(Exception):
    """MongoDB cannot be reached or refused to serve; the message names no credentials."""


def redact(text: str) -> str:
    """``text`` with the user name and password of any MongoDB URI in it removed."""
    return _USERINFO.sub(r"\1***@", text)


def is_mongodb_url(url: str) -> bool:
    """Whether ``url`` names a MongoDB deployment (rather than a SQLite file)."""
    return url.startswith(("mongodb://", "mongodb+srv://"))


class MongoStore(Store):
    """Jobs and data documents in one MongoDB database; see the module docstring."""

    shared = True
    unavailable_errors = (StoreUnavailable,)

    uri = Unicode(
        help=(
            "The MongoDB connection string (mongodb:// or mongodb+srv://); default: "
            "JobServerApp.db_url. It may hold credentials: they are never logged."
        ),
    ).tag(config=True)

    database = Unicode(
        help=(
            "The database that holds the job server's collections; default: the one the "
            "connection string names, else 'jobserver'."
        ),
    ).tag(config=True)

    collection_prefix = Unicode(
        "",
        help="Put before each collection name (jobs, data), to keep several job servers "
        "apart in one database.",
    ).tag(config=True)

    tls = Bool(
        None,
        allow_none=True,
        help="Connect with TLS (default: as the connection string says).",
    ).tag(config=True)

    tls_ca_file = Unicode("", help="CA certificates that sign the server's.").tag(config=True)

    tls_certificate_key_file = Unicode(
        "", help="The client certificate and its key, for x.509 authentication."
    ).tag(config=True)

    tls_allow_invalid_certificates = Bool(
        False, help="Accept a server certificate that does not verify (testing only)."
    ).tag(config=True)

    timeout = Float(
        5.0,
        help=(
            "Seconds to wait for MongoDB before a request is answered with 503 "
            "(server selection and connection)."
        ),
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: Any = None
        self._jobs: Any = None
        self._data: Any = None
        self._sweeps: Any = None
        self._keys: Any = None
        self._db: Any = None

    @property
    def connection_string(self) -> str:
        return self.uri or self.url

    def where(self) -> str:
        return redact(self.connection_string)

    # --- connection --------------------------------------------------------------------

    def open(self) -> None:
        """Connect and create the indexes (creating one that exists is a no-op)."""
        if not is_mongodb_url(self.connection_string):
            raise RuntimeError(
                f"the MongoDB store needs a mongodb:// or mongodb+srv:// URL, not {self.where()!r}"
            )
        options: dict[str, Any] = {
            "serverSelectionTimeoutMS": int(self.timeout * 1000),
            "connectTimeoutMS": int(self.timeout * 1000),
            "appname": "jupyter-jobserver",
        }
        if self.tls is not None:
            options["tls"] = self.tls
        if self.tls_ca_file:
            options["tlsCAFile"] = self.tls_ca_file
        if self.tls_certificate_key_file:
            options["tlsCertificateKeyFile"] = self.tls_certificate_key_file
        if self.tls_allow_invalid_certificates:
            options["tlsAllowInvalidCertificates"] = True
        try:
            client = pymongo.MongoClient(self.connection_string, **options)
        except (pymongo.errors.PyMongoError, ValueError) as exc:
            raise RuntimeError(
                f"MongoDB connection string {self.where()!r}: {redact(str(exc))}"
            ) from None
        try:
            db = client.get_database(self.database or None)
        except pymongo.errors.ConfigurationError:  # neither the setting nor the URI names one
            db = client["jobserver"]
        self._client = client
        self._db = db
        self._jobs = self.collection("jobs")
        self._data = self.collection("data")
        self._sweeps = self.collection(SWEEPS.name)
        self._keys = self.collection(IDEMPOTENCY_KEYS.name)
        try:
            with self.guard():
                for collection, entity in (
                    (self._jobs, JOBS),
                    (self._data, DATA),
                    (self._sweeps, SWEEPS),
                ):
                    for keys in index_keys(entity):
                        collection.create_index(keys)
                # one claim per owner and key: the index makes a second insert fail
                self._keys.create_index([("owner", 1), ("key", 1)], unique=True)
        except StoreUnavailable as exc:
            self.close()
            raise RuntimeError(str(exc)) from None

    def collection(self, name: str) -> Any:
        """One of the job server's collections (for what keeps its data beside the
        store's, such as job output); the store must be open."""
        if self._db is None:
            raise RuntimeError("the MongoDB store is not open")
        return self._db[self.collection_prefix + name]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Turn a failure of MongoDB itself into :class:`StoreUnavailable` with a short
        message that says what happened, without the connection string's secrets."""
        try:
            yield
        except pymongo.errors.ConnectionFailure as exc:
            raise StoreUnavailable(
                f"MongoDB at {self.where()} cannot be reached ({_first_line(exc)}); "
                "the job server serves again as soon as it is back"
            ) from None
        except pymongo.errors.OperationFailure as exc:
            if exc.code in (13, 18):  # unauthorized, authentication failed
                raise StoreUnavailable(
                    f"MongoDB at {self.where()} refused the job server's credentials"
                ) from None
            raise

    # --- jobs -------------------------------------------------------------------------

    def insert_job(self, job: dict[str, Any]) -> None:
        with self.guard():
            self._jobs.insert_one(_to_mongo(job, JOB_NATIVE))

    def get_job(
        self, job_id: str, *, result: bool = True, raw: bool = False
    ) -> dict[str, Any] | None:
        projection = None if result else {"result": 0}
        with self.guard():
            found = self._jobs.find_one({"_id": job_id}, projection)
        return None if found is None else _from_mongo(found, JOB_NATIVE, "result" if raw else "")

    def update_job(
        self,
        job_id: str,
        changes: dict[str, Any],
        *,
        status_in: Collection[str] | None = None,
    ) -> bool:
        """One ``find_one_and_update`` whose filter holds the expected status, so the
        check and the change are one step on the server."""
        query: dict[str, Any] = {"_id": job_id}
        if status_in is not None:
            query["status"] = {"$in": list(status_in)}
        for key in changes:
            if key not in JOBS.names or key == "id":
                raise ValueError(f"not a job field: {key!r}")
        with self.guard():
            if not changes:
                return self._jobs.find_one(query, {"_id": 1}) is not None
            found = self._jobs.find_one_and_update(
                query, {"$set": _to_mongo(changes, JOB_NATIVE)}, projection={"_id": 1}
            )
        return found is not None

    def find_jobs(
        self,
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        return self._find(self._jobs, JOB_NATIVE, {"result": 0}, where, sort, limit, offset)

    def _find(
        self,
        collection: Any,
        native: frozenset[str],
        projection: dict[str, int],
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of documents matching ``where`` (ties in id order, as on SQLite), and
        how many match in all."""
        query = compile_filter(where)
        order = [(_name(field), direction) for field, direction in sort] + [("_id", 1)]
        with self.guard():
            cursor = (
                collection.find(query, projection or None).sort(order).skip(offset).limit(limit)
            )
            page = [_from_mongo(doc, native) for doc in cursor]
            total = collection.count_documents(query)
        return page, total

    def job_ids(self, where: Node | None) -> list[str]:
        with self.guard():
            return [doc["_id"] for doc in self._jobs.find(compile_filter(where), {"_id": 1})]

    def delete_jobs(self, job_ids: Iterable[str]) -> int:
        return self._delete(self._jobs, job_ids)

    def _delete(self, collection: Any, ids: Iterable[str]) -> int:
        ids = list(ids)
        deleted = 0
        with self.guard():
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                deleted += collection.delete_many({"_id": {"$in": chunk}}).deleted_count
        return deleted

    def insert_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """One ordered ``insert_many``. MongoDB has no all-or-none write outside a
        transaction (which a standalone server does not offer), so when a job fails to go
        in, the jobs before it that did are deleted again before the error is raised:
        none stays behind, though a reader may glimpse them meanwhile."""
        if not jobs:
            return
        documents = [_to_mongo(job, JOB_NATIVE) for job in jobs]
        with self.guard():
            try:
                self._jobs.insert_many(documents, ordered=True)
            except pymongo.errors.BulkWriteError as exc:
                written = int(exc.details.get("nInserted", 0))
                self._delete(self._jobs, [doc["_id"] for doc in documents[:written]])
                raise

    def job_summary(self, where: Node | None) -> dict[str, Any]:
        """One aggregation: a count and the first start and last finish per status."""
        pipeline = [
            {"$match": compile_filter(where)},
            {
                "$group": {
                    "_id": "$status",
                    "n": {"$sum": 1},
                    "started": {"$min": "$started"},
                    "finished": {"$max": "$finished"},
                }
            },
        ]
        with self.guard():
            rows = list(self._jobs.aggregate(pipeline))
        starts = [r["started"] for r in rows if r.get("started") is not None]
        ends = [r["finished"] for r in rows if r.get("finished") is not None]
        return {
            "counts": {r["_id"]: int(r["n"]) for r in rows},
            "started": min(starts) if starts else None,
            "finished": max(ends) if ends else None,
        }

    def job_results(self, job_ids: Iterable[str]) -> dict[str, RawJSON]:
        ids = list(job_ids)
        found: dict[str, RawJSON] = {}
        with self.guard():
            for start in range(0, len(ids), 500):
                query = {"_id": {"$in": ids[start : start + 500]}, "result": {"$ne": None}}
                for doc in self._jobs.find(query, {"result": 1}):
                    found[doc["_id"]] = RawJSON(doc["result"])
        return found

    # --- sweeps -----------------------------------------------------------------------

    def insert_sweep(self, sweep: dict[str, Any]) -> None:
        sweep = {**sweep, "public": bool(sweep.get("public"))}
        with self.guard():
            self._sweeps.insert_one(_to_mongo(sweep, SWEEP_NATIVE))

    def get_sweep(self, sweep_id: str) -> dict[str, Any] | None:
        with self.guard():
            found = self._sweeps.find_one({"_id": sweep_id})
        return None if found is None else _from_mongo(found, SWEEP_NATIVE)

    def update_sweep(self, sweep_id: str, changes: dict[str, Any]) -> bool:
        for key in changes:
            if key not in SWEEPS.names or key == "id":
                raise ValueError(f"not a sweep field: {key!r}")
        if "public" in changes:
            changes = {**changes, "public": bool(changes["public"])}
        with self.guard():
            if not changes:
                return self._sweeps.find_one({"_id": sweep_id}, {"_id": 1}) is not None
            found = self._sweeps.find_one_and_update(
                {"_id": sweep_id},
                {"$set": _to_mongo(changes, SWEEP_NATIVE)},
                projection={"_id": 1},
            )
        return found is not None

    def find_sweeps(
        self,
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        return self._find(self._sweeps, SWEEP_NATIVE, {}, where, sort, limit, offset)

    def delete_sweeps(self, sweep_ids: Iterable[str]) -> int:
        return self._delete(self._sweeps, sweep_ids)

    # --- idempotency keys -------------------------------------------------------------

    def claim_key(
        self, owner: str, key: str, target: str, fingerprint: str, created: str
    ) -> dict[str, Any] | None:
        """Insert the claim; the unique index on (owner, key) turns a second claim into
        a duplicate-key error, and then the first claim is read. A claim released between
        the two steps is taken again."""
        claim = {"target": target, "fingerprint": fingerprint, "created": created}
        with self.guard():
            while True:
                try:
                    self._keys.insert_one({"owner": owner, "key": key, **claim})
                except pymongo.errors.DuplicateKeyError:
                    first = self._keys.find_one(
                        {"owner": owner, "key": key},
                        {"_id": 0, "target": 1, "fingerprint": 1, "created": 1},
                    )
                    if first is not None:
                        return dict(first)
                    continue
                return None

    def release_key(self, owner: str, key: str, target: str) -> None:
        with self.guard():
            self._keys.delete_one({"owner": owner, "key": key, "target": target})

    # --- active-job admission ---------------------------------------------------------

    def admit_active(self, owner: str, job_id: str, limit: int, now: str) -> bool:
        """Take one of ``owner``'s ``limit`` numbered slots (documents whose ``_id`` is
        owner and number): inserting a slot that exists fails on the server, so two
        servers can never take the same one. When every slot is taken, the slots of jobs
        that have finished (or, after :data:`SLOT_GRACE`, never got a record) are freed
        and the slots tried once more: a server that died holding slots costs nothing."""
        slots = self.collection(ACTIVE_SLOTS)
        with self.guard():
            for attempt in range(2):
                for n in range(limit):
                    try:
                        slots.insert_one(
                            {"_id": f"{owner}\0{n}", "owner": owner, "job": job_id, "since": now}
                        )
                    except pymongo.errors.DuplicateKeyError:
                        continue
                    return True
                if attempt == 0 and not self._free_stale_slots(owner, now):
                    return False
        return False

    def _free_stale_slots(self, owner: str, now: str) -> int:
        slots = self.collection(ACTIVE_SLOTS)
        held = list(slots.find({"owner": owner}, {"job": 1, "since": 1}))
        jobs = {
            doc["_id"]: doc["status"]
            for doc in self._jobs.find({"_id": {"$in": [s["job"] for s in held]}}, {"status": 1})
        }
        freed = 0
        for slot in held:
            status = jobs.get(slot["job"])
            stale = status in FINISHED or (
                status not in ACTIVE and _seconds_between(slot["since"], now) > SLOT_GRACE
            )
            if stale:
                freed += slots.delete_one({"_id": slot["_id"], "job": slot["job"]}).deleted_count
        return freed

    def release_active(self, job_ids: Iterable[str]) -> None:
        ids = list(job_ids)
        with self.guard():
            for start in range(0, len(ids), 500):
                self.collection(ACTIVE_SLOTS).delete_many(
                    {"job": {"$in": ids[start : start + 500]}}
                )

    # --- data documents -------------------------------------------------------------

    def insert_data(self, document: dict[str, Any]) -> None:
        document = {**document, "public": bool(document.get("public"))}
        with self.guard():
            self._data.insert_one(_to_mongo(document, DATA_NATIVE))

    def get_data(
        self, data_id: str, *, payload: bool = True, raw: bool = False
    ) -> dict[str, Any] | None:
        projection = None if payload else {"data": 0}
        with self.guard():
            found = self._data.find_one({"_id": data_id}, projection)
        return None if found is None else _from_mongo(found, DATA_NATIVE, "data" if raw else "")

    def update_data(
        self, data_id: str, changes: dict[str, Any], *, revision: int | None = None
    ) -> bool:
        for key in changes:
            if key not in DATA.names or key == "id":
                raise ValueError(f"not a data document field: {key!r}")
        query: dict[str, Any] = {"_id": data_id}
        if revision is not None:
            query["revision"] = revision
        if "public" in changes:
            changes = {**changes, "public": bool(changes["public"])}
        with self.guard():
            if not changes:
                return self._data.find_one(query, {"_id": 1}) is not None
            found = self._data.find_one_and_update(
                query, {"$set": _to_mongo(changes, DATA_NATIVE)}, projection={"_id": 1}
            )
        return found is not None

    def find_data(
        self,
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        return self._find(self._data, DATA_NATIVE, {"data": 0}, where, sort, limit, offset)

    def delete_data(self, data_ids: Iterable[str]) -> int:
        return self._delete(self._data, data_ids)


# --- documents ------------------------------------------------------------------------


def _name(field: str) -> str:
    return "_id" if field == "id" else field


def _json_text(value: Any) -> str:
    if isinstance(value, DeferredJSON):
        return value.text()
    if isinstance(value, RawJSON):
        return str(value)
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _to_mongo(record: dict[str, Any], native: frozenset[str]) -> dict[str, Any]:
    """A record as stored: native values for filterable fields, JSON text for the rest
    (``None`` stays ``None``)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in native:
            out[_name(key)] = value
        else:
            out[key] = None if value is None else _json_text(value)
    return out


def _from_mongo(doc: dict[str, Any], native: frozenset[str], raw: str = "") -> dict[str, Any]:
    """A stored document as a record; the field named by ``raw`` stays JSON text."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "_id":
            out["id"] = value
        elif key in native or value is None:
            out[key] = value
        elif key == raw:
            out[key] = RawJSON(value)
        else:
            out[key] = json.loads(value)
    return out


def index_keys(entity: Entity) -> list[list[tuple[str, int]]]:
    """The index behind every filter and sort of ``entity``'s field table (``tags`` is a
    multikey index on the array)."""
    return [[(_name(column), 1) for column in columns] for columns in entity.indexes]


def _seconds_between(earlier: str, later: str) -> float:
    """Seconds from one job time (fixed-width UTC ISO text) to another."""
    from datetime import datetime

    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(later) - parse(earlier)).total_seconds()


def _first_line(exc: BaseException) -> str:
    text = redact(str(exc)).split(", Timeout:")[0].split("\n")[0]
    return text[:200]


# --- filters --------------------------------------------------------------------------


def compile_filter(node: Node | None) -> dict[str, Any]:
    """Translate a parsed filter into a MongoDB filter with the meaning the SQLite store
    gives it: a field that is not set equals ``null``, ``$exists`` means "is set (not
    null)", and a job with an empty ``tags`` list has no tags."""
    if node is None:
        return {}
    return _mongo(node)


def _mongo(node: Node) -> dict[str, Any]:
    if isinstance(node, Logical):
        return {node.op: [_mongo(item) for item in node.items]}
    if isinstance(node, Not):
        return {"$nor": [_mongo(node.item)]}
    if node.field == "tags":
        return _tags(node)
    return _field(node)


def _field(node: Condition) -> dict[str, Any]:
    name, op, value = _name(node.field), node.op, node.value
    if op == "$exists":
        return {name: {"$ne": None}} if value else {name: None}
    if op in ("$in", "$nin"):
        # null among the values is spelled out: not every server treats it alike
        values = [v for v in value if v is not None]
        listed = {name: {op: values}}
        if len(values) == len(value):
            return listed
        if op == "$in":
            return {"$or": [{name: None}, listed]}
        return {"$and": [{name: {"$ne": None}}, listed]}
    if op == "$eq":
        return {name: value}
    return {name: {op: value}}


def _tags(node: Condition) -> dict[str, Any]:
    none = {"$or": [{"tags": None}, {"tags": {"$size": 0}}]}
    op, value = node.op, node.value
    if op == "$exists" or value is None:
        want_any = value if op == "$exists" else op == "$ne"
        return {"$nor": [none]} if want_any else none
    if op == "$eq":
        return {"tags": value}
    if op == "$ne":
        return {"tags": {"$ne": value}}
    values = [v for v in value if v is not None]  # as on SQLite: a null among tags is no tag
    if op in ("$all", "$in"):
        return {"tags": {op: values}} if values else NOTHING
    return {"tags": {"$nin": values}}
