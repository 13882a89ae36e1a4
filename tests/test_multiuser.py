"""Several users on one server: who sees, changes and reruns which jobs."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Api, jobserver_config
from jupyter_server.auth.identity import IdentityProvider, User

USERS = {"alice-token": "alice", "bob-token": "bob", "root-token": "root"}


class UsersByToken(IdentityProvider):
    """Names users by their token, as a multi-user deployment (JupyterHub) would."""

    def get_user(self, handler: Any) -> User | None:
        header = handler.request.headers.get("Authorization", "")
        name = USERS.get(header.removeprefix("token ").strip())
        return User(username=name) if name else None

    def is_token_authenticated(self, handler: Any) -> bool:
        return handler.request.headers.get("Authorization", "").startswith("token ")


@pytest.fixture
def jp_server_config(tmp_path: Any) -> dict[str, Any]:
    return jobserver_config(
        tmp_path,
        ServerApp={"identity_provider_class": UsersByToken},
        JobServerApp={"admin_users": {"root"}},
    )


@pytest.fixture
def users(jp_fetch: Any, jobserver: Any) -> dict[str, Api]:
    return {
        name: Api(jp_fetch, {"Authorization": f"token {token}"}) for token, name in USERS.items()
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
    jobserver.jobs.settings.max_active_jobs_per_user = 1
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
