"""The Python client, sync and async, against real servers; and how kernels find the server."""

from __future__ import annotations

import inspect
import json
import pathlib
import pydoc
import threading
from typing import Any

import pandas as pd
import pytest
from jupyter_client import BlockingKernelClient

from jupyter_jobserver import errors
from jupyter_jobserver.client import (
    ENV_TOKEN,
    ENV_URL,
    AsyncJobServerClient,
    JobServerClient,
    ServerNotFound,
    find_server,
)


def test_scripts_jobs_results_and_output(client: JobServerClient) -> None:
    names = [s["name"] for s in client.scripts()]
    assert "summary" in names
    assert client.script("echo")["parameters"]["required"] == ["text"]
    job = client.run("echo", "hey", kwargs={"times": 2}, tags=["client"])
    assert job.status == "succeeded"
    assert job.result == "heyhey"
    assert job.stdout == "hey\nhey\n"
    assert job.stderr == "echoed 2 time(s)\n"
    assert job.tags == ["client"]
    again = job.rerun()
    assert again.rerun_of == job.id
    assert again.wait().result == "heyhey"
    listed, total = client.jobs(tag="client")
    assert {j.id for j in listed} == {job.id, again.id}
    assert total == 2
    found, _ = client.query({"id": job.id})
    assert [j.id for j in found] == [job.id]
    piece = client.output(job.id, "stdout", offset=4)
    assert piece.text == "hey\n"
    assert piece.complete
    assert piece.next_offset == 8


def test_results_come_back_as_python_values(client: JobServerClient) -> None:
    frame = client.run("results", kwargs={"kind": "dataframe"}).result
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["x", "n"]
    assert frame["n"].tolist() == [1, 2, 3]
    assert str(frame.index.dtype).startswith("datetime64")
    assert frame.index.name == "day"
    array = client.run("results", kwargs={"kind": "ndarray"}).result
    assert array.shape == (2, 3)
    assert str(array.dtype) == "int32"
    series = client.run("results", kwargs={"kind": "series"}).result
    assert series.to_dict() == {"a": 1, "b": 2, "c": 3}
    nested = client.run("results", kwargs={"kind": "multiindex"}).result
    assert list(nested.columns) == [("a", "x"), ("a", "y")]  # not transposed
    assert list(nested.index) == [("r", 1), ("r", 2)]
    assert nested.loc[("r", 2), ("a", "y")] == 4
    repeated = client.run("results", kwargs={"kind": "repeated"}).result
    assert list(repeated.columns) == ["v", "v"]
    assert [str(t) for t in repeated.dtypes] == ["int64", "float64"]


def test_errors_carry_the_servers_message(client: JobServerClient) -> None:
    with pytest.raises(errors.NotFound, match="no script named 'nope'"):
        client.create_job("nope")
    with pytest.raises(errors.InvalidRequest, match="parameter 'times' must be an integer"):
        client.create_job("echo", kwargs={"text": "x", "times": "two"})
    job = client.run("echo", kwargs={"text": "x"})
    with pytest.raises(errors.Conflict, match="already succeeded"):
        client.run_job(job.id)
    with pytest.raises(errors.NotFound):
        client.get_job("0" * 32)


def test_cancel_edit_and_delete(client: JobServerClient) -> None:
    job = client.create_job("sleepy", kwargs={"seconds": 60}, run=True)
    client.get_job(job.id, wait=30, until="running")
    assert client.cancel(job.id).status == "cancelled"
    created = client.create_job("echo", kwargs={"text": "a"})
    edited = client.edit_job(created.id, kwargs={"text": "b"}, tags=["t"])
    assert edited.kwargs == {"text": "b"}
    assert client.run_job(created.id).status in ("queued", "running", "succeeded")
    assert client.get_job(created.id, wait=30).result == "b"
    client.delete_job(created.id)
    with pytest.raises(errors.NotFound):
        client.get_job(created.id)
    assert client.delete_jobs({"script": "sleepy"}) >= 1


def test_events_follow_a_job(client: JobServerClient) -> None:
    job = client.create_job("progress_steps", kwargs={"steps": 3, "delay": 0.15}, run=True)
    events = list(client.events(job.id))
    assert events[0]["event"] == "status"
    assert events[-1]["event"] == "end"
    assert events[-1]["job"]["status"] == "succeeded"
    assert [e["progress"]["fraction"] for e in events if e["event"] == "progress"][-1] == 1.0


def test_closing_a_client_ends_the_stream_another_thread_reads(live_server: Any) -> None:
    watcher = JobServerClient(live_server.base, live_server.token)
    opened = threading.Event()
    seen: list[str] = []
    failures: list[BaseException] = []

    def follow() -> None:
        try:
            for event in watcher.watch():
                seen.append(event["event"])
                opened.set()
        except BaseException as exc:  # the test reports it
            failures.append(exc)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert opened.wait(30)
    watcher.close()  # no event is coming: only the close can end the read
    thread.join(10)
    assert not thread.is_alive()
    assert seen == ["open"]
    assert failures == []  # a stream closed on purpose ends quietly, not "lost the server"


def test_datafiles_and_documents(client: JobServerClient, tmp_path: pathlib.Path) -> None:
    source = tmp_path / "values.csv"
    source.write_text("value\n1\n2\n3\n")
    meta = client.upload(source)
    assert meta["name"] == "values.csv"
    with pytest.raises(errors.Conflict):
        client.upload(source)
    assert client.upload(b"value\n10\n", "values.csv", overwrite=True)["size"] == 9
    assert "values.csv" in [f["name"] for f in client.datafiles()]
    assert client.datafile_content("values.csv", "json") == '[{"value":10}]'
    job = client.run("table_mean", data=client.datafile_binding("values.csv"))
    assert job.result == 10.0
    client.delete_datafile("values.csv")

    frame = pd.DataFrame({"value": [2.0, 4.0]})
    document = client.create_data("levels", frame, datatype="dataframe")
    assert document["revision"] == 1
    assert client.run("table_mean", data=client.document_binding(document["id"])).result == 3.0
    changed = client.edit_data(document["id"], data=[{"value": 8}], revision=1)
    assert changed["revision"] == 2
    with pytest.raises(errors.Conflict):
        client.edit_data(document["id"], name="x", revision=1)
    listed, _ = client.data_documents(name="levels")
    assert [d["id"] for d in listed] == [document["id"]]
    inline = client.run("table_mean", data=client.inline_binding(frame))
    assert inline.result == 3.0
    client.delete_data(document["id"])


async def test_the_async_client(
    jp_serverapp: Any, jobserver: Any, jp_http_port: int, jp_base_url: str, http_server_client: Any
) -> None:
    url = f"http://localhost:{jp_http_port}{jp_base_url}"
    async with AsyncJobServerClient(url, jp_serverapp.identity_provider.token) as client:
        assert "echo" in [s["name"] for s in await client.scripts()]
        job = await client.run("echo", "async", kwargs={"times": 3})
        assert job.result == "asyncasyncasync"
        events = [e async for e in client.events(job.id)]
        assert events[-1]["event"] == "end"
        meta = await client.upload(b"value\n5\n", "async.csv")
        assert meta["size"] == 8
        done = await client.run("table_mean", data=client.datafile_binding("async.csv"))
        assert done.result == 5.0
        with pytest.raises(errors.InvalidRequest):
            await client.create_job("echo")
        watching = client.watch()
        assert (await watching.__anext__())["event"] == "open"
        created = await client.create_job("echo", kwargs={"text": "w"}, run=True)
        seen = await watching.__anext__()
        assert seen["job_id"] == created.id
        assert seen["sweep"] is None
        sweep = await client.sweep("echo", grid={"text": ["s"]})
        seen = await watching.__anext__()
        while seen["job_id"] == created.id:  # the end of the job before
            seen = await watching.__anext__()
        assert seen["sweep"] == sweep.id  # a list of sweeps can follow new ones
        await watching.aclose()


def test_no_server_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(ServerNotFound, match="no job server found"):
        find_server()
    client = JobServerClient("http://127.0.0.1:9/", "x")
    with pytest.raises(ServerNotFound, match="cannot reach the job server"):
        client.scripts()


def test_a_wrong_address_or_token_says_so(live_server: Any) -> None:
    wrong_path = JobServerClient(live_server.base + "/elsewhere/", live_server.token)
    with pytest.raises(ServerNotFound, match=r"no job server at .*404") as raised:
        wrong_path.scripts()
    assert "<" not in raised.value.message  # not the HTML of Jupyter's 404 page
    wrong_token = JobServerClient(live_server.base, "not-the-token")
    with pytest.raises(errors.PermissionDenied, match=r"refused the credentials.*token"):
        wrong_token.scripts()


async def test_jobs_from_the_async_client_follow_themselves(live_server: Any) -> None:
    async with AsyncJobServerClient(live_server.base, live_server.token) as client:
        job = await client.create_job("echo", kwargs={"text": "a"}, run=True)
        assert job.wait(60).status == "succeeded"  # the job's own (blocking) methods work
        assert job.stdout == "a\n"
        assert job.refresh().result == "a"


def test_the_server_is_found_from_its_runtime_files(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(live_server.home / "runtime"))
    monkeypatch.chdir(live_server.home / "root")  # a folder the server serves
    connection = find_server()
    assert connection.url.rstrip("/").endswith(f":{live_server.port}")
    assert connection.token == live_server.token
    assert "echo" in [s["name"] for s in JobServerClient().scripts()]


def test_a_kernel_started_by_the_server_finds_it_with_no_configuration(live_server: Any) -> None:
    kernel = live_server.call_api("POST", "api/kernels", {"name": "python3"})
    connection_file = live_server.home / "runtime" / f"kernel-{kernel['id']}.json"
    kc = BlockingKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    # no heartbeat: one that has not beaten yet, as the kernel starts, reads as a dead kernel
    kc.start_channels(hb=False)
    try:
        kc.wait_for_ready(timeout=60)  # its answer to kernel_info
        code = (
            "from jupyter_jobserver.client import JobServerClient\n"
            "job = JobServerClient().run('echo', 'from the kernel')\n"
            "print(job.result)"
        )
        printed: list[str] = []
        reply = kc.execute_interactive(
            code,
            timeout=60,
            output_hook=lambda msg: (
                printed.append(msg["content"].get("text", ""))
                if msg["msg_type"] == "stream"
                else None
            ),
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "".join(printed).strip() == "from the kernel"
    finally:
        kc.stop_channels()
        live_server.call_api("DELETE", f"api/kernels/{kernel['id']}")


def test_tables_keep_their_shape_and_names_through_json() -> None:
    from jupyter_jobserver import serialize

    def again(frame: pd.DataFrame) -> pd.DataFrame:
        return serialize.from_jsonable(json.loads(serialize.dumps(frame)))

    empty = pd.DataFrame({"a": [], "b": [], "c": []}).set_index(["a", "b"])
    assert again(empty).index.nlevels == 2
    assert list(again(empty).index.names) == ["a", "b"]
    named = pd.DataFrame({"a": [1, 2], "b": [3, 4], "c": [5, 6]}).set_index(["a", "b"])
    pd.testing.assert_frame_equal(again(named), named)
    columns = pd.DataFrame([[1]], columns=pd.Index(["x"], name="measure"))
    assert again(columns).columns.name == "measure"


@pytest.mark.parametrize("cls", [JobServerClient, AsyncJobServerClient])
def test_every_method_shows_its_signature_and_help(cls: type) -> None:
    """What ``client.run?`` shows in Jupyter: the real parameters and a docstring."""
    public = [name for name in dir(cls) if not name.startswith("_")]
    assert {"run", "create_job", "jobs", "upload", "events", "datafile_binding"} <= set(public)
    for name in public:
        member = getattr(cls, name)
        if isinstance(member, property):
            assert member.__doc__, name
            continue
        signature = inspect.signature(member)
        assert "P.args" not in str(signature) and "Op[" not in str(signature), (name, signature)
        assert member.__doc__ and member.__doc__.strip(), f"{cls.__name__}.{name} has no help"
        assert member.__name__ == name
    run = inspect.signature(cls.run)
    assert list(run.parameters)[:3] == ["self", "script", "args"]
    assert run.parameters["wait"].default == 3600
    assert run.return_annotation == "Job"
    assert inspect.iscoroutinefunction(cls.run) == (cls is AsyncJobServerClient)


def test_help_on_a_clients_method(live_server: Any) -> None:
    with JobServerClient(live_server.base, live_server.token) as client:
        text = pydoc.render_doc(client.run, renderer=pydoc.plaintext)
    assert "run(script: 'str', *args: 'Any', wait: 'float | None' = 3600" in text
    assert "Create and run a job" in text
