"""Stored data documents, and every kind of data binding through a real job."""

from __future__ import annotations

import hashlib
import pathlib
import shutil
from typing import Any

import pytest
from helpers import Api

#: these tests run on the SQLite store and on the MongoDB store (see conftest.py)
EVERY_STORE = True

REPO_DATA = pathlib.Path(__file__).parent.parent / "data"


@pytest.fixture
def data_dir(jobserver: Any) -> pathlib.Path:
    folder = pathlib.Path(jobserver.datafiles.data_dir)
    for source in REPO_DATA.iterdir():
        shutil.copy(source, folder / source.name)
    return folder


async def make(api: Api, **document: Any) -> dict:
    answer = await api.post("data", document)
    assert answer.code == 201, answer
    return answer.json


# --- documents ---------------------------------------------------------------------------


async def test_create_read_list_change_and_delete_a_document(api: Api) -> None:
    created = await api.post(
        "data", {"name": "levels", "datatype": "json", "data": {"a": [1, 2, 3]}, "description": "x"}
    )
    assert created.code == 201
    document = created.json
    assert created.headers["Location"].endswith(f"/jobserver/api/data/{document['id']}")
    assert document["revision"] == 1
    assert document["size"] == len('{"a":[1,2,3]}')
    assert document["sha256"] == hashlib.sha256(b'{"a":[1,2,3]}').hexdigest()
    assert document["owner"]
    one = await api.get(f"data/{document['id']}")
    assert one.json["data"] == {"a": [1, 2, 3]}
    listed = await api.get("data")
    assert listed.json["total"] == 1
    assert "data" not in listed.json["data"][0]  # lists never carry the payload
    assert listed.json["data"][0]["name"] == "levels"

    renamed = await api.patch(f"data/{document['id']}", {"name": "water levels"})
    assert renamed.json["name"] == "water levels"
    assert renamed.json["revision"] == 2
    assert renamed.json["sha256"] == document["sha256"]  # the payload did not change
    assert renamed.json["data"] == {"a": [1, 2, 3]}
    replaced = await api.put(f"data/{document['id']}", {"name": "new", "data": [1, 2]})
    assert replaced.json["revision"] == 3
    assert replaced.json["data"] == [1, 2]
    assert replaced.json["description"] is None  # PUT replaces every field
    stale = await api.patch(f"data/{document['id']}", {"data": [3], "revision": 2})
    assert stale.code == 409
    assert "no longer at revision 2" in stale.json["message"]
    assert (await api.get(f"data/{document['id']}")).json["data"] == [1, 2]
    assert (await api.patch(f"data/{document['id']}", {"data": [3], "revision": 3})).code == 200

    assert (await api.delete(f"data/{document['id']}")).code == 204
    assert (await api.get(f"data/{document['id']}")).code == 404
    assert (await api.delete(f"data/{document['id']}")).code == 404


async def test_documents_are_checked_against_their_datatype(api: Api, jobserver: Any) -> None:
    cases = [
        ({"name": "x", "datatype": "parquet", "data": 1}, 400, "unknown datatype 'parquet'"),
        ({"name": "x", "datatype": "dataframe", "data": 5}, 400, "a dataframe is a list of rows"),
        ({"name": "x", "datatype": "dataframe", "data": [1, 2]}, 400, "one object per row"),
        (
            {"name": "x", "datatype": "dataframe", "data": {"a": [1], "b": [1, 2]}},
            400,
            "all as long",
        ),
        ({"name": "x", "datatype": "ndarray", "data": [[1, 2], [3]]}, 400, "rectangular"),
        ({"name": "x", "datatype": "timeseries", "data": []}, 400, "at least one row"),
        ({"name": "", "data": 1}, 400, "name"),
        ({"datatype": "json", "data": 1}, 400, "missing field 'name'"),
        ({"name": "x", "data": 1, "colour": "red"}, 400, "unknown field 'colour'"),
    ]
    for body, status, message in cases:
        answer = await api.post("data", body)
        assert answer.code == status, body
        assert message in answer.json["message"], (body, answer.json)
    nan = await api.call("POST", "data", raw=b'{"name": "x", "data": NaN}')
    assert nan.code == 400
    assert "NaN" in nan.json["message"]
    jobserver.documents.max_document_size = 1000
    big = await api.post("data", {"name": "big", "data": ["x" * 100] * 20})
    assert big.code == 413
    assert "at most 1,000 bytes" in big.json["message"]
    assert (await api.get("data")).json["total"] == 0  # nothing half-made stays behind
    doc = await make(api, name="d", datatype="json", data={"k": 1})
    retyped = await api.patch(f"data/{doc['id']}", {"datatype": "ndarray"})
    assert retyped.code == 400  # the stored payload does not suit the new datatype
    assert (await api.get(f"data/{doc['id']}")).json["datatype"] == "json"


# --- bindings ----------------------------------------------------------------------------


async def test_summary_of_a_datafile(api: Api, data_dir: pathlib.Path) -> None:
    job = await api.run("summary", data={"type": "datafile", "name": "timeseries.csv"})
    assert job["status"] == "succeeded", job["error"]
    table = job["result"]
    assert table["$type"] == "dataframe"
    assert table["columns"] == ["temperature", "precipitation", "discharge"]
    assert table["index"] == ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]
    assert table["data"][0] == [365.0, 365.0, 365.0]
    recorded = job["provenance"]["data"]
    content = (data_dir / "timeseries.csv").read_bytes()
    assert recorded["type"] == "datafile"
    assert recorded["name"] == "timeseries.csv"
    assert recorded["sha256"] == hashlib.sha256(content).hexdigest()
    assert recorded["size"] == len(content)
    assert job["data"] == {"type": "datafile", "name": "timeseries.csv"}


async def test_every_binding_type_reaches_a_script(api: Api, data_dir: pathlib.Path) -> None:
    csv = await api.run("describe_data", data={"type": "datafile", "name": "timeseries.csv"})
    assert csv["result"]["type"] == "DataFrame"
    assert csv["result"]["rows"] == 365
    assert csv["result"]["columns"] == ["date", "temperature", "precipitation", "discharge"]
    dat = await api.run("describe_data", data={"type": "datafile", "name": "gauge.dat"})
    assert dat["result"]["columns"] == ["date", "discharge"]  # whitespace-separated table
    station = await api.run("describe_data", data={"type": "datafile", "name": "station.json"})
    assert station["result"] == {"type": "dict", "length": 5}

    document = await make(api, name="levels", datatype="json", data=[1, 2, 3])
    stored = await api.run("describe_data", data={"type": "mongodb", "id": document["id"]})
    assert stored["result"] == {"type": "list", "length": 3}
    assert stored["provenance"]["data"] == {
        "type": "mongodb",
        "id": document["id"],
        "name": "levels",
        "revision": 1,
        "sha256": document["sha256"],
    }
    inline = await api.run(
        "describe_data",
        data={"type": "raw_data", "datatype": "dataframe", "data": {"a": [1, 2], "b": [3, 4]}},
    )
    assert inline["result"]["type"] == "DataFrame"
    assert inline["result"]["first"] == [1, 3]
    assert inline["provenance"]["data"]["type"] == "raw_data"
    assert len(inline["provenance"]["data"]["sha256"]) == 64


async def test_each_datatype_becomes_its_python_value(api: Api) -> None:
    series = await api.run(
        "describe_data",
        data={
            "type": "raw_data",
            "datatype": "timeseries",
            "data": [{"time": "2026-01-01", "v": 1}, {"time": "2026-01-02", "v": 2}],
        },
    )
    assert series["result"]["index"] == "DatetimeIndex"
    assert series["result"]["columns"] == ["v"]
    split = await api.run(
        "describe_data",
        data={
            "type": "raw_data",
            "datatype": "timeseries",
            "data": {"columns": ["v"], "data": [[1], [2]], "index": ["2026-01-01", "2026-01-02"]},
        },
    )
    assert split["result"]["index"] == "DatetimeIndex"
    matrix = await make(
        api, name="m", datatype="ndarray", data={"data": [1, 2, 3, 4, 5, 6], "shape": [2, 3]}
    )
    shape = await api.run("array_shape", data={"type": "mongodb", "id": matrix["id"]})
    assert shape["result"] == [2, 3]
    nested = await api.run(
        "array_shape", data={"type": "raw_data", "datatype": "ndarray", "data": [[1], [2]]}
    )
    assert nested["result"] == [2, 1]
    from_table = await api.run(
        "array_shape",
        data={"type": "raw_data", "datatype": "dataframe", "data": [{"a": 1, "b": 2}]},
    )
    assert from_table["result"] == [1, 2]
    column = await api.run(
        "column_sum", data={"type": "raw_data", "datatype": "series", "data": [1, 2, 3.5]}
    )
    assert column["result"] == 6.5
    table = await api.run(
        "table_mean",
        data={"type": "raw_data", "datatype": "json", "data": [{"value": 2}, {"value": 4}]},
    )
    assert table["result"] == 3.0
    two_columns = await api.run(
        "column_sum",
        data={"type": "raw_data", "datatype": "dataframe", "data": {"a": [1], "b": [2]}},
    )
    assert two_columns["status"] == "failed"
    assert "takes a series, but the data has 2 columns" in two_columns["error"]["message"]


async def test_a_path_parameter_gets_the_datafile_itself(api: Api, data_dir: pathlib.Path) -> None:
    job = await api.run("file_info", data={"type": "datafile", "name": "gauge.dat"})
    assert job["result"] == {
        "name": "gauge.dat",
        "size": (data_dir / "gauge.dat").stat().st_size,
        "absolute": True,
        "in_job_folder": False,  # the local executor shares the server's disk: by path
    }


@pytest.mark.parametrize(
    "jp_server_config", [{"JobServerApp": {"executor_class": "executors.DiskApart"}}], indirect=True
)
async def test_an_executor_that_shares_no_disk_gets_the_datafile_itself(
    api: Api, data_dir: pathlib.Path
) -> None:
    """An executor on other machines cannot open the server's paths: it is handed the
    datafile's bytes, and the job reads its own copy. (The local executor, told it shares
    no disk, stands in for a remote one.)"""
    job = await api.run("file_info", data={"type": "datafile", "name": "gauge.dat"})
    content = (data_dir / "gauge.dat").read_bytes()
    assert job["status"] == "succeeded", job["error"]
    assert job["result"] == {
        "name": "gauge.dat",
        "size": len(content),
        "absolute": True,
        "in_job_folder": True,
    }
    assert job["provenance"]["data"]["sha256"] == hashlib.sha256(content).hexdigest()


async def test_bindings_a_script_cannot_take_are_refused(api: Api, data_dir: pathlib.Path) -> None:
    document = await make(api, name="d", datatype="json", data={"a": 1})
    cases = [
        ("file_info", {"type": "raw_data", "data": [1]}, 400, "cannot read raw_data data"),
        ("file_info", {"type": "mongodb", "id": document["id"]}, 400, "cannot read mongodb data"),
        ("echo", {"type": "raw_data", "data": [1]}, 400, "echo takes no data"),
        (
            "array_shape",
            {"type": "raw_data", "datatype": "dataframe", "data": 3},
            400,
            "a dataframe is",
        ),
        (
            "summary",
            {"type": "datafile", "name": "missing.csv"},
            404,
            "no datafile named 'missing.csv'",
        ),
        ("summary", {"type": "mongodb", "id": "nope"}, 404, "no data document with id 'nope'"),
        (
            "summary",
            {"type": "raw_data", "datatype": "ndarray", "data": [1]},
            400,
            "takes a table, not ndarray",
        ),
        (
            "summary",
            {"type": "raw_data", "datatype": "cube", "data": [1]},
            400,
            "unknown datatype 'cube'",
        ),
        ("summary", {"type": "datafile", "name": "../x.csv"}, 400, "not a datafile name"),
    ]
    for script, data, status, message in cases:
        kwargs = {"text": "x"} if script == "echo" else {}
        answer = await api.post("jobs", {"script": script, "kwargs": kwargs, "data": data})
        assert answer.code == status, (script, data, answer)
        assert message in answer.json["message"], (script, answer.json["message"])
    needs = await api.post("jobs", {"script": "summary"})
    assert needs.code == 400
    assert needs.json["message"] == "summary needs data: bind a datafile or mongodb or raw_data"
    assert (await api.get("jobs")).json["total"] == 0


async def test_large_inline_data_reaches_the_worker_as_a_file(api: Api, jobserver: Any) -> None:
    rows = [{"value": i} for i in range(40_000)]  # well over the inline limit
    job = await api.run(
        "table_mean", data={"type": "raw_data", "datatype": "dataframe", "data": rows}
    )
    assert job["result"] == 19999.5
    assert (pathlib.Path(jobserver.jobs_dir) / job["id"] / "data.json").exists()


async def test_rerun_refuses_changed_data_unless_asked(api: Api, data_dir: pathlib.Path) -> None:
    first = await api.run("summary", data={"type": "datafile", "name": "timeseries.csv"})
    same = await api.post(f"jobs/{first['id']}/rerun")
    assert same.code == 202
    assert (await api.wait(same.json["id"]))["result"] == first["result"]

    with (data_dir / "timeseries.csv").open("a") as f:
        f.write("2026-01-01,99,0,1\n")
    changed = await api.post(f"jobs/{first['id']}/rerun")
    assert changed.code == 409
    assert "datafile timeseries.csv changed since job" in changed.json["message"]
    assert '"current_data": true' in changed.json["message"]
    current = await api.post(f"jobs/{first['id']}/rerun", {"current_data": True})
    assert current.code == 202
    rerun = await api.wait(current.json["id"])
    assert rerun["result"]["data"][0] == [366.0, 366.0, 366.0]
    assert rerun["provenance"]["data"]["sha256"] != first["provenance"]["data"]["sha256"]

    document = await make(api, name="d", datatype="dataframe", data=[{"value": 1}])
    job = await api.run("table_mean", data={"type": "mongodb", "id": document["id"]})
    await api.patch(f"data/{document['id']}", {"data": [{"value": 5}]})
    refused = await api.post(f"jobs/{job['id']}/rerun")
    assert refused.code == 409
    assert "revision 1 is now 2" in refused.json["message"]
    await api.delete(f"data/{document['id']}")
    gone = await api.post(f"jobs/{job['id']}/rerun")
    assert gone.code == 409
    assert "no longer exists" in gone.json["message"]

    inline = await api.run("table_mean", data={"type": "raw_data", "data": [{"value": 2}]})
    assert (await api.post(f"jobs/{inline['id']}/rerun")).code == 202


async def test_a_package_can_add_a_datatype(api: Api) -> None:
    """tests/ holds a distribution that registers the datatype 'percent'."""
    refused = await api.post("data", {"name": "p", "datatype": "percent", "data": [50, 150]})
    assert refused.code == 400
    assert "list of numbers from 0 to 100" in refused.json["message"]
    document = await make(api, name="p", datatype="percent", data=[50, 25])
    stored = await api.run("total", data={"type": "mongodb", "id": document["id"]})
    assert stored["result"] == 0.75
    inline = await api.run("total", data={"type": "raw_data", "datatype": "percent", "data": [10]})
    assert inline["result"] == 0.1


async def test_document_fields_that_may_not_be_null(api: Api) -> None:
    document = await make(api, name="n", data=[1])
    for body in ({"name": None}, {"datatype": None}, {"public": None}):
        answer = await api.patch(f"data/{document['id']}", body)
        assert answer.code == 400, body
        assert "may not be null" in answer.json["message"]
    assert (await api.patch(f"data/{document['id']}", {"description": None})).code == 200
    for payload in ({"columns": 5, "data": [[1]]}, {"columns": ["a"], "data": [[1]], "index": 7}):
        answer = await api.post("data", {"name": "t", "datatype": "dataframe", "data": payload})
        assert answer.code == 400, payload


async def test_an_unbound_optional_data_parameter_keeps_positions(api: Api) -> None:
    job = await api.run("optional_data", args=[3])
    assert job["result"] == {"rows": None, "window": 3}
    bound = await api.run(
        "optional_data",
        args=[2],
        data={"type": "raw_data", "datatype": "dataframe", "data": [{"a": 1}]},
    )
    assert bound["result"] == {"rows": 1, "window": 2}


async def test_a_job_cancelled_while_its_data_is_read_never_runs(
    api: Api, jobserver: Any, data_dir: pathlib.Path
) -> None:
    """Reading (hashing) a large datafile takes a while; a cancel may come meanwhile. The
    real resolver is held at a gate so the test can cancel inside that window."""
    import asyncio

    bindings = jobserver.jobs.data
    reading, go_on = asyncio.Event(), asyncio.Event()
    real_resolve = bindings.resolve

    async def held_resolve(*args: Any, **kwargs: Any) -> Any:
        reading.set()
        await go_on.wait()
        return await real_resolve(*args, **kwargs)

    bindings.resolve = held_resolve
    try:
        job = (
            await api.post(
                "jobs",
                {"script": "summary", "data": {"type": "datafile", "name": "timeseries.csv"}},
            )
        ).json
        run = asyncio.ensure_future(api.post(f"jobs/{job['id']}/run"))
        await reading.wait()
        assert (await api.post(f"jobs/{job['id']}/cancel")).json["status"] == "cancelled"
        go_on.set()
        assert (await run).code == 202
    finally:
        bindings.resolve = real_resolve
    final = await api.wait(job["id"])
    assert final["status"] == "cancelled"
    assert final["started"] is None
    assert jobserver.executor.running() == []
    assert not (pathlib.Path(jobserver.jobs_dir) / job["id"]).exists()


async def test_timeseries_need_times_and_arrays_their_shape(api: Api) -> None:
    no_times = [{"value": 1.5, "b": 3}, {"value": 2, "b": 4}]
    for body, words in [
        (
            {"name": "t", "datatype": "timeseries", "data": no_times},
            "takes its times from column 'value', and 1.5 is not a time",
        ),
        (
            {"name": "t", "datatype": "timeseries", "data": [{"date": "soon", "v": 1}]},
            "'soon' is not a time",
        ),
        (
            {"name": "a", "datatype": "ndarray", "data": {"data": [1, 2, 3], "shape": [2, 2]}},
            "needs 4 values; 'data' has 3",
        ),
    ]:
        answer = await api.post("data", body)
        assert answer.code == 400, body
        assert words in answer.json["message"], answer.json
        job = await api.post(
            "jobs",
            {
                "script": "describe_data",
                "data": {"type": "raw_data", "datatype": body["datatype"], "data": body["data"]},
            },
        )
        assert job.code == 400
        assert words in job.json["message"]
    table = await make(api, name="plain", datatype="dataframe", data=no_times)
    retyped = await api.patch(f"data/{table['id']}", {"datatype": "timeseries"})
    assert retyped.code == 400
    assert (await api.get(f"data/{table['id']}")).json["datatype"] == "dataframe"
    dated = await api.run(
        "describe_data",
        data={
            "type": "raw_data",
            "datatype": "timeseries",
            "data": [{"v": 1, "Date": "2026-01-01"}, {"v": 2, "Date": "2026-01-02T06:00:00Z"}],
        },
    )
    assert dated["result"]["index"] == "DatetimeIndex"
    assert dated["result"]["columns"] == ["v"]  # the named column gave the times
    huge = await api.patch(f"data/{table['id']}", {"revision": 2**70, "name": "x"})
    assert huge.code == 400
