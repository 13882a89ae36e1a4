"""Running a notebook job inside a worker: nbclient drives a kernel of the notebook's
own kind, one cell at a time (see :mod:`jupyter_jobserver.processes.notebook` for what a
notebook author can count on).

Imported only when a notebook job runs: nbclient and nbformat are loaded then.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

from .. import context
from ..processes.notebook import (
    INJECTED_TAG,
    CellFailed,
    output_text,
    write,
)

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
    from traitlets.config import Config

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
    sockets = tempfile.mkdtemp(prefix="jobserver-kernel-")
    client = StreamingClient(
        notebook,
        kernel_name=spec.get("kernel") or "python3",
        timeout=None,
        resources={"metadata": {"path": job_dir}},
        # the kernel talks to this worker over local sockets, not loopback TCP (in a
        # short path of their own: a socket's path has a length limit)
        config=Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "k")}}),
    )
    try:
        with client.setup_kernel():
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
            probe = nbformat.v4.new_code_cell(_RESULT.format(name=spec.get("result") or "result"))
            client.quiet = True
            notebook.cells.append(probe)  # nbclient keeps what it runs in the notebook
            try:
                client.execute_cell(probe, len(notebook.cells) - 1)
            finally:
                notebook.cells.pop()
    finally:
        nbformat.write(notebook, saved)
        shutil.rmtree(sockets, ignore_errors=True)
    text = "".join(
        "".join(out.get("text") or "") for out in probe.outputs if out.output_type == "stream"
    )
    return json.loads(text) if text.strip() else None
