"""Check a job's ``args`` and ``kwargs`` against its script's parameter schema.

Validation happens when a job is created, so a bad value is a 400 that names the
parameter, not a failed job minutes later. The schema is the one the script describes
(see :mod:`jupyter_jobserver.runtime.introspect`); positional ``args`` fill, in order, the
parameters listed in its ``x-positional``.
"""

from __future__ import annotations

import math
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from .errors import InvalidRequest

_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


class ParameterSchema:
    """A compiled parameter schema that binds and checks a job's arguments."""

    def __init__(self, script: str, schema: dict[str, Any]) -> None:
        self.script = script
        self.schema = schema
        self.positional: list[str] = list(schema.get("x-positional", []))
        self.var_positional = bool(schema.get("x-var-positional"))
        self._validator = Draft202012Validator(schema)
        self._any_required = bool(schema.get("required"))

    def bind(self, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Check the arguments; return every parameter's value, defaults included.

        Integral floats given for integer parameters are made ints in place (JSON does
        not tell ``3`` from ``3.0``; a script that asks for an int gets one).
        """
        if len(args) > len(self.positional) and not self.var_positional:
            names = ", ".join(self.positional) or "none"
            raise InvalidRequest(
                f"{self.script} takes at most {len(self.positional)} positional "
                f"argument(s) ({names}); {len(args)} given"
            )
        if not args and not kwargs and not self._any_required and not self.positional:
            return {}  # a script without parameters: nothing to check
        named = dict(zip(self.positional, args, strict=False))
        both = sorted(set(named) & set(kwargs))
        if both:
            raise InvalidRequest(f"parameter {both[0]!r} given both positionally and by name")
        values = {**named, **kwargs}
        problems = sorted(self._validator.iter_errors(values), key=_error_order)
        if problems:
            raise InvalidRequest("; ".join(dict.fromkeys(self._explain(e) for e in problems)))
        properties = self.schema.get("properties", {})
        for index, name in enumerate(self.positional[: len(args)]):
            args[index] = _as_int(properties.get(name, {}), args[index])
        for name in kwargs:
            kwargs[name] = _as_int(properties.get(name, {}), kwargs[name])
        bound = {name: prop["default"] for name, prop in properties.items() if "default" in prop}
        bound.update(zip(self.positional, args, strict=False))
        bound.update(kwargs)
        if len(args) > len(self.positional):
            bound["*args"] = args[len(self.positional) :]
        return bound

    def _explain(self, error: ValidationError) -> str:
        path: list[str] = [str(p) for p in error.absolute_path]
        if not path:
            if error.validator == "required":
                missing = [n for n in error.validator_value if n not in error.instance]
                return f"missing parameter {missing[0]!r}" if missing else error.message
            if error.validator == "additionalProperties":
                extra = sorted(set(error.instance) - set(self.schema.get("properties", {})))
                known = ", ".join(self.schema.get("properties", {})) or "no parameters"
                return f"unknown parameter {extra[0]!r}; {self.script} takes: {known}"
            return error.message
        where = f"parameter {path[0]!r}" + "".join(f"[{p}]" for p in path[1:])
        return f"{where}{_problem(error)}"


def value_problem(prop: dict[str, Any], value: Any) -> str | None:
    """What is wrong with one parameter's value for its schema ``prop``, in the words a
    refused job would get but without the parameter's name (a form shows it beside the
    field); ``None`` when nothing is."""
    errors = sorted(Draft202012Validator(prop).iter_errors(value), key=_error_order)
    if not errors:
        return None
    error = errors[0]
    where = "".join(f"item {p}" if i == 0 else f"[{p}]" for i, p in enumerate(error.absolute_path))
    return f"{where}{_problem(error)}".strip()


def type_words(types: list[Any]) -> str:
    """JSON Schema types as a person says them: ``"an integer or null"``."""
    return " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in types)


def _problem(error: ValidationError) -> str:
    """The part of a message after what it is about: ``" must be at least 1, not 0"``."""
    value = error.instance
    kind = error.validator
    if kind == "type":
        expected = error.validator_value
        expected = expected if isinstance(expected, list) else [expected]
        return f" must be {type_words(expected)}, not {_show(value)}"
    if kind in ("minimum", "exclusiveMinimum"):
        rel = "at least" if kind == "minimum" else "more than"
        return f" must be {rel} {error.validator_value}, not {_show(value)}"
    if kind in ("maximum", "exclusiveMaximum"):
        rel = "at most" if kind == "maximum" else "less than"
        return f" must be {rel} {error.validator_value}, not {_show(value)}"
    if kind == "enum":
        choices = ", ".join(_show(v) for v in error.validator_value)
        return f" must be one of {choices}, not {_show(value)}"
    if kind == "anyOf":
        return " does not fit any of the allowed forms"
    limit = error.validator_value
    if kind == "minLength":
        return f" needs at least {limit} characters"
    if kind == "maxLength":
        return f" takes at most {limit} characters"
    if kind == "minItems":
        return f" needs at least {limit} items"
    if kind == "maxItems":
        return f" takes at most {limit} items"
    if kind == "pattern":
        return f" must match {limit}"
    return f": {error.message}"


def _error_order(error: ValidationError) -> tuple[str, ...]:
    return tuple(str(p) for p in error.absolute_path)


def _as_int(schema: dict[str, Any], value: Any) -> Any:
    types = schema.get("type")
    wants_int = types == "integer" or (isinstance(types, list) and "integer" in types)
    if wants_int and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else _json_text(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_text(value: Any) -> str:
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
