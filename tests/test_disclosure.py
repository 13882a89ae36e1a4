"""What a public job shows other users: never the script's code, file paths or source
lines; its owner and administrators keep the full traceback and stderr."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from helpers import Api, UsersByToken, jobserver_config, parse_sse

USERS = {"alice-token": "alice", "bob-token": "bob", "root-token": "root"}
SOURCE_LINE = "raise ValueError(message)"  # a line of jobserver_test_scripts.raises


@pytest.fixture
def jp_server_config(tmp_path: pathlib.Path) -> dict[str, Any]:
    return jobserver_config(
        tmp_path,
        ServerApp={"identity_provider_class": UsersByToken},
        JobServerApp={"admin_users": {"root"}},
    )


@pytest.fixture
def users(api_fetch: Any) -> dict[str, Api]:
    return {
        name: Api(api_fetch, {"Authorization": f"token {token}"}) for token, name in USERS.items()
    }


async def test_a_failed_public_job_hides_its_traceback_from_others(
    users: dict[str, Api],
) -> None:
    alice, bob, root = users["alice"], users["bob"], users["root"]
    message = "cannot open /srv/secret/algorithm.py"
    job = await alice.run("raises", kwargs={"message": message}, public=True)
    assert job["status"] == "failed"
    assert SOURCE_LINE in job["error"]["detail"]  # the owner sees it all
    assert "jobserver_test_scripts.py" in job["error"]["detail"]
    assert (await root.get(f"jobs/{job['id']}")).json["error"] == job["error"]
    stderr = await alice.get(f"jobs/{job['id']}/output/stderr")
    assert SOURCE_LINE in stderr.text

    seen = (await bob.get(f"jobs/{job['id']}")).json
    assert seen["error"]["type"] == "ValueError"
    assert seen["error"]["detail"] is None
    assert "/srv/secret" not in seen["error"]["message"]
    assert "<path>" in seen["error"]["message"]
    listed = (await bob.get("jobs")).json["jobs"]
    assert [j["error"]["detail"] for j in listed] == [None]
    queried = (await bob.post("jobs/query", {"filter": {"status": "failed"}})).json["jobs"]
    assert "/srv/secret" not in str([j["error"] for j in queried])  # its kwargs stay public
    assert (await bob.get(f"jobs/{job['id']}/output/stderr")).code == 403
    assert (await bob.get(f"jobs/{job['id']}/output/stdout")).code == 200
    events = await bob.get(f"jobs/{job['id']}/events")
    text = events.text
    assert SOURCE_LINE not in text and "jobserver_test_scripts.py" not in text
    assert [e for e, _ in parse_sse(text)][-1] == "end"
