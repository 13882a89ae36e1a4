"""Per-user job limits: jobs at once and jobs in total, overrides for named users and
groups, administrators exempt where configured; exact under a 50-way race, and the 429
names the limit."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest
from helpers import Api, UsersByToken, jobserver_config

USERS = {"alice-token": "alice", "bob-token": "bob", "carol-token": "carol", "root-token": "root"}


@pytest.fixture
def jp_server_config(tmp_path: pathlib.Path) -> dict[str, Any]:
    return jobserver_config(
        tmp_path,
        ServerApp={"identity_provider_class": UsersByToken},
        JobServerApp={"admin_users": {"root"}},
    )


@pytest.fixture
def users(api_fetch: Any, jobserver: Any) -> dict[str, Api]:
    policy = jobserver.jobs.policy  # the settings, as c.JobPolicy.<name> would give them
    policy.max_jobs_per_user = 10
    policy.groups = {"physics": ["bob", "carol"], "small": ["carol"]}
    policy.limit_overrides = {
        "group:physics": {"max_jobs": 20},
        "group:small": {"max_jobs": 5},
        "carol": {"max_jobs": 3},
    }
    policy.admins_exempt = True
    return {
        name: Api(api_fetch, {"Authorization": f"token {token}"}) for token, name in USERS.items()
    }


async def _race(api: Api, count: int = 50) -> list[Any]:
    body = {"script": "echo", "kwargs": {"text": "x"}}
    return await asyncio.gather(*(api.post("jobs", body) for _ in range(count)))


@pytest.mark.parametrize(
    ("name", "limit", "source"),
    [
        ("alice", 10, "JobPolicy.max_jobs_per_user"),
        ("bob", 20, "group:physics"),  # of two groups, the most generous
        ("carol", 3, "limit_overrides['carol']"),  # a user's own entry wins
    ],
)
async def test_jobs_in_total_are_exact_under_a_50_way_race(
    users: dict[str, Api], name: str, limit: int, source: str
) -> None:
    answers = await _race(users[name])
    codes = sorted(a.code for a in answers)
    assert codes.count(201) == limit, codes
    refused = [a for a in answers if a.code == 429]
    assert len(refused) == 50 - limit
    assert all(source in a.json["message"] for a in refused), refused[0].json
    assert (await users[name].get("jobs", params={"mine": "true"})).json["total"] == limit
    # deleting one makes room for exactly one more
    some = (await users[name].get("jobs", params={"mine": "true", "limit": 1})).json["jobs"][0]
    assert (await users[name].delete(f"jobs/{some['id']}")).code == 204
    again = await _race(users[name], 5)
    assert sorted(a.code for a in again) == [201, 429, 429, 429, 429]


async def test_administrators_can_be_exempt(users: dict[str, Api]) -> None:
    answers = await _race(users["root"], 15)
    assert all(a.code == 201 for a in answers)


async def test_active_jobs_limit_is_exact_and_named(users: dict[str, Api], jobserver: Any) -> None:
    jobserver.jobs.policy.limit_overrides = {"alice": {"max_active_jobs": 1}}
    body = {"script": "sleepy", "kwargs": {"seconds": 60}, "run": True}
    answers = await asyncio.gather(*(users["alice"].post("jobs", body) for _ in range(9)))
    accepted = [a for a in answers if a.code == 201]
    assert len(accepted) == 1
    refused = [a for a in answers if a.code == 429]
    assert len(refused) == 8
    assert "limit_overrides['alice']" in refused[0].json["message"]
    assert (await users["alice"].post(f"jobs/{accepted[0].json['id']}/cancel")).code == 202
