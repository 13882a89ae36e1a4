"""Describe a Python function script: its parameter schema, data parameter and provenance.

This runs inside a worker process, never in the server: describing a script means
importing it, and importing is running the author's code.

The parameter schema is JSON Schema (draft 2020-12) derived from the signature:

* ``int``, ``float``, ``bool``, ``str`` become ``integer``, ``number``, ``boolean``,
  ``string``; ``list[X]``/``tuple``/``set`` an ``array``; ``dict[str, X]`` an ``object``;
  ``Literal[...]`` and ``enum.Enum`` subclasses an ``enum``; ``Optional[X]`` also admits
  ``null``; ``datetime``/``date`` a string with a ``format``.
* ``Annotated[X, Param(...)]`` adds bounds and help; a numpydoc or Google style docstring
  adds each parameter's ``description``.
* A parameter without annotation takes its type from its default, as ipywidgets'
  ``interact`` does; with neither, any JSON value.
* ``x-positional`` lists, in order, the parameters ``args`` may fill.

The first parameter receives the job's bound data when it is called ``data`` or is
annotated with a data type (``pathlib.Path``, ``pandas.DataFrame``, ``pandas.Series``,
``numpy.ndarray``); it is left out of the parameter schema.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import enum
import hashlib
import importlib
import inspect
import json
import pathlib
import platform
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from ..scripting import METADATA_ATTRIBUTE, Param
from .checksums import sha256_file

DATA_BINDINGS = ("datafile", "mongodb", "raw_data")

#: data kind of a first parameter, by the qualified name of its annotation
DATA_ANNOTATIONS = {
    "pathlib.Path": "path",
    "pathlib.PurePath": "path",
    "pathlib.PosixPath": "path",
    "os.PathLike": "path",
    "pandas.core.frame.DataFrame": "dataframe",
    "pandas.DataFrame": "dataframe",
    "pandas.core.series.Series": "series",
    "pandas.Series": "series",
    "numpy.ndarray": "ndarray",
}


def load_function(reference: str) -> Callable[..., Any]:
    """Import ``"package.module:function"`` (dots after the colon reach attributes)."""
    module_name, sep, attribute = reference.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"{reference!r} is not of the form 'module:function'")
    obj = _resolve(module_name, attribute)
    if not callable(obj):
        raise TypeError(f"{reference!r} is not callable")
    return obj


def _resolve(module_name: str, attribute: str) -> Any:
    """Import a module (hashing its file as it is first read) and reach an attribute."""
    fresh = module_name not in sys.modules
    obj: Any = importlib.import_module(module_name)
    if fresh:
        remember_source(obj)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def describe_reference(name: str, reference: str) -> dict[str, Any]:
    """Describe what an entry point or configuration names: a function, or a
    :class:`~jupyter_jobserver.processes.file.FileScript` a package defines."""
    from ..processes.file import FileScript

    module_name, _, attribute = reference.partition(":")
    obj = _resolve(module_name, attribute)
    if isinstance(obj, FileScript):
        obj.check()
        return obj.describe(name)
    return describe_function(name, reference)


def describe_function(name: str, reference: str) -> dict[str, Any]:
    """Everything the server needs to offer, validate and record a function script."""
    func = load_function(reference)
    meta = getattr(func, METADATA_ATTRIBUTE, None) or {}
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    summary, param_docs = parse_docstring(inspect.getdoc(func) or "")
    data = _data_parameter(signature, hints)
    parameters = parameters_schema(
        signature, hints, param_docs, skip=data["parameter"] if data else None
    )
    return {
        "name": name,
        "process": "function",
        "description": meta.get("description") or summary,
        "version": meta.get("version") or code_version(func),
        "parameters": parameters,
        "data": list(data["accepts"]) if data else [],
        "data_parameter": data,
        "cores": int(meta.get("cores") or 1),
        "target": reference,
    }


def function_provenance(reference: str) -> dict[str, Any]:
    """The code identity of a function script as this process has it loaded."""
    func = load_function(reference)
    meta = getattr(func, METADATA_ATTRIBUTE, None) or {}
    module = inspect.getmodule(func)
    return {
        "version": meta.get("version") or code_version(func),
        "code_sha256": code_hash(func),
        "packages": imported_packages(module) if module else {},
    }


def environment() -> dict[str, Any]:
    """Interpreter and platform of the process that runs a job."""
    from .._version import __version__

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "jupyter_jobserver": __version__,
    }


# --- parameters -----------------------------------------------------------------------


def parameters_schema(
    signature: inspect.Signature,
    hints: Mapping[str, Any],
    docs: Mapping[str, str],
    skip: str | None = None,
) -> dict[str, Any]:
    """JSON Schema of the keyword arguments a function takes (see the module docstring)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    positional: list[str] = []
    var_positional = False
    var_keyword = False
    for param in signature.parameters.values():
        if param.name == skip:
            continue
        if param.kind is param.VAR_POSITIONAL:
            var_positional = True
            continue
        if param.kind is param.VAR_KEYWORD:
            var_keyword = True
            continue
        annotation = hints.get(param.name, param.annotation)
        schema = annotation_schema(annotation, param.default)
        if param.name in docs and "description" not in schema:
            schema["description"] = docs[param.name]
        schema.setdefault("title", param.name.replace("_", " ").capitalize())
        if param.default is param.empty:
            required.append(param.name)
        elif _is_json(param.default):
            schema["default"] = _json_default(param.default)
        if param.kind is not param.KEYWORD_ONLY:
            positional.append(param.name)
        properties[param.name] = schema
    schema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": var_keyword,
        "x-positional": positional,
    }
    if var_positional:
        schema["x-var-positional"] = True
    return schema


def annotation_schema(annotation: Any, default: Any = inspect.Parameter.empty) -> dict[str, Any]:
    """JSON Schema for one annotation (``default`` stands in for a missing annotation)."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        if default is inspect.Parameter.empty or default is None:
            return {}
        return annotation_schema(type(default))
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        schema = annotation_schema(args[0], default)
        for extra in args[1:]:
            if isinstance(extra, Param):
                schema.update(extra.schema())
            elif isinstance(extra, str):
                schema.setdefault("description", extra)
        return schema
    if origin is typing.Union or (hasattr(types, "UnionType") and origin is types.UnionType):
        members = [a for a in args if a is not type(None)]
        nullable = len(members) != len(args)
        if len(members) == 1:
            inner = annotation_schema(members[0])
        else:
            inner = {"anyOf": [annotation_schema(m) for m in members]}
        if not nullable:
            return inner
        if "type" in inner and isinstance(inner["type"], str) and "enum" not in inner:
            return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin is typing.Literal:
        return _enum_schema(list(args))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum_schema([m.value for m in annotation])
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if annotation is str:
        return {"type": "string"}
    if annotation is _dt.datetime:
        return {"type": "string", "format": "date-time"}
    if annotation is _dt.date:
        return {"type": "string", "format": "date"}
    if isinstance(annotation, type) and issubclass(annotation, pathlib.PurePath):
        return {"type": "string"}
    container = origin or annotation
    if container in (list, tuple, set, frozenset, Sequence) or (
        isinstance(container, type) and issubclass(container, (list, tuple, set, frozenset))
    ):
        schema = {"type": "array"}
        if args and not (container is tuple and len(args) == 2 and args[1] is Ellipsis):
            if container is tuple:
                schema["prefixItems"] = [annotation_schema(a) for a in args]
                schema["minItems"] = schema["maxItems"] = len(args)
                schema["items"] = False
            else:
                schema["items"] = annotation_schema(args[0])
        elif args:
            schema["items"] = annotation_schema(args[0])
        return schema
    if container in (dict, Mapping) or (
        isinstance(container, type) and issubclass(container, dict)
    ):
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = annotation_schema(args[1])
        return schema
    return {"x-python-type": _qualified_name(annotation)}


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {"enum": values}
    kinds = {type(v) for v in values}
    if len(kinds) == 1:
        kind = kinds.pop()
        names = {bool: "boolean", int: "integer", float: "number", str: "string"}
        if kind in names:
            schema["type"] = names[kind]
    return schema


def _is_json(value: Any) -> bool:
    try:
        json.dumps(_json_default(value), allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _json_default(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, pathlib.PurePath):
        return str(value)
    return value


# --- data parameter -------------------------------------------------------------------


def _data_parameter(signature: inspect.Signature, hints: Mapping[str, Any]) -> dict | None:
    params = [
        p
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if not params:
        return None
    first = params[0]
    annotation = hints.get(first.name, first.annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    nullable = False
    if typing.get_origin(annotation) is typing.Union or (
        hasattr(types, "UnionType") and typing.get_origin(annotation) is types.UnionType
    ):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(members) < len(typing.get_args(annotation))
        annotation = members[0] if len(members) == 1 else annotation
    kind = _data_kind(annotation)
    if kind is None and first.name != "data":
        return None
    kind = kind or "any"
    accepts = ["datafile"] if kind == "path" else list(DATA_BINDINGS)
    return {
        "parameter": first.name,
        "kind": kind,
        "accepts": accepts,
        "required": first.default is first.empty and not nullable,
    }


def _data_kind(annotation: Any) -> str | None:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return None
    name = _qualified_name(annotation)
    if name in DATA_ANNOTATIONS:
        return DATA_ANNOTATIONS[name]
    if isinstance(annotation, type) and issubclass(annotation, pathlib.PurePath):
        return "path"
    if annotation in (dict, list) or typing.get_origin(annotation) in (dict, list):
        return "json"
    return None


def _qualified_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    return f"{module}.{qualname}" if module and qualname else repr(obj)


# --- docstrings -----------------------------------------------------------------------

_SECTION = re.compile(
    r"^(Parameters|Args|Arguments|Returns|Raises|Yields|Examples?|Notes?|See Also)\s*:?\s*$"
)
_NUMPY_PARAM = re.compile(r"^(\*{0,2}\w+)\s*(?::.*)?$")
_GOOGLE_PARAM = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Return the description (text before the first section) and parameter help.

    Understands numpydoc (``Parameters`` with an underline) and Google style (``Args:``).
    """
    lines = doc.expandtabs().splitlines()
    description: list[str] = []
    params: dict[str, str] = {}
    i = 0
    while i < len(lines) and not _SECTION.match(lines[i].strip()):
        description.append(lines[i])
        i += 1
    while i < len(lines):
        header = lines[i].strip()
        match = _SECTION.match(header)
        i += 1
        if not match:
            continue
        if i < len(lines) and set(lines[i].strip()) == {"-"}:
            i += 1  # numpydoc underline
        if match.group(1) not in ("Parameters", "Args", "Arguments"):
            continue
        current: str | None = None
        base_indent: int | None = None
        while i < len(lines) and not _SECTION.match(lines[i].strip()):
            line = lines[i]
            i += 1
            if not line.strip():
                continue
            indent = len(line) - len(line.lstrip())
            if base_indent is None:
                base_indent = indent
            text = line.strip()
            if indent <= base_indent:
                google = _GOOGLE_PARAM.match(text)
                numpy = _NUMPY_PARAM.match(text)
                if google and header.rstrip(":") in ("Args", "Arguments"):
                    current = google.group(1).lstrip("*")
                    params[current] = google.group(2).strip()
                elif numpy:
                    current = numpy.group(1).lstrip("*")
                    params[current] = ""
                else:
                    current = None
            elif current is not None:
                params[current] = (params[current] + " " + text).strip()
    return "\n".join(description).strip(), params


# --- provenance -----------------------------------------------------------------------


#: sha256 of each script module's source file as it was when this process imported it
_SOURCE_HASHES: dict[str, str] = {}


def remember_source(module: Any) -> None:
    """Hash a module's file as it is imported: the code that runs is what was read then,
    whatever happens to the file afterwards."""
    with contextlib.suppress(OSError, TypeError):
        path = inspect.getsourcefile(module)
        if path:
            _SOURCE_HASHES[module.__name__] = sha256_file(path)


def code_hash(func: Callable[..., Any]) -> str:
    """sha256 of the source file that defines ``func`` (its module) as it was imported,
    so a change to a helper in the same file changes the hash too."""
    module = inspect.getmodule(func)
    if module is not None:
        if module.__name__ not in _SOURCE_HASHES:  # imported before any job: hash it now
            remember_source(module)
        if module.__name__ in _SOURCE_HASHES:
            return _SOURCE_HASHES[module.__name__]
    try:
        return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()
    except (OSError, TypeError):
        code = getattr(func, "__code__", None)
        raw = code.co_code if code is not None else repr(func).encode()
        return hashlib.sha256(raw).hexdigest()


def code_version(func: Callable[..., Any]) -> str | None:
    """The version of the code: the module's ``__version__`` or its distribution's."""
    module = inspect.getmodule(func)
    if module is None:
        return None
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    top = module.__name__.split(".")[0]
    top_module = sys.modules.get(top)
    version = getattr(top_module, "__version__", None)
    if isinstance(version, str):
        return version
    dists = _distributions().get(top)
    return _dist_version(dists[0]) if dists else None


def imported_packages(module: types.ModuleType) -> dict[str, str]:
    """Versions of the distributions whose modules the script's module uses."""
    names = {module.__name__.split(".")[0]}
    for value in vars(module).values():
        if isinstance(value, types.ModuleType):
            names.add(value.__name__.split(".")[0])
        else:
            owner = getattr(value, "__module__", None)
            if isinstance(owner, str):
                names.add(owner.split(".")[0])
    packages: dict[str, str] = {}
    mapping = _distributions()
    for name in sorted(names):
        for dist in mapping.get(name, ()):
            version = _dist_version(dist)
            if version:
                packages[dist] = version
    return packages


def warm_provenance() -> None:
    """Index installed distributions ahead of the first job (it takes a moment)."""
    _distributions()


@lru_cache(maxsize=1)
def _distributions() -> Mapping[str, list[str]]:
    from importlib import metadata

    return metadata.packages_distributions()


@lru_cache(maxsize=256)
def _dist_version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None
