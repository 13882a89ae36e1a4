"""Datafiles over REST: listing, reading, converting, streamed uploads, limits, safe names."""

from __future__ import annotations

import asyncio
import hashlib
import os
import pathlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from helpers import Api

REPO_DATA = pathlib.Path(__file__).parent.parent / "data"


@pytest.fixture
def data_dir(jobserver: Any) -> pathlib.Path:
    folder = pathlib.Path(jobserver.datafiles.data_dir)
    for source in REPO_DATA.iterdir():
        (folder / source.name).write_bytes(source.read_bytes())
    return folder


async def eventually(condition: Any, timeout: float = 10.0) -> None:
    """Wait until ``condition()`` holds (the server acts on a closed socket in its own time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.02)


BOUNDARY = "----jobserver-test-boundary"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def multipart(*parts: tuple[str, bytes]) -> bytes:
    """A ``multipart/form-data`` body, as a browser's form sends it: each part is its
    header lines and its content."""
    body = b"".join(
        f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"
        for headers, content in parts
    )
    return body + f"--{BOUNDARY}--\r\n".encode()


def leftovers(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".upload-"))


async def test_the_default_folder_is_data_under_the_jupyter_root(
    jobserver: Any, jp_root_dir: pathlib.Path
) -> None:
    assert pathlib.Path(jobserver.datafiles.data_dir) == jp_root_dir / "data"
    assert (jp_root_dir / "data").is_dir()


async def test_list_and_metadata(api: Api, data_dir: pathlib.Path) -> None:
    (data_dir / "notes.md").write_text("not a registered extension")
    (data_dir / ".hidden.csv").write_text("a,b\n1,2\n")
    (data_dir / "folder.csv").mkdir()
    listing = await api.get("datafiles")
    assert listing.code == 200
    names = [f["name"] for f in listing.json["datafiles"]]
    assert names == ["gauge.dat", "station.json", "timeseries.csv"]
    entry = next(f for f in listing.json["datafiles"] if f["name"] == "timeseries.csv")
    content = (data_dir / "timeseries.csv").read_bytes()
    assert entry["size"] == len(content)
    assert entry["sha256"] == hashlib.sha256(content).hexdigest()
    assert entry["extension"] == "csv"
    assert entry["modified"].endswith("Z")
    one = await api.get("datafiles/timeseries.csv")
    assert one.json == entry
    missing = await api.get("datafiles/nothing.csv")
    assert missing.code == 404
    assert missing.json["message"] == "no datafile named 'nothing.csv'"


async def test_content_in_other_formats(api: Api, data_dir: pathlib.Path) -> None:
    csv = await api.get("datafiles/gauge.dat", params={"format": "csv"})
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text.splitlines()[:2] == ["date,discharge", "2025-01-01,18.36"]
    records = await api.get("datafiles/timeseries.csv", params={"format": "json"})
    rows = records.json
    assert len(rows) == 365
    assert rows[0] == {
        "date": "2025-01-01",
        "temperature": 2.7,
        "precipitation": 2.2,
        "discharge": 18.36,
    }
    html = await api.get("datafiles/timeseries.csv", params={"format": "html"})
    assert html.text.startswith('<table class="dataframe jobserver-datafile">')
    assert html.text.count("<tr") == 366
    text = await api.get("datafiles/gauge.dat", params={"format": "txt"})
    assert text.text.split("\n")[1].split() == ["2025-01-01", "18.36"]
    as_json = await api.get("datafiles/station.json", params={"format": "json"})
    assert as_json.json["station"] == "Example Creek"
    not_table = await api.get("datafiles/station.json", params={"format": "csv"})
    assert not_table.code == 400
    assert "is not a table" in not_table.json["message"]
    raw = await api.get("datafiles/station.json", params={"format": "raw"})
    assert raw.body == (data_dir / "station.json").read_bytes()
    bad = await api.get("datafiles/gauge.dat", params={"format": "xlsx"})
    assert bad.code == 400
    # every format it takes, the file itself too
    assert bad.json["message"] == "format must be one of: csv, json, html, txt, raw, not 'xlsx'"


async def test_an_empty_or_blank_text_datafile_is_no_table_not_a_server_error(
    api: Api,
) -> None:
    """The delimiter sniffer finds nothing in an empty .txt or .dat: it is text, so a
    table form is a 400 (it was a 500) and its JSON form is the text."""
    for name, body in (("empty.txt", b""), ("blank.dat", b"\n\n")):
        assert (await api.put(f"datafiles/{name}", raw=body)).code == 201
        for fmt in ("txt", "csv", "html"):
            answer = await api.get(f"datafiles/{name}", params={"format": fmt})
            assert answer.code == 400, (name, fmt, answer.code)
            assert "is not a table" in answer.json["message"]
        as_json = await api.get(f"datafiles/{name}", params={"format": "json"})
        assert as_json.json == body.decode()  # the text itself, as for any text file


async def test_upload_a_raw_body_then_overwrite_and_delete(
    api: Api, data_dir: pathlib.Path
) -> None:
    body = b"x,y\n" + b"".join(f"{i},{i * i}\n".encode() for i in range(50_000))
    created = await api.put("datafiles/squares.csv", raw=body)
    assert created.code == 201
    assert created.json["size"] == len(body)
    assert created.json["sha256"] == hashlib.sha256(body).hexdigest()
    assert created.headers["Location"].endswith("/jobserver/api/datafiles/squares.csv")
    assert (data_dir / "squares.csv").read_bytes() == body

    again = await api.put("datafiles/squares.csv", raw=b"x,y\n1,1\n")
    assert again.code == 409
    assert "overwrite=true" in again.json["message"]
    assert (data_dir / "squares.csv").read_bytes() == body
    replaced = await api.put(
        "datafiles/squares.csv", raw=b"x,y\n1,1\n", params={"overwrite": "true"}
    )
    assert replaced.code == 200
    assert (data_dir / "squares.csv").read_bytes() == b"x,y\n1,1\n"
    listed = {f["name"]: f for f in (await api.get("datafiles")).json["datafiles"]}
    assert listed["squares.csv"]["sha256"] == hashlib.sha256(b"x,y\n1,1\n").hexdigest()

    assert (await api.delete("datafiles/squares.csv")).code == 204
    assert not (data_dir / "squares.csv").exists()
    assert (await api.delete("datafiles/squares.csv")).code == 404
    everything = await api.delete("datafiles")
    assert everything.json == {"deleted": 3}
    assert sorted(os.listdir(data_dir)) == []
    assert leftovers(data_dir) == []


async def test_upload_a_multipart_form(api: Api, data_dir: pathlib.Path) -> None:
    content = b"a,b\r\n1,2\r\n--not-a-boundary\r\n" * 3000
    body = multipart(
        ('Content-Disposition: form-data; name="note"', b"ignored"),
        (
            'Content-Disposition: form-data; name="file"; filename="whatever.csv"\r\n'
            "Content-Type: text/csv",
            content,
        ),
    )
    answer = await api.put("datafiles/form.csv", raw=body, headers=MULTIPART)
    assert answer.code == 201, answer
    assert (data_dir / "form.csv").read_bytes() == content
    no_file = multipart(('Content-Disposition: form-data; name="x"', b"1"))
    refused = await api.put("datafiles/empty.csv", raw=no_file, headers=MULTIPART)
    assert refused.code == 400
    assert "no complete field named 'file'" in refused.json["message"]
    assert not (data_dir / "empty.csv").exists()
    assert leftovers(data_dir) == []


HOSTILE = [
    "../escape.csv",
    "..",
    "a/b.csv",
    "a\\b.csv",
    ".hidden.csv",
    "nul\x00.csv",
    "tab\t.csv",
    "CON.csv",
    "com1.txt",
    "lpt9.dat",
    "trailing.csv ",
    "trailing.csv.",
    "no-extension",
    "script.py",
    "x" * 300 + ".csv",
    "é" * 130 + ".csv",  # 130 characters, but 264 bytes: too long for a file system
    "colon:.csv",
    "a\x85b.csv",  # a C1 control character
    "\u202egnp.csv",  # a right-to-left override, so the name reads otherwise
    "zero\u200bwidth.csv",
    "bom\ufeff.csv",
    "CON .csv",
    "COM\u00b9.csv",
]


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_names_are_refused_and_touch_nothing(
    api: Api, data_dir: pathlib.Path, name: str
) -> None:
    before = sorted(p.name for p in data_dir.parent.rglob("*"))
    for method in ("PUT", "GET", "DELETE"):
        answer = await api.call(
            method, ("datafiles", name), raw=b"a,b\n1,2\n" if method == "PUT" else None
        )
        assert answer.code == 400, (method, name, answer)
        assert answer.json["error"] == "invalid_request"
    assert sorted(p.name for p in data_dir.parent.rglob("*")) == before


async def test_names_in_any_script_round_trip(api: Api, data_dir: pathlib.Path) -> None:
    for name in ("данные.csv", "数据.csv", "café.csv", "🌊 levels.csv"):
        put = await api.call("PUT", ("datafiles", name), raw=b"value\n1\n")
        assert put.code == 201, (name, put)
        assert put.json["name"] == name
        assert put.headers["Location"].endswith("/datafiles/" + quote(name, safe=""))
        raw = await api.call("GET", ("datafiles", name), params={"format": "raw"})
        assert raw.code == 200 and raw.body == b"value\n1\n"
        disposition = raw.headers["Content-Disposition"]
        assert disposition.endswith("filename*=UTF-8''" + quote(name, safe=""))
        assert (data_dir / name).read_bytes() == b"value\n1\n"
    names = [f["name"] for f in (await api.get("datafiles")).json["datafiles"]]
    assert {"данные.csv", "数据.csv", "café.csv", "🌊 levels.csv"} <= set(names)


async def test_files_that_are_not_tables_say_so(api: Api, data_dir: pathlib.Path) -> None:
    (data_dir / "broken.json").write_text("{not json")
    (data_dir / "quote.csv").write_text('a,b\n"1,2\n')
    (data_dir / "empty.csv").write_text("")
    for name in ("broken.json", "quote.csv", "empty.csv"):
        answer = await api.get(f"datafiles/{name}", params={"format": "csv"})
        assert answer.code == 400, (name, answer)
        assert f"{name} cannot be read as a table" in answer.json["message"]
        assert "format=raw" in answer.json["message"]


async def test_symlinks_out_of_the_folder_are_refused(
    api: Api, data_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("secret,1\n")
    (data_dir / "leak.csv").symlink_to(outside)
    (data_dir / "alias.csv").symlink_to(data_dir / "timeseries.csv")
    leak = await api.get("datafiles/leak.csv")
    assert leak.code == 400
    assert "outside the data folder" in leak.json["message"]
    assert (await api.get("datafiles/leak.csv", params={"format": "raw"})).code == 400
    assert (await api.put("datafiles/leak.csv", raw=b"x", params={"overwrite": "true"})).code == 400
    assert outside.read_text() == "secret,1\n"
    names = [f["name"] for f in (await api.get("datafiles")).json["datafiles"]]
    assert "leak.csv" not in names
    assert "alias.csv" in names  # a link that stays inside is fine
    job = await api.post(
        "jobs", {"script": "file_info", "data": {"type": "datafile", "name": "leak.csv"}}
    )
    assert job.code == 400


async def test_size_limit_and_quota_answer_413_and_leave_nothing(
    api: Api, data_dir: pathlib.Path, jobserver: Any
) -> None:
    jobserver.datafiles.max_datafile_size = 10_000
    big = await api.put("datafiles/big.csv", raw=b"1\n" * 6000)
    assert big.code == 413
    assert "at most 10,000 bytes" in big.json["message"]
    assert not (data_dir / "big.csv").exists()
    assert leftovers(data_dir) == []

    jobserver.datafiles.max_datafile_size = 0
    used = sum(p.stat().st_size for p in data_dir.iterdir())
    jobserver.datafiles.datafile_quota = used + 5000
    fits = await api.put("datafiles/fits.csv", raw=b"1\n" * 2000)
    assert fits.code == 201
    over = await api.put("datafiles/over.csv", raw=b"1\n" * 2000)
    assert over.code == 413
    assert "quota" in over.json["message"]
    assert not (data_dir / "over.csv").exists()
    # an upload whose size is not known up front is counted once, not with its own
    # temporary file and reservation besides
    assert (await api.delete("datafiles/fits.csv")).code == 204
    streamed = await api.put(
        "datafiles/streamed-fits.csv", raw=None, body_producer=_chunks(b"1\n" * 1000, 2)
    )
    assert streamed.code == 201, streamed
    assert (await api.delete("datafiles/streamed-fits.csv")).code == 204
    # a chunked upload (no length known up front) is stopped when it goes over
    chunked = await api.put(
        "datafiles/streamed.csv", raw=None, body_producer=_chunks(b"1\n" * 1000, 3)
    )
    assert chunked.code == 413
    assert not (data_dir / "streamed.csv").exists()
    assert leftovers(data_dir) == []


@pytest.fixture
def listening(
    jobserver: Any,
    jp_serverapp: Any,
    http_server_client: Any,  # the server listens on jp_http_port
    jp_http_port: int,
    jp_base_url: str,
) -> tuple[int, str, str]:
    """Port, base URL and token of the test server, for clients other than jp_fetch."""
    return jp_http_port, jp_base_url, jp_serverapp.identity_provider.token


async def test_a_chunked_upload_far_over_the_limit_gets_the_reason(
    jobserver: Any, listening: tuple[int, str, str], data_dir: pathlib.Path
) -> None:
    port, base_url, token = listening
    jobserver.datafiles.max_datafile_size = 10_000
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while sent < 8 << 20:  # 800 times the limit, in chunks: no length up front
            sent += 1 << 16
            yield b"1\n" * (1 << 15)

    url = f"http://127.0.0.1:{port}{base_url}jobserver/api/datafiles/endless.csv"
    async with httpx.AsyncClient(headers={"Authorization": f"token {token}"}) as client:
        answer = await client.put(url, content=endless())
    assert answer.status_code == 413  # a reason, not a dropped connection or a bare 400
    assert "at most 10,000 bytes" in answer.json()["message"]
    assert not (data_dir / "endless.csv").exists()
    assert leftovers(data_dir) == []


def _chunks(piece: bytes, count: int) -> Any:
    async def produce(write: Any) -> None:
        for _ in range(count):
            await write(piece)

    return produce


async def test_an_upload_cut_off_halfway_leaves_nothing(
    jobserver: Any, listening: tuple[int, str, str], data_dir: pathlib.Path
) -> None:
    port, base_url, token = listening
    path = f"{base_url}jobserver/api/datafiles/cut.csv"
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token {token}\r\n"
            f"Content-Length: {10_000_000}\r\n\r\n"
        ).encode()
        + b"1,2\n" * 250_000
    )
    await writer.drain()
    await eventually(lambda: leftovers(data_dir) != [])  # the upload is under way
    writer.close()
    await eventually(lambda: leftovers(data_dir) == [])
    assert not (data_dir / "cut.csv").exists()
    assert jobserver.datafiles._reserved == {}


async def test_uploads_need_authentication_before_any_byte(
    jp_fetch: Any, jobserver: Any, data_dir: pathlib.Path
) -> None:
    from tornado.httpclient import HTTPClientError

    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch(
            "jobserver",
            "api",
            "datafiles",
            "anon.csv",
            method="PUT",
            body=b"a\n",
            headers={"Authorization": ""},
        )
    assert caught.value.code == 403
    assert not (data_dir / "anon.csv").exists()
    assert leftovers(data_dir) == []


async def test_only_the_field_named_file_is_the_upload(api: Api, data_dir: pathlib.Path) -> None:
    body = multipart(
        ('Content-Disposition: form-data; name="note"; filename="file"', b"not this"),
        ('Content-Disposition: form-data; name="file"; filename="x.csv"', b"this"),
        ('Content-Disposition: form-data; name="file"; filename="y.csv"', b"nor this"),
    )
    answer = await api.put("datafiles/one.csv", raw=body, headers=MULTIPART)
    assert answer.code == 201
    assert (data_dir / "one.csv").read_bytes() == b"this"


def test_user_folders_stay_inside_the_data_folder(tmp_path: pathlib.Path) -> None:
    from jupyter_jobserver.data.datafiles import DataFiles
    from jupyter_jobserver.users import User

    files = DataFiles(data_dir=str(tmp_path / "data"), datafile_extensions=["csv"], per_user=True)
    for name in (".", "..", ".hidden", "a/b", "", "é"):
        own = files.folders(User(name))[0][0]
        assert own.parent == tmp_path / "data", name
        assert not own.name.startswith(".")
        assert own.name not in ("", ".", "..")
