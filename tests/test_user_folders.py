"""Per-user datafile folders: one per user and never shared, found again after an
upgrade, and a file deleted while it is read is simply not found."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest
from helpers import Api, UsersByToken, jobserver_config

#: CYRILLIC_A1 is a Cyrillic a (U+0430) then 1; U+4301 once got the same folder name
CYRILLIC_A1 = "\u04301"
USERS = {"t-cyrillic": CYRILLIC_A1, "t-cjk": "䌁", "t-accent": "josé", "t-plain": "plain"}


@pytest.fixture
def jp_server_config(tmp_path: pathlib.Path) -> dict[str, Any]:
    return jobserver_config(tmp_path, ServerApp={"identity_provider_class": UsersByToken})


@pytest.fixture
def users(api_fetch: Any) -> dict[str, Api]:
    return {
        name: Api(api_fetch, {"Authorization": f"token {token}"}) for token, name in USERS.items()
    }


async def test_users_whose_names_once_collided_have_folders_of_their_own(
    users: dict[str, Api],
) -> None:
    first, second = users[CYRILLIC_A1], users["䌁"]
    assert (await first.put("datafiles/mine.csv", raw=b"a\n1\n")).code == 201
    assert (await second.get("datafiles/mine.csv")).code == 404
    assert (await second.delete("datafiles/mine.csv")).code == 404
    assert (await second.get("datafiles")).json["datafiles"] == []
    assert (await second.put("datafiles/mine.csv", raw=b"b\n2\n")).code == 201
    got = await first.get("datafiles/mine.csv", params={"format": "raw"})
    assert got.body == b"a\n1\n"


def test_folder_names_are_injective_and_stay_inside() -> None:
    from jupyter_jobserver.data.datafiles import _folder_name

    names = [CYRILLIC_A1, "䌁", "%", "%25", "", ".", "..", ".x", "%2Ex", "\ud800", "a/b", "a%2Fb"]
    names += [chr(c) for c in range(0x20, 0x3000, 7)]
    names = list(dict.fromkeys(names))
    folders = [_folder_name(n) for n in names]
    assert len(set(folders)) == len(names)
    for folder in folders:
        assert folder and "/" not in folder and not folder.startswith(".")


async def test_a_folder_of_the_earlier_naming_is_found_again(
    users: dict[str, Api], jobserver: Any
) -> None:
    root = pathlib.Path(jobserver.datafiles.data_dir)
    legacy = root / "jos%E9"  # what josé's folder was called before, under data/
    legacy.mkdir(parents=True)
    (legacy / "old.csv").write_bytes(b"x\n1\n")
    listed = (await users["josé"].get("datafiles")).json["datafiles"]
    assert [f["name"] for f in listed] == ["old.csv"]
    assert not legacy.exists()
    assert (pathlib.Path(jobserver.datafiles.user_dirs) / "jos%C3%A9" / "old.csv").exists()
    # an earlier folder under data/ with today's name moves out of the Jupyter root too
    (root / "plain").mkdir()
    (root / "plain" / "p.csv").write_bytes(b"x\n1\n")
    assert (await users["plain"].get("datafiles/p.csv")).code == 200
    assert not (root / "plain").exists()
    # a legacy name that two users could have had is not handed to either of them
    ambiguous = root / "%4301"
    ambiguous.mkdir()
    (ambiguous / "whose.csv").write_bytes(b"x\n1\n")
    for name in (CYRILLIC_A1, "䌁"):
        assert (await users[name].get("datafiles/whose.csv")).code == 404
    assert ambiguous.exists()


@pytest.mark.parametrize("fmt", [None, "csv", "raw"])
async def test_reading_a_file_while_it_is_deleted_answers_404_not_500(
    users: dict[str, Api], fmt: str | None
) -> None:
    api = users["plain"]
    params = {"format": fmt} if fmt else None
    for round_ in range(30):
        assert (await api.put("datafiles/racy.csv", raw=b"a,b\n1,2\n" * 200)).code == 201
        read, deleted = await asyncio.gather(
            api.get("datafiles/racy.csv", params=params), api.delete("datafiles/racy.csv")
        )
        assert deleted.code == 204, deleted
        assert read.code in (200, 404), (round_, read)
        if read.code == 404:
            assert "racy.csv" in read.json["message"]


async def test_private_datafiles_are_out_of_reach_of_the_contents_api(
    users: dict[str, Api],
    http_server_client: Any,
    jp_base_url: str,
    jobserver: Any,
    jp_root_dir: pathlib.Path,
) -> None:
    from tornado.httpclient import HTTPClientError

    assert (await users["plain"].put("datafiles/private.csv", raw=b"a\n1\n")).code == 201
    stored = pathlib.Path(jobserver.datafiles.user_dirs) / "plain" / "private.csv"
    assert stored.exists()
    assert jp_root_dir.resolve() not in stored.resolve().parents  # not under the root
    headers = {"Authorization": "token t-cjk"}  # another user, through Jupyter's own API

    async def contents(path: str) -> int:
        try:
            answer = await http_server_client.fetch(
                f"{jp_base_url}api/contents/{path}", headers=headers
            )
        except HTTPClientError as exc:
            return exc.code
        return int(answer.code)

    (jp_root_dir / "visible.txt").write_text("anyone")
    assert await contents("visible.txt") == 200  # the Contents API answers this user
    for path in ("data/plain/private.csv", "data/plain"):
        assert await contents(path) == 404
