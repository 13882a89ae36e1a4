"""``jupyter jobserver copy``: a real server's SQLite store copied into MongoDB (real
pymongo over the wire) and back, through the command a user runs; the records, output
and files come back the same, and a second copy adds nothing."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from typing import Any

import mongo
import pytest
from helpers import FILE_SCRIPTS, TEST_SCRIPTS, TESTS, jobserver_config

from jupyter_jobserver.store import SQLiteStore, Store
from jupyter_jobserver.store.query import parse_filter
from jupyter_jobserver.testing import ServerProcess

SCRIPTS = {**TEST_SCRIPTS, **FILE_SCRIPTS, "write_files": "jobfiles_scripts:write_files"}
COMMAND = pathlib.Path(sys.executable).parent / "jupyter-jobserver"


def copy(source: str, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it; stderr is a pipe, so its progress is plain lines."""
    done = subprocess.run(
        [str(COMMAND), "copy", source, target, *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done


def everything(store: Store) -> dict[str, Any]:
    """Every record of a store, with job results and data payloads."""
    jobs, _ = store.find_jobs(None, [("created", 1)], 1000, 0)
    data, _ = store.find_data(None, [("created", 1)], 1000, 0)
    sweeps, _ = store.find_sweeps(None, [("created", 1)], 1000, 0)

    def plain(record: dict[str, Any] | None) -> dict[str, Any]:
        assert record is not None
        return {k: v for k, v in record.items() if v is not None}

    return {
        "jobs": [plain(store.get_job(j["id"])) for j in jobs],
        "data": [plain(store.get_data(d["id"])) for d in data],
        "sweeps": [plain(s) for s in sweeps],
    }


def read_store(path: pathlib.Path) -> dict[str, Any]:
    store = SQLiteStore(url=str(path))
    store.open()
    try:
        return everything(store)
    finally:
        store.close()


def test_a_store_copied_into_mongodb_and_back_is_the_same_and_a_second_copy_adds_nothing(
    tmp_path: pathlib.Path,
) -> None:
    mongo.server()  # skips (or fails under CI) without a MongoDB
    database = mongo.new_database()
    config = jobserver_config(tmp_path / "a", JobServerApp={"scripts": SCRIPTS})
    with ServerProcess(tmp_path / "a", config, python_path=[str(TESTS)]) as server:
        echo = server.call(
            "POST", "jobs?wait=60", {"script": "echo", "kwargs": {"text": "hi"}, "run": True}
        )
        files = server.call(
            "POST",
            "jobs?wait=60",
            {"script": "write_files", "kwargs": {"size": 300_000}, "run": True},
        )
        server.call("POST", "data", {"name": "levels", "datatype": "json", "data": [1, 2, 3]})
        sweep = server.call(
            "POST", "sweeps", {"script": "power", "grid": {"x": [1, 2]}, "run": True}
        )
        for job in server.call("GET", f"sweeps/{sweep['id']}/jobs")["jobs"]:
            server.call("GET", f"jobs/{job['id']}?wait=60")
    state = tmp_path / "a" / "state"
    source = state / "jobserver.sqlite"
    target = f"{mongo.uri().split('/?')[0]}/{database}?directConnection=true"
    back = tmp_path / "back" / "jobserver.sqlite"
    try:
        first = copy(str(source), target)
        assert "jobs: 4 added, 0 updated, 0 already there" in first.stdout
        assert "data: 1 added" in first.stdout and "sweeps: 1 added" in first.stdout
        assert "jobs: 4/4" in first.stderr  # progress, as plain lines off a terminal
        copy(target, f"sqlite:///{back}")
        original = read_store(source)
        assert read_store(back) == original
        assert len(original["jobs"]) == 4 and original["sweeps"][0]["id"] == sweep["id"]
        for job_id, name in (
            (echo["id"], "stdout"),
            (files["id"], "big.bin"),
            (files["id"], "table.csv"),
            (files["id"], "sub/deeper/notes.txt"),
        ):
            there = back.parent / "jobs" / job_id / name
            assert there.read_bytes() == (state / "jobs" / job_id / name).read_bytes()
        again = copy(str(source), target)
        assert "jobs: 0 added, 0 updated, 4 already there" in again.stdout
        assert "data: 0 added, 0 updated, 1 already there" in again.stdout
        assert "sweeps: 0 added, 0 updated, 1 already there" in again.stdout
        again_back = copy(target, f"sqlite:///{back}")
        assert "jobs: 0 added, 0 updated, 4 already there" in again_back.stdout
        assert read_store(back) == original
        store = SQLiteStore(url=str(back))
        store.open()
        try:
            assert len(store.job_ids(parse_filter({"sweep": sweep["id"]}))) == 2
        finally:
            store.close()
    finally:
        mongo.drop(database)


def test_a_copy_refuses_a_store_a_server_is_using(tmp_path: pathlib.Path) -> None:
    store = SQLiteStore(url=str(tmp_path / "in-use.sqlite"))
    store.open()
    try:
        done = subprocess.run(
            [str(COMMAND), "copy", str(tmp_path / "in-use.sqlite"), str(tmp_path / "out.sqlite")],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        store.close()
    assert done.returncode == 1
    assert "in-use.sqlite" in done.stderr
    assert not (tmp_path / "out.sqlite").exists()  # nothing half-made


@pytest.mark.parametrize("args", [[], ["only-one.sqlite"]])
def test_a_copy_needs_a_source_and_a_target(args: list[str], tmp_path: pathlib.Path) -> None:
    done = subprocess.run(
        [str(COMMAND), "copy", *args], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "give a SOURCE and a TARGET store" in done.stderr
