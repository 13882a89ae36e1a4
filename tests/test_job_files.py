"""Job files: what a job writes in its folder is listed, checksummed, downloadable one by
one, capped in size and deleted with the job; over REST against a real server whose
workers are real processes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pathlib
from typing import Any

import pytest
from helpers import FILE_SCRIPTS, FILESCRIPTS, TEST_SCRIPTS, TESTS, Api, UsersByToken

from jupyter_jobserver.runtime.checksums import sha256_file

#: every test runs on the SQLite store and on the MongoDB store (see conftest.py), where
#: a finished job's files are also copied into MongoDB
EVERY_STORE = True

SCRIPTS = {
    **TEST_SCRIPTS,
    **FILE_SCRIPTS,
    "write_files": "jobfiles_scripts:write_files",
    "write_then_wait": "jobfiles_scripts:write_then_wait",
}
SCRIPT_DIRS = [str(FILESCRIPTS), str(TESTS / "filescripts_files")]
CONFIG = {"JobServerApp": {"scripts": SCRIPTS, "script_dirs": SCRIPT_DIRS}}


def configured(**extra: Any) -> Any:
    """The test server with these scripts (and ``extra`` settings)."""
    return pytest.mark.parametrize("jp_server_config", [{**CONFIG, **extra}], indirect=True)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def download(api: Api, job_id: str, path: str) -> Any:
    return await api.call("GET", ("jobs", job_id, "files", *path.split("/")))


@configured()
async def test_a_function_jobs_files_are_listed_downloaded_and_checksummed(api: Api) -> None:
    job = await api.run("write_files", kwargs={"text": "abc"})
    assert job["status"] == "succeeded", job
    listed = await api.get(f"jobs/{job['id']}/files")
    assert listed.code == 200, listed
    files = listed.json["files"]
    # the job's own files, not its captured output, and not the link that leads out
    assert [f["path"] for f in files] == ["plot.png", "sub/deeper/notes.txt", "table.csv"]
    assert job["provenance"]["files"] == files
    for entry in files:
        answer = await download(api, job["id"], entry["path"])
        assert answer.code == 200, answer
        assert len(answer.body) == entry["size"]
        assert sha256(answer.body) == entry["sha256"]
        assert answer.headers["X-Jobserver-Sha256"] == entry["sha256"]
    table = await download(api, job["id"], "table.csv")
    assert table.text == "name,value\nabc,1\n"
    assert table.headers["Content-Type"].startswith("text/csv")
    plot = await download(api, job["id"], "plot.png")
    assert plot.headers["Content-Type"] == "image/png"
    assert plot.body.startswith(b"\x89PNG")
    saved = await api.get(f"jobs/{job['id']}/files/table.csv", params={"download": "1"})
    assert saved.headers["Content-Disposition"].startswith("attachment;")


@configured()
async def test_a_file_scripts_files_are_listed_and_downloaded(api: Api) -> None:
    job = await api.run("report")
    assert job["status"] == "succeeded", job
    files = (await api.get(f"jobs/{job['id']}/files")).json["files"]
    assert [f["path"] for f in files] == ["out/numbers.csv", "report.txt"]
    numbers = await download(api, job["id"], "out/numbers.csv")
    assert numbers.text == "1,2,3\n"
    assert sha256(numbers.body) == files[0]["sha256"]


@configured()
async def test_a_path_that_leaves_the_job_folder_is_refused(api: Api) -> None:
    job = await api.run("write_files")
    escapes = ["../stdout", "sub/../../x", "./table.csv", "sub//deeper/notes.txt", "/etc/passwd"]
    for path in [*escapes, "sub\\deeper", "..", "../../../etc/passwd"]:
        # quoted whole, so no HTTP client tidies the dots away before the server sees them
        answer = await api.call("GET", ("jobs", job["id"], "files", path))
        assert answer.code == 400, (path, answer)
        assert answer.json["error"] == "invalid_request"
        assert "inside the job's folder" in answer.json["message"]


@configured()
async def test_what_is_not_a_file_of_the_job_is_not_found(api: Api) -> None:
    job = await api.run("write_files")
    # a link out of the folder, the captured output, a missing file, a folder
    for path in ["escape", "stdout", "stderr", "nothing.txt", "sub"]:
        answer = await download(api, job["id"], path)
        assert answer.code == 404, (path, answer)
        assert answer.json["error"] == "not_found"


@configured(ServerApp={"identity_provider_class": UsersByToken})
async def test_another_users_private_job_files_are_not_found(api_fetch: Any) -> None:
    alice, bob = (Api(api_fetch, {"Authorization": f"token {n}-token"}) for n in ("alice", "bob"))
    private = await alice.run("write_files")
    public = await alice.run("write_files", public=True)
    assert (await bob.get(f"jobs/{private['id']}/files")).code == 404
    assert (await download(bob, private["id"], "table.csv")).code == 404
    assert len((await bob.get(f"jobs/{public['id']}/files")).json["files"]) == 3
    assert (await download(bob, public["id"], "table.csv")).code == 200


@configured()
async def test_a_running_jobs_files_are_listed_as_they_are_written(
    api: Api, tmp_path: pathlib.Path
) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    created = await api.post(
        "jobs", {"script": "write_then_wait", "kwargs": {"gate": str(gate)}, "run": True}
    )
    job_id = created.json["id"]
    await api.wait_until(job_id, "running")
    listed: list[dict] = []
    while not listed:  # the job writes its file right after it starts
        listed = (await api.get(f"jobs/{job_id}/files")).json["files"]
        if not listed:
            await asyncio.sleep(0.05)
    assert listed == [{"path": "partial.txt", "size": 7, "sha256": None}]
    partial = await download(api, job_id, "partial.txt")
    assert partial.text == "so far\n"

    def release() -> None:
        with gate.open("w") as f:
            f.write("go\n")

    await asyncio.to_thread(release)
    job = await api.wait(job_id)
    assert job["provenance"]["files"][0]["sha256"] == sha256(b"so far\n")


@configured(JobPolicy={"max_files_size": 10_000})
async def test_files_over_the_size_cap_fail_the_job_with_the_reason(
    api: Api, jobserver: Any
) -> None:
    small = await api.run("write_files")
    assert small.get("status") == "succeeded", small
    job = await api.run("write_files", kwargs={"size": 20_000})
    assert job["status"] == "failed"
    assert job["error"]["type"] == "FilesTooLarge"
    assert "over this server's limit of 10,000 bytes per job" in job["error"]["message"]
    assert (await api.get(f"jobs/{job['id']}/files")).json["files"] == []
    folder = pathlib.Path(jobserver.jobs_dir) / job["id"]
    assert not (folder / "big.bin").exists()
    stderr = await api.get(f"jobs/{job['id']}/output/stderr")
    assert "over this server's limit" in stderr.text


@configured()
async def test_deleting_a_job_deletes_its_files(api: Api, jobserver: Any) -> None:
    job = await api.run("write_files")
    folder = pathlib.Path(jobserver.jobs_dir) / job["id"]
    assert sha256_file(folder / "table.csv") == job["provenance"]["files"][-1]["sha256"]
    assert (await api.delete(f"jobs/{job['id']}")).code == 204
    assert not folder.exists()
    assert (await api.get(f"jobs/{job['id']}/files")).code == 404
