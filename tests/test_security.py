"""Authentication on every route, and XSRF for browser sessions."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from jupyter_jobserver.handlers import default_handlers


def _sample_path(pattern: str) -> str:
    path = pattern.replace("/jobserver/api/", "").rstrip("/?")
    return re.sub(r"\(\?P<\w+>[^)]*\)", "x", path)


@pytest.mark.parametrize(("pattern", "handler"), default_handlers)
async def test_every_route_needs_authentication(
    jp_fetch: Any, jobserver: Any, pattern: str, handler: type
) -> None:
    path = _sample_path(pattern)
    methods = [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if m.lower() in vars(handler)]
    assert methods, handler
    for method in methods:
        with pytest.raises(HTTPClientError) as caught:
            await jp_fetch(
                "jobserver",
                "api",
                *path.split("/"),
                method=method,
                headers={"Authorization": ""},
                body=b"{}" if method in ("POST", "PUT", "PATCH") else None,
                allow_nonstandard_methods=True,
            )
        assert caught.value.code == 403, (method, path)


async def test_cookie_sessions_need_the_xsrf_token(jp_fetch: Any, jobserver: Any) -> None:
    """A browser session (cookie, no token) must send the XSRF token with each change."""
    login = await jp_fetch("jobserver", "api", "scripts")
    cookie = login.headers["Set-Cookie"].split(";")[0]
    headers = {"Authorization": "", "Cookie": cookie}
    listed = await jp_fetch("jobserver", "api", "jobs", headers=headers)
    assert listed.code == 200
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch(
            "jobserver",
            "api",
            "jobs",
            method="POST",
            headers=headers,
            body='{"script": "echo", "kwargs": {"text": "x"}}',
        )
    assert caught.value.code == 403
    xsrf = "2|abcdef01|0123456789abcdef0123456789abcdef|1700000000"
    ok = await jp_fetch(
        "jobserver",
        "api",
        "jobs",
        method="POST",
        headers={**headers, "Cookie": f"{cookie}; _xsrf={xsrf}", "X-XSRFToken": xsrf},
        body='{"script": "echo", "kwargs": {"text": "x"}}',
    )
    assert ok.code == 201
