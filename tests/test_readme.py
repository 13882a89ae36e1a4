"""Every example of the README runs as written, against a real server: the Python and
magic blocks in a kernel the server started, the curl tour in bash."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest
from helpers import TESTS
from jupyter_client import BlockingKernelClient

from jupyter_jobserver.testing import ServerProcess

README = TESTS.parent / "README.md"
#: what the tour's server is started with, and what the tour then sends
TOKEN = "tour"
PRINTED_URL = "URL=http://localhost:8888/"


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks in ``language``, in order."""
    fences = re.findall(r"^```(\w+)\n(.*?)^```$", README.read_text(), re.M | re.S)
    return [body for lang, body in fences if lang == language]


def config_block() -> str:
    (block,) = [b for b in blocks("python") if b.startswith("c.")]
    return block


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server run as `make lab` runs it in a checkout: the root holds data/, and the
    module the README's own script lives in; the README's configuration file sits in
    the folder Jupyter reads configuration from."""
    home = tmp_path_factory.mktemp("readme")
    root = home / "root"
    shutil.copytree(TESTS.parent / "data", root / "data")
    package = root / "mypackage"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (smooth,) = [b for b in blocks("python") if "def smooth(" in b]
    (package / "filters.py").write_text(smooth)
    config = {
        "ServerApp": {
            "jpserver_extensions": {
                "jupyter_jobserver": True,
                "jupyterlab": False,
                "jupyter_lsp": False,
                "notebook_shim": False,
            }
        },
        "JobServerApp": {"state_dir": str(home / "state"), "workers": 2},
        # workers start where Jupyter was started: the checkout
        "LocalExecutor": {"total_cores": 2, "cwd": str(root)},
    }
    server = ServerProcess(home, config, token=TOKEN)
    (server.config_dir / "jupyter_server_config.py").write_text(config_block())
    server.start()
    yield server
    server.stop()


def test_the_python_and_magic_blocks_run_in_a_kernel(checkout: ServerProcess) -> None:
    code = [b for b in blocks("python") if not b.startswith("c.")]
    assert len(code) >= 4 and any("%jobserver" in b for b in code)
    kernel = checkout.call_api("POST", "api/kernels", {"name": "python3"})
    connection_file = checkout.runtime_dir / f"kernel-{kernel['id']}.json"
    kc = BlockingKernelClient(connection_file=str(connection_file))
    kc.load_connection_file()
    # no heartbeat: one that has not beaten yet, as the kernel starts, reads as a dead kernel
    kc.start_channels(hb=False)
    try:
        kc.wait_for_ready(timeout=60)  # its answer to kernel_info
        streams: dict[str, list[str]] = {}

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                streams.setdefault(msg["content"]["name"], []).append(msg["content"]["text"])

        for block in [*code, "print(job.script, job.status, type(job.result).__name__)"]:
            streams.clear()
            reply = kc.execute_interactive(block, timeout=120, output_hook=hook)
            content = reply["content"]
            assert content["status"] == "ok", (block, content.get("ename"), content.get("evalue"))
            assert not streams.get("stderr"), (block, streams["stderr"])
        assert "".join(streams["stdout"]).split() == ["smooth", "succeeded", "DataFrame"]
    finally:
        kc.stop_channels()
        checkout.call_api("DELETE", f"api/kernels/{kernel['id']}")


def test_the_curl_tour_runs_as_written(checkout: ServerProcess) -> None:
    (start,) = [b for b in blocks("bash") if "LAB_ARGS" in b and "make lab" in b]
    assert f"--IdentityProvider.token={TOKEN}" in start
    (tour,) = [b for b in blocks("bash") if "curl" in b]
    assert PRINTED_URL in tour  # the line a person changes to the address Jupyter printed
    script = tour.replace(PRINTED_URL, f"URL={checkout.base}/")
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert '"name": "summary"' in out  # the scripts, through json.tool
    assert re.search(r'"status": ?"succeeded"', out) and re.search(r'"result": ?3\.5', out)
    assert "event: progress" in out and "event: end" in out  # the slow job, followed live
    assert "step 5 of 5" in out  # its captured stdout
    assert "parameter 'steps' must be at least 1, not 0" in out
    assert len(re.findall(r"\"jobs\": ?\[", out)) == 2  # the two searches
    assert re.search(r'"rerun_of": ?"[0-9a-f]{32}"', out)


def test_the_other_blocks_are_well_formed() -> None:
    for spec in blocks("json"):
        assert "file" in json.loads(spec)
    if sys.version_info >= (3, 11):
        import tomllib

        for block in blocks("toml"):
            assert tomllib.loads(block)
