"""The ``notebook`` process: a Jupyter notebook (``.ipynb``) run as a job, cell by cell,
in a kernel of its own.

Offering one: ``ScriptRegistry.scripts = {"name": {"notebook": "path/to/it.ipynb"}}``,
any ``<name>.ipynb`` in one of ``ScriptRegistry.script_dirs``, or an entry point of group
``jupyter_jobserver.scripts`` whose value is ``package.folder:it.ipynb`` (a file inside
an installed package, found without importing it).

Parameters are the assignments of the cell tagged ``parameters`` (papermill's
convention): each name, its type from the literal value, the value as its default, and a
comment on the same line as its description. ``metadata.jobserver.parameters`` may add
JSON Schema details per name (``minimum``, ``enum``, ``description``...);
``metadata.jobserver.description`` and ``version`` describe the script (else the first
line of the first Markdown cell). Describing a notebook reads it; nothing runs.

Data: ``metadata.jobserver.data`` lists the bindings it accepts (``["datafile",
"raw_data", "mongodb"]``; ``data_required: true`` when it needs one). The injected cell
then sets ``data_path``: the datafile's path, or a ``data.json`` holding a document's or
the inline data's JSON, as a file script gets it.

Running one (in a worker): the values are injected in a cell after the parameters cell;
the kernel is the one the notebook's metadata names; each cell's output goes to the
job's stdout and stderr as the kernel produces it; progress is "cell i of n"; a cell
that raises fails the job with that cell's number and error. The job's result is the
value of the variable ``result`` at the end (another name with
``metadata.jobserver.result``), or ``None`` when there is none. The executed notebook,
with every output, is kept as the job file ``<name>.ipynb``, failed or not. Cancel and
timeout end the worker's process tree, the kernel and what it started with it.

On an executor that shares no disk with the server (Dask), the notebook's text travels
with the task (:meth:`NotebookProcess.portable`), and the executed notebook comes back
as a job file like any other.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pathlib
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from ..runtime.checksums import sha256_file
from .base import Process

#: the cell tag that marks the parameters cell
PARAMETERS_TAG = "parameters"
#: the key of a task's spec that carries the notebook's text, when it travels with it
CONTENT = "content"
#: the variable that holds the path of the job's data, in the injected cell
DATA_VARIABLE = "data_path"
#: JSON Schema type of a literal default
_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}


class NotebookError(ValueError):
    """A notebook that cannot be offered as a script, and why."""


def describe_notebook(name: str, path: str) -> dict[str, Any]:
    """The registry's description of a notebook script (read, never run)."""
    try:
        with open(path, encoding="utf-8") as f:
            notebook = json.load(f)
    except (OSError, ValueError) as exc:
        raise NotebookError(f"{path} cannot be read as a notebook: {exc}") from None
    meta = notebook.get("metadata") or {}
    own = meta.get("jobserver") or {}
    cells = notebook.get("cells") or []
    index, parameters, order = _parameters(cells, path)
    details = own.get("parameters") or {}
    unknown = sorted(set(details) - set(parameters))
    if unknown:
        raise NotebookError(
            f"{path}: metadata.jobserver.parameters describes {', '.join(unknown)}, which "
            "the parameters cell does not assign"
        )
    properties = {
        key: {"title": key.replace("_", " ").capitalize(), **prop, **details.get(key, {})}
        for key, prop in parameters.items()
    }
    kernel = (meta.get("kernelspec") or {}).get("name") or "python3"
    data = [str(kind) for kind in own.get("data") or []]
    data_parameter = None
    if data:
        data_parameter = {
            "parameter": None,
            "kind": "file",
            "accepts": data,
            "required": bool(own.get("data_required")),
        }
    return {
        "name": name,
        "process": "notebook",
        "description": own.get("description") or _first_markdown_line(cells),
        "version": own.get("version"),
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": [],
            "additionalProperties": False,
            "x-positional": order,
        },
        "data": data,
        "data_parameter": data_parameter,
        "cores": int(own.get("cores") or 1),
        "file": {
            "notebook": os.path.abspath(path),
            "kernel": kernel,
            "parameters_cell": index,
            "result": own.get("result") or "result",
            "version": own.get("version"),
        },
    }


def _parameters(cells: list[dict], path: str) -> tuple[int | None, dict[str, Any], list[str]]:
    """The parameters cell's index and its assignments as JSON Schema properties."""
    for index, cell in enumerate(cells):
        tags = (cell.get("metadata") or {}).get("tags") or []
        if cell.get("cell_type") != "code" or PARAMETERS_TAG not in tags:
            continue
        source = _source(cell)
        try:
            tree = ast.parse(source)
        except SyntaxError as exc:
            raise NotebookError(f"{path}: the parameters cell is not Python: {exc}") from None
        lines = source.splitlines()
        found: dict[str, Any] = {}
        for node in tree.body:
            if not (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                continue
            key = node.targets[0].id
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                raise NotebookError(
                    f"{path}: parameter {key!r} must be a literal (a number, text, a list...)"
                ) from None
            prop: dict[str, Any] = {"default": value}
            if type(value) in _TYPES:
                prop["type"] = _TYPES[type(value)]
            elif isinstance(value, dict):
                prop["type"] = "object"
            comment = lines[node.lineno - 1].partition("#")[2].strip()
            if comment:
                prop["description"] = comment
            found[key] = prop
        return index, found, list(found)
    return None, {}, []


def _source(cell: Mapping[str, Any]) -> str:
    source = cell.get("source") or ""
    return "".join(source) if isinstance(source, list) else str(source)


def _first_markdown_line(cells: list[dict]) -> str:
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in _source(cell).splitlines():
                if line.strip():
                    return line.strip().lstrip("#").strip()
    return ""


def notebook_paths(
    configured: Mapping[str, Any],
    folders: Iterable[str],
    base: str,
    entry_points: Iterable[tuple[str, str]] = (),
) -> dict[str, str]:
    """``name -> path`` of every notebook offered: entry points first, then the script
    folders, then configuration (later ones override earlier ones by name)."""
    found: dict[str, str] = {}
    for name, value in entry_points:
        found[name] = _packaged(value)
    for folder in folders:
        for path in sorted(pathlib.Path(base, folder).glob("*.ipynb")):
            found[path.stem] = str(path)
    for name, spec in configured.items():
        if isinstance(spec, Mapping) and "notebook" in spec:
            found[name] = os.path.join(base, str(spec["notebook"]))
    return found


def _packaged(value: str) -> str:
    """The path of ``package.folder:file.ipynb`` inside an installed package, found
    without importing the package (that would run its code in the server)."""
    import importlib.util

    package, _, file = value.partition(":")
    top, *folders = package.split(".")
    spec = importlib.util.find_spec(top)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise NotebookError(f"no installed package {top!r} holds {value}")
    return os.path.join(locations[0], *folders, file)


def is_notebook_reference(value: Any) -> bool:
    """Does a configured or entry-point script name a notebook (not a function)?"""
    if isinstance(value, Mapping):
        return "notebook" in value
    return isinstance(value, str) and value.endswith(".ipynb")


class NotebookProcess(Process):
    """The ``notebook`` process: see the module docstring."""

    name = "notebook"

    def spec(self, script: Any) -> dict[str, Any]:
        return dict(script.file or {})

    def portable(self, spec: dict[str, Any]) -> dict[str, Any]:
        with open(spec["notebook"], "rb") as f:
            return {**spec, CONTENT: f.read().decode("utf-8")}

    def provenance(self, task: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
        spec = task["spec"]
        if CONTENT in spec:  # the notebook came with the task: this is what runs
            return {
                "version": spec.get("version"),
                "code_sha256": hashlib.sha256(spec[CONTENT].encode("utf-8")).hexdigest(),
                "kernel": spec.get("kernel"),
            }
        stat = os.stat(spec["notebook"])
        key = f"{spec['notebook']}:{stat.st_mtime_ns}:{stat.st_size}"
        if key not in cache:
            cache[key] = {
                "version": spec.get("version"),
                "code_sha256": sha256_file(spec["notebook"]),
                "kernel": spec.get("kernel"),
            }
        return cache[key]

    def spare_processes(self) -> frozenset[int]:
        runtime = sys.modules.get("jupyter_jobserver.runtime.notebook")
        return runtime.spare_processes() if runtime is not None else frozenset()

    def run(self, task: dict[str, Any], done: dict[str, Any]) -> Any:
        from ..runtime.notebook import run_notebook
        from .file import data_path

        values = dict(task.get("parameters") or {})
        values.update(task.get("kwargs") or {})
        done.setdefault("provenance", {})["parameters"] = dict(values)
        path = data_path(task)
        if path is not None:
            values[DATA_VARIABLE] = path
        return run_notebook(task["spec"], values, task["job_dir"])
