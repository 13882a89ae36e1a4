"""Running a notebook job inside a worker: nbclient drives a kernel of the notebook's
own kind, one cell at a time (see :mod:`jupyter_jobserver.processes.notebook` for what a
notebook author can count on).

Imported only when a notebook job runs: nbclient and nbformat are loaded then.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from typing import Any

from .. import context
from .failure import ReportedFailure

#: the tag of the cell the job server adds with the job's values
INJECTED_TAG = "injected-parameters"

#: the code that hands the notebook's result to the job (run after the last cell, not
#: kept in the executed notebook)
_RESULT = (
    "print(__import__('jupyter_jobserver.serialize', fromlist=['dumps'])"
    ".dumps(globals().get({name!r})))"
)


def run_notebook(spec: dict[str, Any], values: dict[str, Any], job_dir: str) -> Any:
    """Execute the notebook with ``values`` injected; its result (see the module)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    class StreamingClient(NotebookClient):
        """Each output goes to the job's streams the moment the kernel sends it."""

        quiet = False

        def output(self, outs: Any, msg: Any, display_id: Any, cell_index: int) -> Any:
            out = super().output(outs, msg, display_id, cell_index)
            if out is not None and not self.quiet:
                shown = output_text(out)
                if shown is not None:
                    write(*shown)
            return out

    if "content" in spec:  # sent with the task: the server's path may not exist here
        notebook = nbformat.reads(spec["content"], as_version=4)
    else:
        notebook = nbformat.read(spec["notebook"], as_version=4)
    position = spec.get("parameters_cell")
    position = -1 if position is None else int(position)
    if values:
        injected = nbformat.v4.new_code_cell(
            "# Parameters of this job\n"
            + "".join(f"{key} = {value!r}\n" for key, value in values.items()),
            metadata={"tags": [INJECTED_TAG]},
        )
        notebook.cells.insert(position + 1, injected)
    code = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    total = len(code) - (1 if values else 0)
    saved = os.path.join(job_dir, os.path.basename(spec["notebook"]))
    kernel_name = spec.get("kernel") or "python3"
    kernel = _take_spare(kernel_name) or _Kernel(kernel_name, cwd=job_dir)
    client = StreamingClient(
        notebook,
        km=kernel.manager,
        timeout=None,
        resources={"metadata": {"path": job_dir}},
        shutdown_kernel="immediate",  # the kernel is done with: no grace period to wait
    )

    def hidden(code: str) -> Any:
        """Run code the notebook does not show (its outputs are not the job's)."""
        cell = nbformat.v4.new_code_cell(code)
        client.quiet = True
        notebook.cells.append(cell)  # nbclient keeps what it runs in the notebook
        try:
            client.execute_cell(cell, len(notebook.cells) - 1, store_history=False)
        finally:
            notebook.cells.pop()
            client.quiet = False
        return cell

    try:
        with client.setup_kernel():
            hidden(f"__import__('os').chdir({job_dir!r})")  # a spare kernel started elsewhere
            number = 0
            for index in code:
                cell = notebook.cells[index]
                injected_cell = INJECTED_TAG in (cell.metadata.get("tags") or [])
                if not injected_cell:  # cells are numbered as the author sees them
                    number += 1
                    context.progress((number - 1) / total, f"cell {number} of {total}")
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as exc:
                    where = "the injected parameters" if injected_cell else f"cell {number}"
                    raise CellFailed(
                        f"{where} of {total} failed: {exc.ename}: {exc.evalue}",
                        detail=str(exc),
                    ) from None
            context.progress(1.0, f"cell {total} of {total}")
            probe = hidden(_RESULT.format(name=spec.get("result") or "result"))
    finally:
        nbformat.write(notebook, saved)
        kernel.close()  # one job per kernel: nothing of this job reaches the next
        _start_spare(kernel_name)
    text = "".join(
        "".join(out.get("text") or "") for out in probe.outputs if out.output_type == "stream"
    )
    return json.loads(text) if text.strip() else None


class _Kernel:
    """A kernel of the notebook's kind, talking to this worker over local sockets (in a
    short folder of its own: a socket's path has a length limit), not loopback TCP."""

    def __init__(self, name: str, cwd: str, quiet: bool = False) -> None:
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        self.name = name
        _remove_stale_sockets()
        self.sockets = tempfile.mkdtemp(prefix=f"{SOCKETS_PREFIX}{os.getpid()}-")
        self.manager = AsyncKernelManager(
            kernel_name=name, transport="ipc", ip=os.path.join(self.sockets, "k")
        )
        # a spare kernel writes nowhere: until it runs a job, no job's output is its own
        streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} if quiet else {}
        run_sync(self.manager.start_kernel)(cwd=cwd, **streams)

    @property
    def pid(self) -> int | None:
        return getattr(self.manager.provisioner, "pid", None)

    def alive(self) -> bool:
        from jupyter_core.utils import run_sync

        return bool(self.manager.has_kernel and run_sync(self.manager.is_alive)())

    def close(self) -> None:
        from jupyter_core.utils import run_sync

        with contextlib.suppress(Exception):
            if self.manager.has_kernel:
                run_sync(self.manager.shutdown_kernel)(now=True)
        shutil.rmtree(self.sockets, ignore_errors=True)
        # the client's heartbeat thread ends a moment after its channels are stopped; a
        # thread left running would make the worker retire (and take the spare with it)
        from jupyter_client.channels import HBChannel

        for thread in threading.enumerate():
            if isinstance(thread, HBChannel):
                thread.stop()
                thread.join(5)


#: the kernels' socket folders, in the temporary folder: ``<prefix><worker pid>-<random>``
SOCKETS_PREFIX = "jobserver-kernel-"


def _remove_stale_sockets() -> None:
    """Remove the socket folders of workers that are gone (a cancelled or timed-out job
    ends its worker before that worker can tidy up)."""
    import glob

    for folder in glob.glob(os.path.join(tempfile.gettempdir(), f"{SOCKETS_PREFIX}*-*")):
        pid = os.path.basename(folder)[len(SOCKETS_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: the kernel started ahead of the next notebook job of this worker
_spare: _Kernel | None = None


def spare_processes() -> frozenset[int]:
    """The spare kernel's process, which the clean-up between jobs leaves running."""
    pid = _spare.pid if _spare is not None else None
    return frozenset({pid}) if pid else frozenset()


def _take_spare(name: str) -> _Kernel | None:
    """The spare kernel, if it is of this kind and alive (each is used once)."""
    global _spare
    spare, _spare = _spare, None
    if spare is not None and spare.name == name and spare.alive():
        return spare
    if spare is not None:
        spare.close()
    return None


def _start_spare(name: str) -> None:
    """Start a kernel for the next notebook job now, so that job need not wait for one
    (the kernel starts while this worker reports the job that just ended)."""
    global _spare
    try:
        _spare = _Kernel(name, cwd=tempfile.gettempdir(), quiet=True)
    except Exception:  # the next job starts its own kernel, and says why if it cannot
        _spare = None


@atexit.register
def _discard_spare() -> None:
    if _spare is not None:
        _spare.close()


class CellFailed(ReportedFailure):
    """A cell of the notebook raised; its traceback is in the job's stderr already."""


def output_text(output: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(stream, text)`` of one cell output, as the job's stdout or stderr shows it."""
    kind = output.get("output_type")
    if kind == "stream":
        return str(output.get("name") or "stdout"), _joined(output.get("text"))
    if kind in ("execute_result", "display_data"):
        data = output.get("data") or {}
        if "text/plain" in data:
            return "stdout", _joined(data["text/plain"]).rstrip("\n") + "\n"
        kinds = ", ".join(sorted(data))
        return "stdout", f"[{kinds} output: see the executed notebook]\n"
    if kind == "error":
        return "stderr", _strip_ansi("\n".join(output.get("traceback") or [])) + "\n"
    return None


def _joined(text: Any) -> str:
    return "".join(text) if isinstance(text, list) else str(text or "")


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def write(stream: str, text: str) -> None:
    target = sys.stderr if stream == "stderr" else sys.stdout
    target.write(text)
    target.flush()
