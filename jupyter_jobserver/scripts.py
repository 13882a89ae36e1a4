"""The script registry: which algorithms this server offers, and how to call them.

Function scripts come from three places, later ones overriding earlier ones by name:

1. the entry-point group ``jupyter_jobserver.scripts`` of installed packages (this package
   registers its examples there), as ``name = "module:function"``;
2. ``JobServerApp.scripts`` in configuration, ``{"name": "module:function"}``;
3. file scripts: specs in ``JobServerApp.scripts`` or ``<name>.json`` files in
   ``JobServerApp.script_dirs`` (see :mod:`jupyter_jobserver.processes.file`).

Describing a function script means importing it, so the registry asks a worker process
to do it: the server never runs a script's code, not even its imports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import logging
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from .errors import InvalidRequest, NotFound
from .parameters import ParameterSchema
from .processes.file import FileScript, discover

ENTRY_POINT_GROUP = "jupyter_jobserver.scripts"


@dataclasses.dataclass
class Script:
    """A registered algorithm: how to offer it, check its parameters and run it."""

    name: str
    process: str
    description: str = ""
    version: str | None = None
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    data: list[str] = dataclasses.field(default_factory=list)
    data_parameter: dict[str, Any] | None = None
    cores: int = 1
    target: str | None = None
    file: dict[str, Any] | None = None
    source: str = "configuration"

    def __post_init__(self) -> None:
        self._schema = ParameterSchema(self.name, self.parameters)

    def bind(self, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Check a job's arguments (400 naming the parameter); return all values."""
        given = [*self._schema.positional[: len(args)], *kwargs]
        bound = self._schema.bind(args, kwargs)
        if self.file is not None and self.file.get("arguments") == "positional":
            # on a command line nothing has a place after a missing value: a value given
            # there is refused (not dropped), a default there is not passed, and the job
            # records only what the script gets
            order = list(self.file.get("order") or [])
            gap = next((name for name in order if name not in bound), None)
            if gap is not None:
                after = order[order.index(gap) + 1 :]
                lost = [name for name in after if name in given]
                if lost:
                    raise InvalidRequest(
                        f"parameter {lost[0]!r} cannot reach {self.name}: it takes its "
                        f"parameters in order on the command line, and {gap!r}, before it, "
                        f"has no value; give {gap!r} too"
                    )
                bound = {k: v for k, v in bound.items() if k not in after}
        return bound

    def model(self) -> dict[str, Any]:
        """The REST description; never where the code lives."""
        data_parameter = None
        if self.data_parameter:
            data_parameter = {
                "kind": self.data_parameter.get("kind"),
                "required": bool(self.data_parameter.get("required")),
            }
        return {
            "name": self.name,
            "process": self.process,
            "description": self.description,
            "version": self.version,
            "parameters": self.parameters,
            "data": list(self.data),
            "data_parameter": data_parameter,
            "cores": self.cores,
        }


def file_scripts(
    configured: Mapping[str, Any], folders: Iterable[str], base: str, exclude: Iterable[str] = ()
) -> tuple[dict[str, Any], dict[str, str]]:
    """Describe the file scripts of the configuration and of ``folders`` (here, in the
    server: a spec is data, nothing runs). Returns descriptions and the broken ones."""
    found, broken = discover([os.path.join(base, folder) for folder in folders])
    for name, spec in configured.items():
        if isinstance(spec, Mapping) and "file" in spec:
            try:
                found[name] = FileScript.from_spec(spec, base)
            except (ValueError, TypeError) as exc:
                broken[name] = str(exc)
    patterns = list(exclude)
    descriptions = {
        name: script.describe(name)
        for name, script in found.items()
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }
    return descriptions, broken


def function_references(
    configured: Mapping[str, Any],
    *,
    entry_points: bool = True,
    exclude: Iterable[str] = (),
) -> dict[str, tuple[str, str]]:
    """Collect ``name -> (reference, source)`` for function scripts, without importing."""
    found: dict[str, tuple[str, str]] = {}
    if entry_points:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            source = f"entry point of {dist.name}" if dist is not None else "entry point"
            found[ep.name] = (ep.value, source)
    for name, spec in configured.items():
        if isinstance(spec, str):
            found[name] = (spec, "configuration")
        elif isinstance(spec, Mapping) and "function" in spec:
            found[name] = (str(spec["function"]), "configuration")
        elif not (isinstance(spec, Mapping) and "file" in spec):
            raise ValueError(
                f"JobServerApp.scripts[{name!r}] must be 'module:function', "
                "{'function': 'module:function'} or a file script spec {'file': ...}"
            )
    patterns = list(exclude)
    return {
        name: ref
        for name, ref in found.items()
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }


class ScriptRegistry:
    """The scripts this server offers; filled once the workers have described them."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger(__name__)
        self._scripts: dict[str, Script] = {}
        self.unavailable: dict[str, str] = {}
        self._ready = asyncio.Event()

    async def ready(self) -> None:
        """Wait until the registry has been filled."""
        await self._ready.wait()

    def fill(
        self,
        descriptions: Mapping[str, Any],
        sources: Mapping[str, str],
        broken: Mapping[str, str] | None = None,
    ) -> None:
        """Take the scripts' descriptions (from a worker, or read from file specs)."""
        scripts: dict[str, Script] = {}
        unavailable = dict(broken or {})
        for name, desc in descriptions.items():
            if "error" in desc:
                unavailable[name] = desc["error"]
                continue
            scripts[name] = Script(
                name=name,
                process=desc["process"],
                description=desc.get("description") or "",
                version=desc.get("version"),
                parameters=desc["parameters"],
                data=list(desc.get("data") or []),
                data_parameter=desc.get("data_parameter"),
                cores=int(desc.get("cores") or 1),
                target=desc.get("target"),
                file=desc.get("file"),
                source=sources.get(name, "configuration"),
            )
        for name, reason in unavailable.items():
            self.log.warning("jobserver: script %r is unavailable: %s", name, reason)
        self._scripts = dict(sorted(scripts.items()))
        self.unavailable = unavailable
        self._ready.set()

    def fail(
        self,
        reason: str,
        failed: Iterable[str],
        described: Mapping[str, Any],
        sources: Mapping[str, str],
        broken: Mapping[str, str] | None = None,
    ) -> None:
        """Describing the function scripts failed as a whole (no worker could do it):
        offer the scripts described without a worker, and say why the others are missing."""
        self.log.error("jobserver: could not describe the function scripts: %s", reason)
        missing = dict.fromkeys(failed, f"no worker could describe it: {reason}")
        self.fill(described, sources, {**(broken or {}), **missing})

    def get(self, name: str) -> Script:
        script = self._scripts.get(name)
        if script is None:
            if name in self.unavailable:
                raise NotFound(f"script {name!r} could not be loaded: {self.unavailable[name]}")
            known = ", ".join(self._scripts) or "none"
            raise NotFound(f"no script named {name!r}; available scripts: {known}")
        return script

    def all(self) -> list[Script]:
        return list(self._scripts.values())

    def check_cores(self, script: Script, available: int) -> None:
        if script.cores > available:
            raise InvalidRequest(
                f"{script.name} needs {script.cores} cores; this server runs at most "
                f"{available} at once"
            )
