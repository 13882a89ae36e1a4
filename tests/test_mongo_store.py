"""What only the MongoDB store does: it is chosen by a mongodb:// URL, keeps the URL's
credentials to itself, answers 503 while MongoDB is away and serves again by itself once
MongoDB is back. The tests that every store passes are in ``test_store.py`` and the REST
suites; this file runs against a wire server of its own, since it stops it."""

from __future__ import annotations

import pathlib
from typing import Any

import mongo
import pymongo
import pytest
from helpers import FILE_SCRIPTS, TEST_SCRIPTS, TESTS, Api, jobserver_config

from jupyter_jobserver.testing import ServerProcess, free_port


@pytest.fixture
def wire(tmp_path: pathlib.Path) -> Any:
    if mongo.ENV_URI in __import__("os").environ:
        pytest.skip("stops its MongoDB: runs only against the local wire server")
    mongo.server()  # skips (or fails under CI) without the wire server's Python
    server = mongo.WireServer(tmp_path / "mongo")
    server.folder.mkdir()
    yield server.start()
    server.stop()


@pytest.fixture
def jp_server_config(tmp_path: pathlib.Path, wire: mongo.WireServer) -> dict[str, Any]:
    return jobserver_config(
        tmp_path, JobServerApp={"db_url": wire.uri}, MongoStore={"timeout": 1.0}
    )


async def test_mongodb_away_is_a_503_that_says_so_and_service_comes_back(
    api: Api, wire: mongo.WireServer, jobserver: Any
) -> None:
    assert type(jobserver.store).__name__ == "MongoStore"
    first = await api.run("echo", kwargs={"text": "before"})
    assert first["status"] == "succeeded"
    wire.stop()
    away = await api.get("jobs")
    assert away.code == 503
    assert away.json["error"] == "unavailable"
    assert f"MongoDB at {wire.uri} cannot be reached" in away.json["message"]
    refused = await api.post("jobs", {"script": "echo", "kwargs": {"text": "x"}, "run": True})
    assert refused.code == 503
    wire.start()  # the same port and data: MongoDB is back
    listed = await api.get("jobs")
    assert listed.code == 200, listed
    assert [j["id"] for j in listed.json["jobs"]] == [first["id"]]  # nothing half-written
    again = await api.run("echo", kwargs={"text": "after"})
    assert again["result"] == "after"


def test_the_credentials_of_the_url_are_never_printed(
    tmp_path: pathlib.Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"mongodb://alice:pa55word@127.0.0.1:{free_port()}/jobs?directConnection=true"
    config = jobserver_config(tmp_path, JobServerApp={"db_url": url}, MongoStore={"timeout": 0.5})
    with ServerProcess(tmp_path, config, python_path=[str(TESTS)]) as server:
        status, answer = server.request("GET", "jobs")
    said = "".join(server.lines)
    assert status == 503
    assert "MongoDB at mongodb://***@127.0.0.1:" in answer["message"]
    assert "cannot be reached" in answer["message"]
    assert "cannot be reached" in said
    assert "pa55word" not in said and "pa55word" not in answer["message"]
    assert "alice" not in said and "alice" not in answer["message"]
    assert not list(tmp_path.rglob("mongodb:*"))  # no folder named after the URL


def _text(server: ServerProcess, path: str) -> str:
    import urllib.request

    request = urllib.request.Request(
        f"{server.base}/jobserver/api/{path}", headers={"Authorization": f"token {server.token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read().decode()


def test_records_and_output_outlive_the_server_that_ran_the_jobs(tmp_path: pathlib.Path) -> None:
    import shutil

    database = mongo.new_database()

    def config(name: str) -> dict[str, Any]:
        return jobserver_config(
            tmp_path / name, JobServerApp={"db_url": mongo.uri()}, MongoStore={"database": database}
        )

    with ServerProcess(tmp_path / "a", config("a"), python_path=[str(TESTS)]) as first:
        big = first.call("POST", "jobs?wait=60", {"script": "print_lots", "run": True})
        echo = first.call(
            "POST", "jobs?wait=60", {"script": "echo", "kwargs": {"text": "hi", "times": 3}}
        )
        first.call("POST", f"jobs/{echo['id']}/run")
        echo = first.call("GET", f"jobs/{echo['id']}?wait=60")
        big_stdout = _text(first, f"jobs/{big['id']}/output/stdout")
    shutil.rmtree(tmp_path / "a")  # that server and everything it kept on disk are gone
    try:
        with ServerProcess(tmp_path / "b", config("b"), python_path=[str(TESTS)]) as second:
            assert second.call("GET", f"jobs/{big['id']}")["status"] == "succeeded"
            assert second.call("GET", f"jobs/{echo['id']}")["result"] == "hihihi"
            assert _text(second, f"jobs/{echo['id']}/output/stdout") == "hi\nhi\nhi\n"
            assert _text(second, f"jobs/{echo['id']}/output/stderr") == "echoed 3 time(s)\n"
            assert len(big_stdout) == 1 << 20
            assert _text(second, f"jobs/{big['id']}/output/stdout") == big_stdout
            tail = _text(second, f"jobs/{big['id']}/output/stdout?offset={300_000}")
            assert tail == big_stdout[300_000:]  # from inside the second chunk on
            second.call("DELETE", f"jobs/{big['id']}")
        with pymongo.MongoClient(mongo.uri()) as client:  # its output went with it
            assert client[database].job_output.count_documents({"job": big["id"]}) == 0
            assert client[database].job_output.count_documents({"job": echo["id"]}) == 2
    finally:
        mongo.drop(database)


def _bytes(server: ServerProcess, path: str) -> bytes:
    import urllib.request

    request = urllib.request.Request(
        f"{server.base}/jobserver/api/{path}", headers={"Authorization": f"token {server.token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return bytes(response.read())


def test_job_files_outlive_the_server_that_ran_the_job_and_go_with_it(
    tmp_path: pathlib.Path,
) -> None:
    import hashlib
    import shutil

    database = mongo.new_database()
    scripts = {**TEST_SCRIPTS, **FILE_SCRIPTS, "write_files": "jobfiles_scripts:write_files"}

    def config(name: str) -> dict[str, Any]:
        return jobserver_config(
            tmp_path / name,
            JobServerApp={"db_url": mongo.uri(), "scripts": scripts},
            MongoStore={"database": database},
        )

    size = 600_000  # three chunks and a part
    with ServerProcess(tmp_path / "a", config("a"), python_path=[str(TESTS)]) as first:
        job = first.call(
            "POST", "jobs?wait=60", {"script": "write_files", "kwargs": {"size": size}, "run": True}
        )
        assert job["status"] == "succeeded", job
        made = first.call("GET", f"jobs/{job['id']}/files")["files"]
    shutil.rmtree(tmp_path / "a")  # that server and the job's folder are gone
    try:
        with ServerProcess(tmp_path / "b", config("b"), python_path=[str(TESTS)]) as second:
            listed = second.call("GET", f"jobs/{job['id']}/files")["files"]
            assert listed == made
            assert [f["path"] for f in listed] == [
                "big.bin",
                "plot.png",
                "sub/deeper/notes.txt",
                "table.csv",
            ]
            for entry in listed:
                body = _bytes(second, f"jobs/{job['id']}/files/{entry['path']}")
                assert len(body) == entry["size"]
                assert hashlib.sha256(body).hexdigest() == entry["sha256"]
            assert _bytes(second, f"jobs/{job['id']}/files/table.csv") == b"name,value\nhello,1\n"
            assert _bytes(second, f"jobs/{job['id']}/files/big.bin") == b"\0" * size
            missing, _ = second.request("GET", f"jobs/{job['id']}/files/escape")
            assert missing == 404
            second.call("DELETE", f"jobs/{job['id']}")
            gone, _ = second.request("GET", f"jobs/{job['id']}/files/table.csv")
            assert gone == 404
        with pymongo.MongoClient(mongo.uri()) as client:  # its files went with it
            assert client[database].job_files.count_documents({"job": job["id"]}) == 0
    finally:
        mongo.drop(database)


def test_a_server_killed_mid_job_leaves_it_failed_by_another_naming_it(
    tmp_path: pathlib.Path,
) -> None:
    import signal

    database = mongo.new_database()

    def config(name: str) -> dict[str, Any]:
        return jobserver_config(
            tmp_path / name,
            JobServerApp={"db_url": mongo.uri()},
            MongoStore={"database": database},
            Leases={"heartbeat_interval": 0.5, "lease_time": 3.0},
        )

    first = ServerProcess(tmp_path / "a", config("a"), python_path=[str(TESTS)]).start()
    try:
        job = first.call("POST", "jobs", {"script": "sleepy", "kwargs": {"seconds": 120}})
        first.call("POST", f"jobs/{job['id']}/run")
        assert first.call("GET", f"jobs/{job['id']}?wait=60&until=running")["status"] == "running"
        with ServerProcess(tmp_path / "b", config("b"), python_path=[str(TESTS)]) as second:
            # starting, it left the job alone: the job is the first server's, which lives
            assert second.call("GET", f"jobs/{job['id']}")["status"] == "running"
            pid = first.proc.pid if first.proc else 0
            first.signal(signal.SIGKILL)
            ended = second.call("GET", f"jobs/{job['id']}?wait=30")
            assert ended["status"] == "failed"
            assert ended["error"]["type"] == "LostServer"
            assert f"pid {pid}," in ended["error"]["message"]
            assert "stopped renewing its lease for 3 s" in ended["error"]["message"]
            after = second.call(
                "POST", "jobs?wait=60", {"script": "echo", "run": True, "kwargs": {"text": "on"}}
            )
            assert after["result"] == "on"  # the other server goes on serving
    finally:
        first.stop()
        mongo.drop(database)


def test_two_servers_on_one_store_run_each_job_once_and_follow_each_other(
    tmp_path: pathlib.Path,
) -> None:
    import concurrent.futures

    database = mongo.new_database()
    book = tmp_path / "ledger.txt"

    def config(name: str) -> dict[str, Any]:
        return jobserver_config(
            tmp_path / name,
            JobServerApp={"db_url": mongo.uri()},
            MongoStore={"database": database},
            StoreFollower={"poll_interval": 0.2},
        )

    try:
        with (
            ServerProcess(tmp_path / "a", config("a"), python_path=[str(TESTS)]) as first,
            ServerProcess(tmp_path / "b", config("b"), python_path=[str(TESTS)]) as second,
        ):
            servers = [first, second]

            def submit(i: int) -> tuple[int, str]:
                body = {"script": "ledger", "run": True}
                body["kwargs"] = {"path": str(book), "entry": f"job-{i}"}
                return i, servers[i % 2].call("POST", "jobs", body)["id"]

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                made = dict(pool.map(submit, range(40)))
                # each job is waited for on the server that did not run it: it hears the
                # end through the store
                ended = list(
                    pool.map(
                        lambda item: servers[(item[0] + 1) % 2].call(
                            "GET", f"jobs/{item[1]}?wait=60"
                        ),
                        made.items(),
                    )
                )
            assert [job["status"] for job in ended] == ["succeeded"] * 40
            lines = book.read_text().splitlines()
            assert sorted(lines) == sorted(f"job-{i}" for i in range(40))  # each ran once
            for server in servers:  # every record is readable from both
                listed = server.call("GET", "jobs?limit=100")
                assert listed["total"] == 40
                assert {j["id"] for j in listed["jobs"]} == set(made.values())
            followed = _follow_elsewhere(tmp_path, first, second)
            assert followed[0] == ("status", "running")
            assert followed[-1] == ("end", "succeeded")
    finally:
        mongo.drop(database)


def _follow_elsewhere(
    tmp_path: pathlib.Path, runs: ServerProcess, follows: ServerProcess
) -> list[tuple[str, str]]:
    """Follow the events of a job that ``runs`` runs, on ``follows``: (event, status)
    pairs until the stream ends. The job waits at a gate until the stream is open."""
    import json
    import os
    import threading
    import urllib.request

    gate = tmp_path / "gate"
    os.mkfifo(gate)
    job = runs.call("POST", "jobs", {"script": "gated", "kwargs": {"gate": str(gate)}})
    runs.call("POST", f"jobs/{job['id']}/run")
    runs.call("GET", f"jobs/{job['id']}?wait=60&until=running")
    request = urllib.request.Request(
        f"{follows.base}/jobserver/api/jobs/{job['id']}/events",
        headers={"Authorization": f"token {follows.token}"},
    )
    seen: list[tuple[str, str]] = []
    kind = ""
    with urllib.request.urlopen(request, timeout=60) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:") and kind in ("status", "end"):
                data = json.loads(line[5:])
                seen.append((kind, data.get("status") or data.get("job", {}).get("status")))
                if len(seen) == 1:  # the follower listens: let the job through
                    threading.Thread(target=lambda: gate.write_text("go\n")).start()
    return seen


def test_the_active_job_limit_holds_across_servers_sharing_the_store(
    tmp_path: pathlib.Path,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    database = mongo.new_database()

    def config(name: str) -> dict[str, Any]:
        return jobserver_config(
            tmp_path / name,
            JobServerApp={"db_url": mongo.uri()},
            MongoStore={"database": database},
            JobPolicy={"max_active_jobs_per_user": 5},
        )

    servers = [
        ServerProcess(tmp_path / name, config(name), python_path=[str(TESTS)]).start()
        for name in ("a", "b")
    ]
    try:
        body = {"script": "sleepy", "kwargs": {"seconds": 300}, "run": True}
        with ThreadPoolExecutor(50) as pool:  # 50 submissions at once, half to each server
            answers = list(
                pool.map(lambda i: servers[i % 2].request("POST", "jobs", body), range(50))
            )
        accepted = [answer for code, answer in answers if code == 201]
        refused = [answer for code, answer in answers if code == 429]
        assert len(accepted) == 5, [code for code, _ in answers]
        assert len(refused) == 45
        assert "JobPolicy.max_active_jobs_per_user" in refused[0]["message"]
        listed = servers[0].call("GET", "jobs?limit=100")
        assert sorted(j["id"] for j in listed["jobs"]) == sorted(j["id"] for j in accepted)
        # once one ends (cancelled through either server), another may start, on either
        first = accepted[0]["id"]
        owner = next(s for s in servers if s.request("POST", f"jobs/{first}/cancel")[0] == 202)
        assert owner.call("GET", f"jobs/{first}?wait=60")["status"] == "cancelled"
        code, again = servers[1].request("POST", "jobs", body)
        assert code == 201, again
        assert servers[0].request("POST", "jobs", body)[0] == 429
        for job in [*accepted, again]:
            for server in servers:
                if server.request("POST", f"jobs/{job['id']}/cancel")[0] == 202:
                    break
    finally:
        for server in servers:
            server.stop()
        mongo.drop(database)
