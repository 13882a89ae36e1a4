"""What only the embedded SQLite store does: one file, locked to one server, migrated,
an index behind every filter and sort."""

from __future__ import annotations

import pathlib
import random
import sqlite3

import pytest
from test_store import make_job

from jupyter_jobserver.store import SQLiteStore
from jupyter_jobserver.store.fields import DATA, JOBS


def test_the_file_survives_reopening_and_refuses_a_newer_schema(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.sqlite"
    first = SQLiteStore(url=str(path))
    first.open()
    first.insert_job(make_job(1, random.Random(1)))
    first.close()
    second = SQLiteStore(url=str(path))
    second.open()
    assert second.get_job("job0001") is not None
    second.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute("PRAGMA user_version = 99")
    third = SQLiteStore(url=str(path))
    with pytest.raises(RuntimeError, match="newer jupyter-jobserver"):
        third.open()


def test_every_filterable_and_sortable_field_has_an_index(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "s.sqlite"
    store = SQLiteStore(url=str(path))
    store.open()
    store.close()
    with sqlite3.connect(path) as db:
        for entity, table in ((JOBS, "jobs"), (DATA, "data")):
            indexed = {"id"}  # the primary key
            names = db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN (?, ?)",
                (table, "job_tags" if table == "jobs" else table),
            )
            for (name,) in names.fetchall():
                for row in db.execute(f"PRAGMA index_info({name})"):
                    if row[0] == 0:  # leading column
                        indexed.add("tags" if row[2] == "tag" else row[2])
            for field in set(entity.query_kinds) | set(entity.sort_fields):
                assert field in indexed, (table, field)


def test_a_second_store_on_the_same_file_is_refused_until_the_first_closes(
    tmp_path: pathlib.Path,
) -> None:
    path = tmp_path / "s.sqlite"
    first = SQLiteStore(url=str(path))
    first.open()
    first.insert_job(make_job(1, random.Random(1)))
    second = SQLiteStore(url=str(path))
    with pytest.raises(RuntimeError, match=r"another job server \(pid \d+\) uses the job store"):
        second.open()
    first.close()
    second.open()
    assert second.get_job("job0001") is not None
    second.close()
