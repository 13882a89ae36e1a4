"""Copying a file that is under the Jupyter root into the data folder (``POST datafiles``),
as JupyterLab's file browser does with "Add to job server data"."""

from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Any

import pytest
from helpers import Api, jobserver_config
from jupyter_server.auth.authorizer import Authorizer


@pytest.fixture
def root(jp_root_dir: pathlib.Path, jobserver: Any) -> pathlib.Path:
    (jp_root_dir / "results").mkdir()
    (jp_root_dir / "results" / "run 1.csv").write_text("a,b\n1,2\n3,4\n")
    return jp_root_dir


def leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".upload-"))


async def test_a_file_under_the_root_becomes_a_datafile(
    api: Api, root: pathlib.Path, jobserver: Any
) -> None:
    answer = await api.post("datafiles", {"path": "results/run 1.csv"})
    assert answer.code == 201, answer
    content = (root / "results" / "run 1.csv").read_bytes()
    assert answer.json["name"] == "run 1.csv"
    assert answer.json["size"] == len(content)
    assert answer.json["sha256"] == hashlib.sha256(content).hexdigest()
    assert answer.headers["Location"].endswith("/jobserver/api/datafiles/run%201.csv")
    data = pathlib.Path(jobserver.datafiles.data_dir)
    assert (data / "run 1.csv").read_bytes() == content
    listing = await api.get("datafiles")
    assert "run 1.csv" in [f["name"] for f in listing.json["datafiles"]]
    # the copy is a file of its own: changing the source leaves the datafile alone
    (root / "results" / "run 1.csv").write_text("changed\n")
    assert (data / "run 1.csv").read_bytes() == content


async def test_the_listing_says_which_extensions_datafiles_have(api: Api, jobserver: Any) -> None:
    listing = await api.get("datafiles")
    assert listing.json["extensions"] == ["csv", "tsv", "dat", "txt", "json"]


async def test_another_name_and_replacing(api: Api, root: pathlib.Path, jobserver: Any) -> None:
    first = await api.post("datafiles", {"path": "results/run 1.csv", "name": "latest.csv"})
    assert first.code == 201, first
    assert first.json["name"] == "latest.csv"
    (root / "results" / "run 1.csv").write_text("a,b\n5,6\n")
    taken = await api.post("datafiles", {"path": "results/run 1.csv", "name": "latest.csv"})
    assert taken.code == 409
    assert "overwrite" in taken.json["message"]
    data = pathlib.Path(jobserver.datafiles.data_dir)
    assert (data / "latest.csv").read_text() == "a,b\n1,2\n3,4\n"
    replaced = await api.post(
        "datafiles", {"path": "results/run 1.csv", "name": "latest.csv", "overwrite": True}
    )
    assert replaced.code == 200, replaced
    assert (data / "latest.csv").read_text() == "a,b\n5,6\n"
    assert leftovers(data) == []


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"path": "/etc/passwd.txt"}, 400, "absolute"),
        ({"path": "../outside.csv"}, 400, "'..'"),
        ({"path": "results/../../outside.csv"}, 400, "'..'"),
        ({"path": "results/missing.csv"}, 404, "no file"),
        ({"path": "results"}, 400, "not a file"),
        ({"path": ""}, 400, "path"),
        ({"path": "results\\run 1.csv"}, 400, "relative"),
        ({"path": ".secret/token.txt"}, 400, "hidden"),
        ({"path": "notes.md"}, 400, "datafile extension"),
        ({"path": "results/run 1.csv", "name": "../x.csv"}, 400, "not a datafile name"),
        ({"path": "results/run 1.csv", "name": "x.exe"}, 400, "datafile extension"),
        ({"path": "results/run 1.csv", "extra": 1}, 400, "unknown field 'extra'"),
        ({"path": 3}, 400, "path"),
        ({}, 400, "missing field 'path'"),
    ],
)
async def test_refusals(
    api: Api, root: pathlib.Path, jobserver: Any, body: dict[str, Any], status: int, words: str
) -> None:
    (root / "notes.md").write_text("# notes\n")
    (root / ".secret").mkdir()
    (root / ".secret" / "token.txt").write_text("s3cret\n")
    answer = await api.post("datafiles", body)
    assert answer.code == status, answer
    assert answer.json["error"]
    assert words in answer.json["message"]
    data = pathlib.Path(jobserver.datafiles.data_dir)
    assert sorted(p.name for p in data.iterdir()) == []


async def test_symlinks_may_not_lead_out_of_the_root_or_into_hiding(
    api: Api, root: pathlib.Path, tmp_path: pathlib.Path, jobserver: Any
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.csv").write_text("a\n1\n")
    (root / "link.csv").symlink_to(outside / "private.csv")
    (root / "linked-folder").symlink_to(outside)
    (root / ".hidden").mkdir()
    (root / ".hidden" / "h.csv").write_text("a\n1\n")
    (root / "visible.csv").symlink_to(root / ".hidden" / "h.csv")
    os.mkfifo(root / "fifo.csv")
    for path in ("link.csv", "linked-folder/private.csv"):
        answer = await api.post("datafiles", {"path": path})
        assert answer.code == 400, answer
        assert "outside the Jupyter root" in answer.json["message"]
    hidden = await api.post("datafiles", {"path": "visible.csv"})
    assert hidden.code == 400
    assert "hidden" in hidden.json["message"]
    fifo = await api.post("datafiles", {"path": "fifo.csv"})
    assert fifo.code == 400
    assert "not a file" in fifo.json["message"]
    # a symlink that stays inside the root is followed
    (root / "inside.csv").symlink_to(root / "results" / "run 1.csv")
    inside = await api.post("datafiles", {"path": "inside.csv"})
    assert inside.code == 201, inside
    assert not (root / "data" / "private.csv").exists()


async def test_size_limit_and_quota_apply(api: Api, root: pathlib.Path, jobserver: Any) -> None:
    (root / "big.csv").write_bytes(b"1\n" * 6000)
    jobserver.datafiles.max_datafile_size = 10_000
    big = await api.post("datafiles", {"path": "big.csv"})
    assert big.code == 413
    assert "at most 10,000 bytes" in big.json["message"]
    jobserver.datafiles.max_datafile_size = 0
    jobserver.datafiles.datafile_quota = 5000
    over = await api.post("datafiles", {"path": "big.csv"})
    assert over.code == 413
    assert "quota" in over.json["message"]
    data = pathlib.Path(jobserver.datafiles.data_dir)
    assert not (data / "big.csv").exists()
    assert leftovers(data) == []


async def test_the_request_is_authenticated(api_fetch: Any, root: pathlib.Path) -> None:
    anonymous = Api(api_fetch, headers={"Authorization": ""})
    answer = await anonymous.post("datafiles", {"path": "results/run 1.csv"})
    assert answer.code in (401, 403)


class NoContents(Authorizer):
    """May use the job server, may not read files through Jupyter."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "contents"


class ReadOnly(Authorizer):
    """May only read."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return action == "read"


@pytest.mark.parametrize(
    ("authorizer", "words"),
    [(NoContents, "may not read files under the Jupyter root"), (ReadOnly, "")],
)
async def test_copying_takes_the_right_to_write_datafiles_and_read_contents(
    authorizer: type[Authorizer], words: str, api: Api, root: pathlib.Path, jobserver: Any
) -> None:
    answer = await api.post("datafiles", {"path": "results/run 1.csv"})
    assert answer.code == 403, answer
    assert words in answer.json["message"]
    assert not (pathlib.Path(jobserver.datafiles.data_dir) / "run 1.csv").exists()


@pytest.fixture
def jp_server_config(tmp_path: pathlib.Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The test server; a test parametrized with an ``authorizer`` runs with it."""
    callspec = getattr(request.node, "callspec", None)
    authorizer = callspec.params.get("authorizer") if callspec else None
    extra = {"ServerApp": {"authorizer_class": authorizer}} if authorizer else {}
    return jobserver_config(tmp_path, **extra)
