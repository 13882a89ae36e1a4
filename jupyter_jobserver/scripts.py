"""The script registry: which algorithms this server offers, and how to call them.

Function scripts come from three places, later ones overriding earlier ones by name:

1. the entry-point group ``jupyter_jobserver.scripts`` of installed packages (this package
   registers its examples there), as ``name = "module:function"``;
2. ``ScriptRegistry.scripts`` in configuration, ``{"name": "module:function"}``;
3. file scripts: specs in ``ScriptRegistry.scripts`` or ``<name>.json`` files in
   ``ScriptRegistry.script_dirs`` (see :mod:`jupyter_jobserver.processes.file`);
4. notebooks: ``{"notebook": path}`` in ``ScriptRegistry.scripts``, ``<name>.ipynb`` in
   ``ScriptRegistry.script_dirs``, or an entry point naming a packaged ``.ipynb`` (see
   :mod:`jupyter_jobserver.processes.notebook`).

Describing a function script means importing it, so the registry asks a worker process
to do it: the server never runs a script's code, not even its imports.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fnmatch
import os
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from traitlets import Bool, Dict, List, Unicode
from traitlets.config import LoggingConfigurable

from .errors import NotFound
from .parameters import ParameterSchema
from .processes import get_process
from .processes.file import FileScript, discover
from .processes.notebook import describe_notebook, is_notebook_reference, notebook_paths

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
        bound = self._schema.bind(args, kwargs)
        return get_process(self.process).bind(self, args, kwargs, bound)

    @property
    def spec(self) -> dict[str, Any]:
        """What a worker needs to run it; never sent to clients."""
        return get_process(self.process).spec(self)

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


def notebook_scripts(
    configured: Mapping[str, Any],
    folders: Iterable[str],
    base: str,
    *,
    entry_points: bool = True,
    exclude: Iterable[str] = (),
) -> tuple[dict[str, Any], dict[str, str]]:
    """Describe the notebook scripts (here, in the server: a notebook is read, nothing
    runs). Returns descriptions and the broken ones."""
    packaged: list[tuple[str, str]] = []
    if entry_points:
        packaged = [
            (ep.name, ep.value)
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)
            if is_notebook_reference(ep.value)
        ]
    descriptions: dict[str, Any] = {}
    broken: dict[str, str] = {}
    try:
        paths = notebook_paths(configured, folders, base, packaged)
    except ValueError as exc:
        return {}, {"notebooks": str(exc)}
    patterns = list(exclude)
    for name, path in paths.items():
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        try:
            descriptions[name] = describe_notebook(name, path)
        except ValueError as exc:
            broken[name] = str(exc)
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
            if not is_notebook_reference(ep.value):
                found[ep.name] = (ep.value, source)
    for name, spec in configured.items():
        if is_notebook_reference(spec):
            continue
        if isinstance(spec, str):
            found[name] = (spec, "configuration")
        elif isinstance(spec, Mapping) and "function" in spec:
            found[name] = (str(spec["function"]), "configuration")
        elif not (isinstance(spec, Mapping) and "file" in spec):
            raise ValueError(
                f"ScriptRegistry.scripts[{name!r}] must be 'module:function', "
                "{'function': 'module:function'}, a file script spec {'file': ...} or a "
                "notebook {'notebook': 'path.ipynb'}"
            )
    patterns = list(exclude)
    return {
        name: ref
        for name, ref in found.items()
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns)
    }


class ScriptRegistry(LoggingConfigurable):
    """The scripts this server offers; filled once the workers have described them."""

    scripts = Dict(
        help=(
            "Scripts to offer, by name: 'package.module:function' for a Python function, or "
            "a file script spec {'file': 'path', 'parameters': {...}, ...} (a relative path "
            "is relative to the Jupyter root). They add to (and override) those registered "
            "by installed packages."
        ),
    ).tag(config=True)

    script_dirs = List(
        Unicode(),
        help="Folders of file scripts: each '<name>.json' spec with its executable beside it "
        "is offered as script <name> (a relative folder is relative to the Jupyter root).",
    ).tag(config=True)

    entry_point_scripts = Bool(
        True,
        help="Offer the scripts that installed packages register (entry-point group "
        "jupyter_jobserver.scripts), including this package's examples.",
    ).tag(config=True)

    exclude_scripts = List(
        Unicode(),
        help="Names (or glob patterns) of scripts not to offer.",
    ).tag(config=True)

    preload_scripts = Bool(
        True,
        help="Import every function script's module when a worker starts, so even the "
        "first job of a script starts in milliseconds.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._scripts: dict[str, Script] = {}
        self.unavailable: dict[str, str] = {}
        self._ready = asyncio.Event()

    def references(self) -> dict[str, tuple[str, str]]:
        """``name -> (reference, source)`` of the function scripts, without importing any
        (a ``ValueError`` names a configured script that is neither kind)."""
        return function_references(
            self.scripts, entry_points=self.entry_point_scripts, exclude=self.exclude_scripts
        )

    def modules(self) -> list[str]:
        """The modules of the function scripts, for workers to import ahead of time."""
        if not self.preload_scripts:
            return []
        return sorted({ref.partition(":")[0] for ref, _ in self.references().values()})

    async def load(self, describe: Any, root_dir: str) -> None:
        """Describe every script and offer those that can run: file scripts from their
        specs (here), function scripts through ``describe`` (in a worker)."""
        found = self.references()
        references = {name: ref for name, (ref, _) in found.items()}
        sources = {name: source for name, (_, source) in found.items()}
        files, broken = await asyncio.to_thread(
            file_scripts, self.scripts, self.script_dirs, root_dir, self.exclude_scripts
        )
        notebooks, unreadable = await asyncio.to_thread(
            notebook_scripts,
            self.scripts,
            self.script_dirs,
            root_dir,
            entry_points=self.entry_point_scripts,
            exclude=self.exclude_scripts,
        )
        files = {**files, **notebooks}
        broken = {**broken, **unreadable}
        try:
            descriptions = await describe(references)
        except Exception as exc:
            self.fail(str(exc), references, files, sources, broken)
        else:
            self.fill({**descriptions, **files}, sources, broken)

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
