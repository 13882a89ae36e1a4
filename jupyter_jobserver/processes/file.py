"""File scripts: executables in any language, run as child processes.

A file script is registered with a small spec that gives it the same parameter schema,
validation and forms as a function::

    {
      "file": "count.sh",
      "description": "Count the lines of a datafile.",
      "version": "1.0",
      "arguments": "options",
      "parameters": {
        "pattern": {"type": "string", "description": "Only count lines with this text"},
        "limit": {"type": "integer", "minimum": 1, "default": 10}
      },
      "data": ["datafile"]
    }

in ``ScriptRegistry.scripts`` (by name), as ``count.json`` beside ``count.sh`` in one of
``ScriptRegistry.script_dirs``, or as a :class:`FileScript` an installed package registers
under the ``jupyter_jobserver.scripts`` entry points.

How a job reaches the process:

* **parameters**, every one with a value (defaults included), by ``arguments``:
  ``"options"`` gives ``--name value`` for each (``--flag`` alone for a true boolean,
  nothing for false or null, the option repeated for each item of a list);
  ``"positional"`` gives the values in the order of ``parameters`` (up to the first one
  without a value); ``"json"`` writes them to ``parameters.json`` and passes its path.
  Objects (and lists, positionally) travel as JSON text.
* **data**, as a path: the datafile itself, or ``data.json`` holding a document's or the
  inline data's JSON. It comes first on the command line and in
  ``JUPYTER_JOBSERVER_DATA``.
* the working directory is the job's own folder; ``JUPYTER_JOBSERVER_JOB_ID``,
  ``JUPYTER_JOBSERVER_CORES`` and ``JUPYTER_JOBSERVER_RESULT`` are set.
* **progress**: a line ``<fraction> <message>`` (``- <message>`` for a message alone)
  written to the file descriptor in ``JUPYTER_JOBSERVER_PROGRESS_FD``
  (``echo "0.5 halfway" >&$JUPYTER_JOBSERVER_PROGRESS_FD``).
* **result**: the JSON the script writes to ``$JUPYTER_JOBSERVER_RESULT``, if any.
* stdout and stderr are the job's output, written as they come; the exit code is kept, and
  a non-zero one fails the job with the end of stderr as its error. Writing to stderr
  alone does not fail a job. Processes the script leaves behind are ended with it.

This module is imported by workers and stays import-light.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

from ..context import ENV_CORES, ENV_JOB_ID, ENV_PROGRESS_FD, progress
from ..errors import InvalidRequest
from ..runtime import output
from ..runtime.checksums import sha256_file
from ..runtime.failure import ReportedFailure
from ..runtime.proctree import kill_descendants
from ..vocabulary import BINDING_KINDS
from .base import Process

ENV_DATA = "JUPYTER_JOBSERVER_DATA"
ENV_RESULT = "JUPYTER_JOBSERVER_RESULT"
ARGUMENT_STYLES = ("options", "positional", "json")
#: interpreters by extension (a .py file runs with the worker's own Python)
INTERPRETERS = {".py": [sys.executable], ".sh": ["bash"], ".bash": ["bash"], ".r": ["Rscript"]}
STDERR_TAIL = 4000


@dataclasses.dataclass
class FileScript:
    """An executable offered as a script; see the module docstring for the fields."""

    file: str
    description: str = ""
    version: str | None = None
    arguments: str = "options"
    parameters: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    required: list[str] | None = None
    data: list[str] = dataclasses.field(default_factory=list)
    data_required: bool = False
    cores: int = 1
    command: list[str] | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], base: str | os.PathLike[str] = ".") -> FileScript:
        """Build from a JSON spec; ``file`` is relative to ``base``. A ``ValueError`` says
        what is wrong with the spec."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"unknown field(s) in the spec: {', '.join(unknown)}")
        if "file" not in spec:
            raise ValueError("the spec names no 'file'")
        values = dict(spec)
        values["file"] = str((pathlib.Path(base) / str(spec["file"])).resolve())
        script = cls(**values)
        script.check()
        return script

    def check(self) -> None:
        if self.arguments not in ARGUMENT_STYLES:
            raise ValueError(f"arguments must be one of {', '.join(ARGUMENT_STYLES)}")
        if not isinstance(self.parameters, dict) or not all(
            isinstance(v, dict) for v in self.parameters.values()
        ):
            raise ValueError("parameters must map each name to a JSON Schema")
        unknown = set(self.data) - set(BINDING_KINDS)
        if unknown:
            raise ValueError(f"unknown data binding(s): {', '.join(sorted(unknown))}")
        if self.cores < 1:
            raise ValueError("cores must be at least 1")
        path = pathlib.Path(self.file)
        if not path.is_file():
            raise ValueError(f"{self.file} does not exist")
        runnable = os.access(path, os.X_OK) or path.suffix.lower() in INTERPRETERS
        if self.command is None and not runnable:
            raise ValueError(f"{path.name} is not executable and no 'command' says how to run it")

    def schema(self) -> dict[str, Any]:
        required = (
            list(self.required)
            if self.required is not None
            else [name for name, prop in self.parameters.items() if "default" not in prop]
        )
        properties = {
            name: {"title": name.replace("_", " ").capitalize(), **prop}
            for name, prop in self.parameters.items()
        }
        return {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
            "x-positional": list(self.parameters),
        }

    def describe(self, name: str) -> dict[str, Any]:
        """The registry's description (as for a function script)."""
        data_parameter = None
        if self.data:
            data_parameter = {
                "parameter": None,
                "kind": "file",
                "accepts": list(self.data),
                "required": self.data_required,
            }
        return {
            "name": name,
            "process": "file",
            "description": self.description,
            "version": self.version,
            "parameters": self.schema(),
            "data": list(self.data),
            "data_parameter": data_parameter,
            "cores": self.cores,
            "file": self.run_spec(),
        }

    def run_spec(self) -> dict[str, Any]:
        """What a worker needs to run it (not sent to clients)."""
        return {
            "file": self.file,
            "command": self.command,
            "arguments": self.arguments,
            "order": list(self.parameters),
            "env": dict(self.env),
            "version": self.version,
        }


def discover(folders: list[str]) -> tuple[dict[str, FileScript], dict[str, str]]:
    """File scripts found as ``<name>.json`` specs in ``folders``; and the ones whose spec
    is wrong, with why."""
    found: dict[str, FileScript] = {}
    broken: dict[str, str] = {}
    for folder in folders:
        for spec_path in sorted(pathlib.Path(folder).glob("*.json")):
            name = spec_path.stem
            try:
                spec = json.loads(spec_path.read_text(encoding="utf-8"))
                if "file" not in spec:  # the executable beside the spec, any extension
                    siblings = [p for p in spec_path.parent.glob(f"{name}.*") if p != spec_path]
                    if len(siblings) != 1:
                        raise ValueError("name its 'file' (none or several files share its name)")
                    spec = {**spec, "file": siblings[0].name}
                found[name] = FileScript.from_spec(spec, spec_path.parent)
            except (OSError, ValueError, TypeError) as exc:
                broken[name] = f"{spec_path}: {exc}"
    return found, broken


class FileProcess(Process):
    """The ``file`` process: see the module docstring."""

    name = "file"
    data_as_path = True
    own_files = frozenset({"parameters.json"})

    def bind(
        self,
        script: Any,
        args: list[Any],
        kwargs: dict[str, Any],
        bound: dict[str, Any],
    ) -> dict[str, Any]:
        """On a command line nothing has a place after a missing value: with positional
        arguments, a value given there is refused (not dropped), a default there is not
        passed, and the job records only what the script gets."""
        spec = script.file or {}
        if spec.get("arguments") != "positional":
            return bound
        given = [*script.parameters.get("x-positional", [])[: len(args)], *kwargs]
        order = list(spec.get("order") or [])
        gap = next((name for name in order if name not in bound), None)
        if gap is None:
            return bound
        after = order[order.index(gap) + 1 :]
        lost = [name for name in after if name in given]
        if lost:
            raise InvalidRequest(
                f"parameter {lost[0]!r} cannot reach {script.name}: it takes its "
                f"parameters in order on the command line, and {gap!r}, before it, "
                f"has no value; give {gap!r} too"
            )
        return {k: v for k, v in bound.items() if k not in after}

    def spec(self, script: Any) -> dict[str, Any]:
        return dict(script.file or {})

    def provenance(self, task: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
        spec = task["spec"]
        stat = os.stat(spec["file"])
        key = f"{spec['file']}:{stat.st_mtime_ns}:{stat.st_size}"
        if key not in cache:
            cache[key] = {"version": spec.get("version"), "code_sha256": sha256_file(spec["file"])}
        return cache[key]

    def run(self, task: dict[str, Any], done: dict[str, Any]) -> Any:
        try:
            done["exit_code"], result = run_file(task, data_path(task))
        except ScriptFailed as exc:
            done["exit_code"] = exc.code
            raise
        return result


def data_path(task: Mapping[str, Any]) -> str | None:
    """A file script reads its data from a file: the datafile, or the data as JSON in
    ``data.json`` of the job's folder."""
    binding = task.get("data")
    if binding is None:
        return None
    if binding["type"] == "datafile":
        return binding["path"]
    if binding.get("file"):
        return binding["file"]
    path = os.path.join(task["job_dir"], "data.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(binding.get("data"), f)
    return path


# --- running (in a worker) ---------------------------------------------------------------


class ScriptFailed(ReportedFailure):
    """A file script exited with a non-zero code, was killed by a signal, or left a
    result that is not JSON."""

    def __init__(self, code: int, tail: str, message: str | None = None) -> None:
        if message is None and code < 0:
            try:
                message = f"the script was killed by {signal.Signals(-code).name}"
            except ValueError:
                message = f"the script was killed by signal {-code}"
        super().__init__(message or f"the script exited with code {code}", tail)
        self.code = code


def command_line(
    spec: Mapping[str, Any], values: Mapping[str, Any], data: str | None, job_dir: str
) -> list[str]:
    """The argv for a job, from every parameter's value, defaults included (see the module
    docstring)."""
    path = spec["file"]
    if spec.get("command"):
        argv = [part.replace("{file}", path) for part in spec["command"]]
        if not any("{file}" in part for part in spec["command"]):
            argv.append(path)
    elif pathlib.Path(path).suffix.lower() in INTERPRETERS:
        argv = [*INTERPRETERS[pathlib.Path(path).suffix.lower()], path]
    else:
        argv = [path]
    if data is not None:
        argv.append(data)
    order = list(spec.get("order") or [])
    values = {name: values[name] for name in [*order, *values] if name in values}
    style = spec.get("arguments", "options")
    if style == "json":
        parameters = os.path.join(job_dir, "parameters.json")
        with open(parameters, "w", encoding="utf-8") as f:
            json.dump({**values, **({"data": data} if data else {})}, f)
        argv.append(parameters)
    elif style == "positional":
        for name in spec.get("order") or []:
            if name not in values:
                break  # the ones after an unset parameter have no place to go
            argv.append(_text(values[name]))
    else:
        for name, value in values.items():
            option = f"--{name}"
            if value is None or value is False:
                continue
            if value is True:
                argv.append(option)
            elif isinstance(value, list):
                for item in value:
                    argv += [option, _text(item)]
            else:
                argv += [option, _text(value)]
    return argv


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)


def run_file(task: Mapping[str, Any], data: str | None) -> tuple[int, Any]:
    """Run a file script to its end: (exit code, result). Raises :class:`ScriptFailed`."""
    spec = task["spec"]
    job_dir = task["job_dir"]
    result_path = os.path.join(job_dir, "result.json")
    argv = command_line(spec, task.get("parameters") or {}, data, job_dir)
    if shutil.which(argv[0]) is None and not os.path.exists(argv[0]):
        raise FileNotFoundError(f"cannot run {argv[0]!r}: no such program")
    progress_read, progress_write = os.pipe()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",  # a Python script's prints show as they happen
        **(spec.get("env") or {}),
        ENV_JOB_ID: task["job_id"],
        ENV_CORES: str(task.get("cores", 1)),
        ENV_PROGRESS_FD: str(progress_write),
        ENV_RESULT: result_path,
    }
    if data is not None:
        env[ENV_DATA] = data
    try:
        proc = subprocess.Popen(
            argv,
            cwd=job_dir,
            stdin=subprocess.DEVNULL,
            env=env,
            pass_fds=(progress_write,),
            start_new_session=True,  # its own process group: what it leaves behind ends with it
        )
    finally:
        os.close(progress_write)
    reader = threading.Thread(target=_read_progress, args=(progress_read,), daemon=True)
    reader.start()
    code = proc.wait()
    # what the script left behind ends with it, even processes in sessions of their own
    # (the worker adopts orphans, so they are still its descendants)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    kill_descendants(os.getpid())
    reader.join(timeout=5)
    if code != 0:
        output.place()  # the job's stderr is read back by its name
        raise ScriptFailed(code, _tail(os.path.join(job_dir, "stderr")))
    result = None
    if os.path.exists(result_path):
        try:
            with open(result_path, encoding="utf-8") as f:
                result = json.load(f)
        except ValueError as exc:
            raise ScriptFailed(
                code,
                "",
                f"the script exited with code 0, but what it wrote to ${ENV_RESULT} is not "
                f"JSON ({exc})",
            ) from None
    return code, result


def _read_progress(fd: int) -> None:
    """Pass a script's progress lines on as the job's progress, folded like a function's
    reports (a script in any language may write them as fast as it likes)."""
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as lines:
        for line in lines:
            fraction_text, _, message = line.strip().partition(" ")
            try:
                # "- message": a message alone
                fraction = None if fraction_text in ("", "-") else float(fraction_text)
            except ValueError:
                fraction, message = None, line.strip()
            progress(fraction, message or None)


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - STDERR_TAIL))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""
