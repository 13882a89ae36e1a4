"""The embedded store: one SQLite file, no setup.

The file is in WAL mode, so readers never wait for the writer; every filter and sort the
API offers has an index; a status change is one ``BEGIN IMMEDIATE`` transaction that
checks the current status first, so two callers can never both move a job on.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator
from typing import IO, Any

from traitlets import Enum, Float

from ..serialize import DeferredJSON, RawJSON
from .base import Store
from .fields import DATA, JOBS, SWEEPS, Entity
from .lock import hold_lock
from .query import Condition, Logical, Node, Not

SCHEMA_VERSION = 3

#: job fields kept in their own column (filterable, sortable); the rest live in ``body``
JOB_COLUMNS = tuple(name for name in JOBS.query_kinds if name != "tags")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    script TEXT,
    process TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    edited TEXT,
    queued TEXT,
    started TEXT,
    finished TEXT,
    time_sec REAL,
    exit_code INTEGER,
    sweep TEXT,
    sweep_index INTEGER,
    body TEXT NOT NULL,
    result TEXT
);
CREATE TABLE IF NOT EXISTS job_tags (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (job_id, tag)
);
CREATE INDEX IF NOT EXISTS job_tags_tag ON job_tags (tag, job_id);
CREATE TABLE IF NOT EXISTS data (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    datatype TEXT NOT NULL,
    description TEXT,
    owner TEXT NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    edited TEXT,
    revision INTEGER NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweeps (
    id TEXT PRIMARY KEY,
    script TEXT NOT NULL,
    owner TEXT NOT NULL,
    public INTEGER NOT NULL DEFAULT 0,
    size INTEGER NOT NULL,
    created TEXT NOT NULL,
    cancelled TEXT,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    target TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (owner, key)
);
"""

#: columns each schema version added to a table that existed before it
ADDED_COLUMNS = {3: {"jobs": ("sweep TEXT", "sweep_index INTEGER")}}

#: data document fields, in column order (the payload, ``data``, is the last column)
DATA_COLUMNS = tuple(field for field in DATA.names if field != "data")


def index_statements(entity: Entity) -> str:
    """An index for every filter and sort the entity's field table asks for (tags are
    indexed in their own table)."""
    return "".join(
        f"CREATE INDEX IF NOT EXISTS {entity.name}_{'_'.join(columns)} "
        f"ON {entity.name} ({', '.join(columns)});\n"
        for columns in entity.indexes
        if columns[0] != "tags"
    )


SCHEMA += index_statements(JOBS) + index_statements(DATA) + index_statements(SWEEPS)

#: sweep fields kept in their own column; the rest live in ``body``
SWEEP_COLUMNS = tuple(SWEEPS.query_kinds)


class SQLiteStore(Store):
    """Jobs and data documents in one SQLite file."""

    unavailable_errors = (sqlite3.OperationalError,)  # a full disk, a lock, I/O

    synchronous = Enum(
        ["OFF", "NORMAL", "FULL"],
        default_value="NORMAL",
        help=(
            "SQLite's synchronous setting. NORMAL (with WAL) survives a crash of the server; "
            "FULL also survives a power cut, at the cost of an fsync per change."
        ),
    ).tag(config=True)

    busy_timeout = Float(
        30.0,
        help="Seconds to wait for another process holding the database lock.",
    ).tag(config=True)

    checkpoint_interval = Float(
        1.0,
        help=(
            "Seconds between background WAL checkpoints. Checkpoints copy committed "
            "changes into the database file and sync it; doing them in a thread of their "
            "own keeps that cost off every write."
        ),
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._held: IO[str] | None = None

    @property
    def path(self) -> str:
        """The file: ``url`` is a path, or ``sqlite:///relative`` / ``sqlite:////absolute``."""
        prefix = "sqlite:///"
        return self.url[len(prefix) :] if self.url.startswith(prefix) else self.url

    # --- connections ------------------------------------------------------------------

    def open(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        self._held = hold_lock(
            self.path + ".lock",
            f"the job store {self.path}; stop it, or give this server a store of its own "
            "(JobServerApp.state_dir or db_url)",
        )
        try:
            self._migrate()
        except BaseException:
            self.close()  # the lock too: a store that could not open holds nothing
            raise
        self._closing.clear()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="jobserver-sqlite-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _migrate(self) -> None:
        conn = self._conn()
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} was written by a newer jupyter-jobserver (schema {version})"
            )
        added = ""
        if version:  # columns that tables of an older file lack, before their indexes
            for since, tables in ADDED_COLUMNS.items():
                if version < since:
                    for table, columns in tables.items():
                        added += "".join(f"ALTER TABLE {table} ADD COLUMN {c};" for c in columns)
        # one transaction: a half-made schema never stays behind
        conn.executescript(
            f"BEGIN IMMEDIATE; {added} {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        )

    def _checkpoint_loop(self) -> None:
        """Checkpoint the WAL now and then; PASSIVE never makes a writer wait."""
        while not self._closing.wait(self.checkpoint_interval):
            try:
                self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                self.log.warning("jobserver: WAL checkpoint failed: %s", exc)

    def close(self) -> None:
        self._closing.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None
        with contextlib.suppress(sqlite3.Error):
            self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()
        if self._held is not None:
            self._held.close()
            self._held = None

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            # checkpoints run in their own thread; this is only a backstop (~256 MiB)
            conn.execute("PRAGMA wal_autocheckpoint = 65536")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        conn = self._conn()
        with self._write(conn):
            yield

    @contextlib.contextmanager
    def _write(self, conn: sqlite3.Connection, statements: int = 2) -> Iterator[None]:
        """A transaction, or a savepoint inside the batch's transaction. A write of one
        statement needs neither: SQLite makes each statement atomic on its own."""
        if statements == 1:
            yield
            return
        if conn.in_transaction:
            conn.execute("SAVEPOINT write")
            try:
                yield
            except BaseException:
                conn.execute("ROLLBACK TO write")
                conn.execute("RELEASE write")
                raise
            conn.execute("RELEASE write")
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- jobs -------------------------------------------------------------------------

    def insert_job(self, job: dict[str, Any]) -> None:
        conn = self._conn()
        columns, body, result = _split_job(job)
        tags = job.get("tags") or ()
        with self._write(conn, statements=2 if tags else 1):
            conn.execute(_INSERT_JOB, [*columns.values(), body, result])
            _write_tags(conn, job["id"], tags)

    def get_job(
        self, job_id: str, *, result: bool = True, raw: bool = False
    ) -> dict[str, Any] | None:
        select = _JOB_SELECT if result else _JOB_SELECT_LIGHT
        row = self._conn().execute(f"SELECT {select} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job_from_row(row, raw) if row else None

    def update_job(
        self,
        job_id: str,
        changes: dict[str, Any],
        *,
        status_in: Collection[str] | None = None,
    ) -> bool:
        """One ``UPDATE``: columns are set directly and body fields with ``json_set``,
        under ``WHERE status IN (...)``, so the check and the change are one step."""
        assignments: list[str] = []
        params: list[Any] = []
        body_paths: list[str] = []
        body_params: list[Any] = []
        for key, value in changes.items():
            if key in JOB_COLUMNS:
                assignments.append(f"{key} = ?")
                params.append(int(value) if key == "public" else value)
            elif key == "result":
                assignments.append("result = ?")
                params.append(_result_text(value))
            else:
                if key not in JOBS.names:  # it becomes part of the SQL text
                    raise ValueError(f"not a job field: {key!r}")
                body_paths.append(f"'$.{key}', json(?)")
                body_params.append(json.dumps(value, separators=(",", ":"), allow_nan=False))
        if body_paths:
            assignments.append(f"body = json_set(body, {', '.join(body_paths)})")
            params.extend(body_params)
        where = "id = ?"
        params.append(job_id)
        if status_in is not None:
            statuses = list(status_in)
            where += f" AND status IN ({', '.join('?' * len(statuses))})"
            params.extend(statuses)
        conn = self._conn()
        with self._write(conn, statements=2 if "tags" in changes else 1):
            if assignments:
                cursor = conn.execute(
                    f"UPDATE jobs SET {', '.join(assignments)} WHERE {where}", params
                )
            else:
                cursor = conn.execute(
                    f"SELECT 1 FROM jobs WHERE {where}", params[-1 - len(status_in or ()) :]
                )
            changed = cursor.rowcount > 0 if assignments else cursor.fetchone() is not None
            if changed and "tags" in changes:
                conn.execute("DELETE FROM job_tags WHERE job_id = ?", (job_id,))
                _write_tags(conn, job_id, changes["tags"] or ())
        return changed

    def find_jobs(
        self,
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        rows, total = self._find("jobs", _JOB_SELECT_LIGHT, where, sort, limit, offset)
        return [_job_from_row(r) for r in rows], total

    def _find(
        self,
        table: str,
        columns: str,
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[tuple[Any, ...]], int]:
        """One page of ``table``'s rows matching ``where``, and how many match in all."""
        conn = self._conn()
        clause, params = compile_filter(where)
        order = ", ".join(f"{field} {'DESC' if d < 0 else 'ASC'}" for field, d in sort)
        order = f"{order}, id ASC" if order else "id ASC"
        rows = conn.execute(
            f"SELECT {columns} FROM {table} WHERE {clause} ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        total = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {clause}", params).fetchone()[0]
        return rows, total

    def job_ids(self, where: Node | None) -> list[str]:
        clause, params = compile_filter(where)
        rows = self._conn().execute(f"SELECT id FROM jobs WHERE {clause}", params).fetchall()
        return [r[0] for r in rows]

    def delete_jobs(self, job_ids: Iterable[str]) -> int:
        return self._delete("jobs", job_ids)

    def insert_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """Two ``executemany`` in one transaction, however many jobs there are."""
        rows = []
        tags: list[tuple[str, str]] = []
        for job in jobs:
            columns, body, result = _split_job(job)
            rows.append([*columns.values(), body, result])
            tags.extend((job["id"], tag) for tag in job.get("tags") or ())
        conn = self._conn()
        with self._write(conn):
            conn.executemany(_INSERT_JOB, rows)
            if tags:
                conn.executemany("INSERT OR IGNORE INTO job_tags (job_id, tag) VALUES (?, ?)", tags)

    def job_summary(self, where: Node | None) -> dict[str, Any]:
        clause, params = compile_filter(where)
        rows = (
            self._conn()
            .execute(
                "SELECT status, COUNT(*), MIN(started), MAX(finished) FROM jobs "
                f"WHERE {clause} GROUP BY status",
                params,
            )
            .fetchall()
        )
        starts = [r[2] for r in rows if r[2] is not None]
        ends = [r[3] for r in rows if r[3] is not None]
        return {
            "counts": {r[0]: r[1] for r in rows},
            "started": min(starts) if starts else None,
            "finished": max(ends) if ends else None,
        }

    def job_results(self, job_ids: Iterable[str]) -> dict[str, RawJSON]:
        ids = list(job_ids)
        conn = self._conn()
        found: dict[str, RawJSON] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = conn.execute(
                f"SELECT id, result FROM jobs WHERE id IN ({', '.join('?' * len(chunk))}) "
                "AND result IS NOT NULL",
                chunk,
            ).fetchall()
            found.update((r[0], RawJSON(r[1])) for r in rows)
        return found

    # --- sweeps -----------------------------------------------------------------------

    def insert_sweep(self, sweep: dict[str, Any]) -> None:
        columns = [sweep.get(name) for name in SWEEP_COLUMNS]
        columns[SWEEP_COLUMNS.index("public")] = int(bool(sweep.get("public")))
        body = {k: v for k, v in sweep.items() if k not in SWEEP_COLUMNS}
        self._conn().execute(_INSERT_SWEEP, [*columns, _dumps(body)])

    def get_sweep(self, sweep_id: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute(f"SELECT {_SWEEP_SELECT} FROM sweeps WHERE id = ?", (sweep_id,))
            .fetchone()
        )
        return _sweep_from_row(row) if row else None

    def update_sweep(self, sweep_id: str, changes: dict[str, Any]) -> bool:
        assignments: list[str] = []
        params: list[Any] = []
        body_paths: list[str] = []
        for key, value in changes.items():
            if key in SWEEP_COLUMNS and key != "id":
                assignments.append(f"{key} = ?")
                params.append(int(value) if key == "public" else value)
            elif key in SWEEPS.names and key != "id":
                body_paths.append(f"'$.{key}', json(?)")
                params.append(_dumps(value))
            else:
                raise ValueError(f"not a sweep field: {key!r}")
        if body_paths:
            assignments.append(f"body = json_set(body, {', '.join(body_paths)})")
        if not assignments:
            return self.get_sweep(sweep_id) is not None
        cursor = self._conn().execute(
            f"UPDATE sweeps SET {', '.join(assignments)} WHERE id = ?", [*params, sweep_id]
        )
        return cursor.rowcount > 0

    def find_sweeps(
        self,
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        rows, total = self._find("sweeps", _SWEEP_SELECT, where, sort, limit, offset)
        return [_sweep_from_row(r) for r in rows], total

    def delete_sweeps(self, sweep_ids: Iterable[str]) -> int:
        return self._delete("sweeps", sweep_ids)

    # --- idempotency keys -------------------------------------------------------------

    def claim_key(
        self, owner: str, key: str, target: str, fingerprint: str, created: str
    ) -> dict[str, Any] | None:
        conn = self._conn()
        with self._write(conn):
            cursor = conn.execute(
                "INSERT OR IGNORE INTO idempotency_keys (owner, key, target, fingerprint, "
                "created) VALUES (?, ?, ?, ?, ?)",
                (owner, key, target, fingerprint, created),
            )
            if cursor.rowcount > 0:
                return None
            row = conn.execute(
                "SELECT target, fingerprint, created FROM idempotency_keys "
                "WHERE owner = ? AND key = ?",
                (owner, key),
            ).fetchone()
        return {"target": row[0], "fingerprint": row[1], "created": row[2]}

    def release_key(self, owner: str, key: str, target: str) -> None:
        self._conn().execute(
            "DELETE FROM idempotency_keys WHERE owner = ? AND key = ? AND target = ?",
            (owner, key, target),
        )

    def _delete(self, table: str, ids: Iterable[str]) -> int:
        """Delete rows by id, in one transaction; returns how many existed."""
        ids = list(ids)
        conn = self._conn()
        deleted = 0
        with self._write(conn):
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                cursor = conn.execute(
                    f"DELETE FROM {table} WHERE id IN ({', '.join('?' * len(chunk))})", chunk
                )
                deleted += cursor.rowcount
        return deleted

    # --- data documents -------------------------------------------------------------

    def insert_data(self, document: dict[str, Any]) -> None:
        values = [document.get(c) for c in DATA_COLUMNS]
        values[DATA_COLUMNS.index("public")] = int(bool(document.get("public")))
        values.append(_payload_text(document["data"]))
        self._conn().execute(_INSERT_DATA, values)

    def get_data(
        self, data_id: str, *, payload: bool = True, raw: bool = False
    ) -> dict[str, Any] | None:
        columns = _DATA_SELECT + (", payload" if payload else "")
        row = (
            self._conn().execute(f"SELECT {columns} FROM data WHERE id = ?", (data_id,)).fetchone()
        )
        return _data_from_row(row, raw) if row else None

    def update_data(
        self, data_id: str, changes: dict[str, Any], *, revision: int | None = None
    ) -> bool:
        assignments: list[str] = []
        params: list[Any] = []
        for key, value in changes.items():
            if key == "data":
                assignments.append("payload = ?")
                params.append(_payload_text(value))
            elif key in DATA_COLUMNS and key != "id":
                assignments.append(f"{key} = ?")
                params.append(int(value) if key == "public" else value)
            else:
                raise ValueError(f"not a data document field: {key!r}")
        where = "id = ?"
        params.append(data_id)
        if revision is not None:
            where += " AND revision = ?"
            params.append(revision)
        if not assignments:
            return self.get_data(data_id, payload=False) is not None
        cursor = self._conn().execute(
            f"UPDATE data SET {', '.join(assignments)} WHERE {where}", params
        )
        return cursor.rowcount > 0

    def find_data(
        self,
        where: Node | None,
        sort: list[tuple[str, int]],
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        rows, total = self._find("data", _DATA_SELECT, where, sort, limit, offset)
        return [_data_from_row(r) for r in rows], total

    def delete_data(self, data_ids: Iterable[str]) -> int:
        return self._delete("data", data_ids)


# --- rows and documents ---------------------------------------------------------------

_JOB_SELECT_LIGHT = ", ".join((*JOB_COLUMNS, "body"))
_INSERT_JOB = (
    f"INSERT INTO jobs ({_JOB_SELECT_LIGHT}, result) "
    f"VALUES ({', '.join('?' * (len(JOB_COLUMNS) + 2))})"
)
_JOB_SELECT = _JOB_SELECT_LIGHT + ", result"


def _split_job(job: dict[str, Any]) -> tuple[dict[str, Any], str, str | None]:
    columns = {name: job.get(name) for name in JOB_COLUMNS}
    columns["public"] = int(bool(columns["public"]))
    body = {k: v for k, v in job.items() if k not in JOB_COLUMNS and k != "result"}
    result = job.get("result")
    return columns, json.dumps(body, separators=(",", ":"), allow_nan=False), _result_text(result)


_SWEEP_SELECT = ", ".join((*SWEEP_COLUMNS, "body"))
_INSERT_SWEEP = (
    f"INSERT INTO sweeps ({_SWEEP_SELECT}) VALUES ({', '.join('?' * (len(SWEEP_COLUMNS) + 1))})"
)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _sweep_from_row(row: tuple[Any, ...]) -> dict[str, Any]:
    sweep = dict(zip(SWEEP_COLUMNS, row, strict=False))
    sweep["public"] = bool(sweep["public"])
    sweep.update(json.loads(row[len(SWEEP_COLUMNS)]))
    return sweep


_DATA_SELECT = ", ".join(DATA_COLUMNS)
_INSERT_DATA = (
    f"INSERT INTO data ({_DATA_SELECT}, payload) "
    f"VALUES ({', '.join('?' * (len(DATA_COLUMNS) + 1))})"
)


def _payload_text(value: Any) -> str:
    text = _result_text(value)
    return "null" if text is None else text


def _data_from_row(row: tuple[Any, ...], raw: bool = False) -> dict[str, Any]:
    document = dict(zip(DATA_COLUMNS, row, strict=False))
    document["public"] = bool(document["public"])
    if len(row) > len(DATA_COLUMNS):
        document["data"] = _json(row[len(DATA_COLUMNS)], raw)
    return document


def _result_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, DeferredJSON):
        return value.text()
    if isinstance(value, RawJSON):
        return str(value)
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _job_from_row(row: tuple[Any, ...], raw: bool = False) -> dict[str, Any]:
    job = dict(zip(JOB_COLUMNS, row, strict=False))
    job["public"] = bool(job["public"])
    job.update(json.loads(row[len(JOB_COLUMNS)]))
    if len(row) > len(JOB_COLUMNS) + 1:
        job["result"] = _json(row[len(JOB_COLUMNS) + 1], raw)
    return job


def _json(text: str | None, raw: bool) -> Any:
    if text is None:
        return None
    return RawJSON(text) if raw else json.loads(text)


def _write_tags(conn: sqlite3.Connection, job_id: str, tags: Iterable[str]) -> None:
    if not tags:
        return
    conn.executemany(
        "INSERT OR IGNORE INTO job_tags (job_id, tag) VALUES (?, ?)",
        [(job_id, tag) for tag in tags],
    )


# --- filters --------------------------------------------------------------------------

_SQL_OPS = {"$eq": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def compile_filter(node: Node | None) -> tuple[str, list[Any]]:
    """Translate a parsed filter into a SQL condition on ``jobs`` and its parameters."""
    if node is None:
        return "1", []
    params: list[Any] = []
    return _sql(node, params), params


def _sql(node: Node, params: list[Any]) -> str:
    if isinstance(node, Logical):
        parts = [_sql(item, params) for item in node.items]
        if node.op == "$and":
            return "(" + " AND ".join(parts) + ")"
        joined = "(" + " OR ".join(parts) + ")"
        return joined if node.op == "$or" else f"(NOT COALESCE({joined}, 0))"
    if isinstance(node, Not):
        return f"(NOT COALESCE({_sql(node.item, params)}, 0))"
    if node.field == "tags":
        return _tags_sql(node, params)
    return _column_sql(node, params)


def _column_sql(node: Condition, params: list[Any]) -> str:
    column, op, value = node.field, node.op, node.value
    if node.field == "public" and isinstance(value, bool):
        value = int(value)
    if op == "$exists":
        return f"({column} IS {'NOT ' if value else ''}NULL)"
    if op in ("$in", "$nin"):
        values = [int(v) if isinstance(v, bool) else v for v in value if v is not None]
        has_null = len(values) != len(value)
        params.extend(values)
        listed = f"{column} IN ({', '.join('?' * len(values))})" if values else "0"
        if op == "$in":
            return f"({listed} OR {column} IS NULL)" if has_null else f"({listed})"
        if has_null:
            return f"({column} IS NOT NULL AND NOT ({listed}))"
        return f"({column} IS NULL OR NOT ({listed}))"
    if value is None:
        return f"({column} IS {'NOT ' if op == '$ne' else ''}NULL)"
    params.append(value)
    if op == "$ne":
        return f"({column} IS NULL OR {column} != ?)"
    return f"({column} {_SQL_OPS[op]} ?)"


def _tags_sql(node: Condition, params: list[Any]) -> str:
    def exists(condition: str = "") -> str:
        return f"EXISTS (SELECT 1 FROM job_tags t WHERE t.job_id = jobs.id{condition})"

    op, value = node.op, node.value
    if op == "$exists" or value is None:
        want_any = value if op == "$exists" else op == "$ne"
        return exists() if want_any else f"(NOT {exists()})"
    if op in ("$eq", "$ne"):
        params.append(value)
        found = exists(" AND t.tag = ?")
        return found if op == "$eq" else f"(NOT {found})"
    values = [v for v in value if v is not None]
    if op == "$all":
        if not values:
            return "0"
        parts = []
        for v in values:
            params.append(v)
            parts.append(exists(" AND t.tag = ?"))
        return "(" + " AND ".join(parts) + ")"
    params.extend(values)
    found = exists(f" AND t.tag IN ({', '.join('?' * len(values))})") if values else "0"
    return found if op == "$in" else f"(NOT {found})"
