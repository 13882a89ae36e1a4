"""Several users on one server: who sees, changes and reruns which jobs."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Api, UsersByToken

#: these tests run on the SQLite store and on the MongoDB store (see conftest.py)
EVERY_STORE = True

USERS = {"alice-token": "alice", "bob-token": "bob", "root-token": "root"}


pytestmark = pytest.mark.parametrize(
    "jp_server_config",
    [
        {
            "ServerApp": {"identity_provider_class": UsersByToken},
            "JobServerApp": {"admin_users": {"root"}},
        }
    ],
    indirect=True,
)


@pytest.fixture
def users(api_fetch: Any) -> dict[str, Api]:
    return {
        name: Api(api_fetch, {"Authorization": f"token {token}"}) for token, name in USERS.items()
    }


async def test_users_see_their_own_jobs_and_public_ones(users: dict[str, Api]) -> None:
    alice, bob, root = users["alice"], users["bob"], users["root"]
    private = await alice.run("echo", kwargs={"text": "mine"})
    public = await alice.run("echo", kwargs={"text": "ours"}, public=True)
    assert private["owner"] == "alice"

    assert (await bob.get(f"jobs/{private['id']}")).code == 404
    assert (await bob.get(f"jobs/{private['id']}/output/stdout")).code == 404
    assert (await bob.get(f"jobs/{private['id']}/events")).code == 404
    assert (await bob.post(f"jobs/{private['id']}/rerun")).code == 404
    assert (await bob.delete(f"jobs/{private['id']}")).code == 404

    seen = await bob.get(f"jobs/{public['id']}")
    assert seen.code == 200
    assert seen.json["result"] == "ours"
    listed = await bob.get("jobs")
    assert [j["id"] for j in listed.json["jobs"]] == [public["id"]]
    queried = await bob.post("jobs/query", {"filter": {"owner": "alice"}})
    assert [j["id"] for j in queried.json["jobs"]] == [public["id"]]

    for call in (
        bob.post(f"jobs/{public['id']}/cancel"),
        bob.patch(f"jobs/{public['id']}", {"tags": ["bob-was-here"]}),
        bob.delete(f"jobs/{public['id']}"),
    ):
        answer = await call
        assert answer.code == 403
        assert "only its owner" in answer.json["message"]

    # anyone may reproduce a public job: the rerun is theirs
    rerun = await bob.post(f"jobs/{public['id']}/rerun")
    assert rerun.code == 202
    assert rerun.json["owner"] == "bob"
    assert rerun.json["public"] is False
    assert (await bob.wait(rerun.json["id"]))["result"] == "ours"

    # bob's bulk delete cannot touch alice's jobs
    assert (await bob.delete("jobs")).json == {"deleted": 1}
    assert (await alice.get("jobs")).json["total"] == 2

    # an admin sees and manages everyone's jobs
    assert (await root.get("jobs")).json["total"] == 2
    assert (await root.get(f"jobs/{private['id']}")).code == 200
    assert (await root.delete(f"jobs/{private['id']}")).code == 204


async def test_a_limit_on_active_jobs_answers_429(users: dict[str, Api], jobserver: Any) -> None:
    jobserver.jobs.policy.max_active_jobs_per_user = 1
    alice, bob = users["alice"], users["bob"]
    first = (
        await alice.post("jobs", {"script": "sleepy", "kwargs": {"seconds": 30}, "run": True})
    ).json
    second = await alice.post("jobs", {"script": "echo", "kwargs": {"text": "x"}, "run": True})
    assert second.code == 429
    assert "1 job(s) queued or running" in second.json["message"]
    assert (await alice.get("jobs")).json["total"] == 1  # nothing half-made stays behind
    created = await alice.post("jobs", {"script": "echo", "kwargs": {"text": "x"}})
    assert created.code == 201
    assert (await alice.post(f"jobs/{created.json['id']}/run")).code == 429
    assert (await bob.run("echo", kwargs={"text": "bob is not limited by alice"}))[
        "status"
    ] == "succeeded"
    await alice.post(f"jobs/{first['id']}/cancel")
    assert (await alice.post(f"jobs/{created.json['id']}/run")).code == 202


async def test_data_documents_are_private_unless_public(users: dict[str, Api]) -> None:
    alice, bob = users["alice"], users["bob"]
    private = (await alice.post("data", {"name": "mine", "data": [{"value": 1}]})).json
    public = (
        await alice.post("data", {"name": "ours", "data": [{"value": 3}], "public": True})
    ).json
    assert (await bob.get(f"data/{private['id']}")).code == 404
    assert [d["name"] for d in (await bob.get("data")).json["data"]] == ["ours"]
    refused = await bob.post(
        "jobs", {"script": "table_mean", "data": {"type": "mongodb", "id": private["id"]}}
    )
    assert refused.code == 404
    job = await bob.run("table_mean", data={"type": "mongodb", "id": public["id"]})
    assert job["result"] == 3.0
    for call in (
        bob.patch(f"data/{public['id']}", {"name": "taken"}),
        bob.put(f"data/{public['id']}", {"name": "taken", "data": 1}),
        bob.delete(f"data/{public['id']}"),
    ):
        answer = await call
        assert answer.code == 403
        assert "only its owner" in answer.json["message"]
    assert (await users["root"].get(f"data/{private['id']}")).code == 200


async def test_each_user_has_a_datafile_folder_and_shares_the_top_one(
    users: dict[str, Api], jobserver: Any
) -> None:
    import pathlib

    alice, bob, root = users["alice"], users["bob"], users["root"]
    data = pathlib.Path(jobserver.datafiles.data_dir)
    (data / "shared.csv").write_text("value\n1\n2\n")
    assert (await alice.put("datafiles/mine.csv", raw=b"value\n10\n")).code == 201
    assert (pathlib.Path(jobserver.datafiles.user_dirs) / "alice" / "mine.csv").exists()
    assert not (data / "alice").exists()  # out of the Contents API's reach
    alice_files = {f["name"]: f["shared"] for f in (await alice.get("datafiles")).json["datafiles"]}
    assert alice_files == {"mine.csv": False, "shared.csv": True}
    bob_files = [f["name"] for f in (await bob.get("datafiles")).json["datafiles"]]
    assert bob_files == ["shared.csv"]
    assert (await bob.get("datafiles/mine.csv")).code == 404
    job = await bob.run("table_mean", data={"type": "datafile", "name": "shared.csv"})
    assert job["result"] == 1.5
    assert (await bob.delete("datafiles/shared.csv")).code == 403
    assert (
        await bob.put("datafiles/shared.csv", raw=b"x", params={"overwrite": "true"})
    ).code == 201
    assert (
        data / "shared.csv"
    ).read_text() == "value\n1\n2\n"  # bob's own copy, not the shared one
    assert (await bob.delete("datafiles")).json == {"deleted": 1}
    assert (await root.delete("datafiles/shared.csv")).code == 204


async def test_eval_is_for_admins_only(users: dict[str, Api], jobserver: Any) -> None:
    jobserver.jobs.policy.allow_eval = True
    denied = await users["alice"].post("jobs", {"process": "eval", "code": "1", "run": True})
    assert denied.code == 403
    assert "only administrators may run eval jobs, and 'alice' is not one" in denied.json["message"]
    assert (await users["root"].run_eval("6 * 7"))["result"] == 42


async def test_an_admins_job_reads_only_data_its_owner_may(users: dict[str, Api]) -> None:
    private = (await users["alice"].post("data", {"name": "secret", "data": [{"value": 1}]})).json
    assert (await users["root"].get(f"data/{private['id']}")).code == 200  # admins see all
    answer = await users["root"].post(
        "jobs",
        {"script": "table_mean", "data": {"type": "mongodb", "id": private["id"]}, "run": True},
        params={"wait": 30},
    )
    assert answer.code == 404


async def test_admins_upload_shared_datafiles(users: dict[str, Api], jobserver: Any) -> None:
    import pathlib

    data = pathlib.Path(jobserver.datafiles.data_dir)
    assert (
        await users["alice"].put("datafiles/s.csv", raw=b"value\n1\n", params={"shared": "true"})
    ).code == 403
    assert (
        await users["root"].put("datafiles/s.csv", raw=b"value\n1\n", params={"shared": "true"})
    ).code == 201
    assert (data / "s.csv").read_bytes() == b"value\n1\n"
    listed = {
        f["name"]: f["shared"] for f in (await users["bob"].get("datafiles")).json["datafiles"]
    }
    assert listed == {"s.csv": True}
