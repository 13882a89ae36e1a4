"""The job filter language: a documented subset of MongoDB's query operators.

``POST jobs/query`` takes a filter such as::

    {"status": {"$in": ["failed", "cancelled"]},
     "created": {"$gte": "2026-11-01"},
     "$or": [{"tags": "nightly"}, {"script": "summary"}]}

Fields: ``id``, ``script``, ``process``, ``status``, ``owner``, ``public``, ``tags``,
``created``, ``edited``, ``queued``, ``started``, ``finished``, ``time_sec``,
``exit_code``.

Operators: ``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$in``, ``$nin``,
``$exists``, ``$not`` on a field; ``$and``, ``$or``, ``$nor`` to combine; ``$all`` on
``tags``. A plain value means ``$eq``. ``tags`` matches when any tag matches (``$ne``
and ``$nin`` when none does). A field that is not set equals ``null``; ``$exists: true``
means "is set". Times are ISO 8601 strings and compare as instants (``"2026-11-01"``
means midnight UTC).

Anything else is refused with a message that names the offending part. A parsed filter
is a small tree that each store translates: SQL for SQLite, a MongoDB filter for MongoDB.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from typing import Any

from ..errors import InvalidRequest
from ..models import MAX_TAGS
from .fields import DATA, JOBS

#: field -> kind of value, for the fields a filter may name
JOB_FIELDS = JOBS.query_kinds
#: fields a job list may be sorted by
JOB_SORT_FIELDS = JOBS.sort_fields
DATA_FIELDS = DATA.query_kinds
DATA_SORT_FIELDS = DATA.sort_fields

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
FIELD_OPERATORS = (*COMPARISONS, "$in", "$nin", "$exists", "$not", "$all")
LOGICAL_OPERATORS = ("$and", "$or", "$nor")
MAX_DEPTH = 8
MAX_IN = 1000
#: most conditions in one filter (a store's expression tree has its limits too)
MAX_TERMS = 200
#: most tags ``$all`` may ask for (a job has at most 32)
MAX_ALL = 64


@dataclasses.dataclass(frozen=True)
class Condition:
    """``field <op> value``: one leaf of a filter."""

    field: str
    op: str
    value: Any


@dataclasses.dataclass(frozen=True)
class Logical:
    """``$and`` / ``$or`` / ``$nor`` over sub-filters."""

    op: str
    items: tuple[Node, ...]


@dataclasses.dataclass(frozen=True)
class Not:
    """``$not`` of one sub-filter."""

    item: Node


Node = Condition | Logical | Not


def parse_filter(spec: Any, fields: dict[str, str] = JOB_FIELDS) -> Node:
    """Validate a MongoDB-style filter and return its tree (``$and`` of nothing: all).

    Depth (``$and``/``$or``/``$nor`` and ``$not`` alike), width and the number of
    conditions are bounded, so that no filter a client sends can exhaust a store's
    parser: too large a filter is a 400, not a store error."""
    return _parse(spec, fields, depth=0, where="filter", budget=[MAX_TERMS])


def _parse(spec: Any, fields: dict[str, str], depth: int, where: str, budget: list[int]) -> Node:
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"{where} nests deeper than {MAX_DEPTH} levels")
    if not isinstance(spec, dict):
        raise InvalidRequest(f"{where} must be an object, not {_json_kind(spec)}")
    items: list[Node] = []
    for key, value in spec.items():
        if key in LOGICAL_OPERATORS:
            if not isinstance(value, list) or not value:
                raise InvalidRequest(f"{key} in {where} needs a non-empty array of filters")
            if len(value) > MAX_TERMS:
                raise InvalidRequest(f"{key} in {where} takes at most {MAX_TERMS} filters")
            parts = tuple(
                _parse(v, fields, depth + 1, f"{key}[{i}]", budget) for i, v in enumerate(value)
            )
            items.append(Logical(key, parts))
        elif key.startswith("$"):
            raise InvalidRequest(
                f"unknown operator {key!r} in {where}; "
                f"combine filters with {', '.join(LOGICAL_OPERATORS)}"
            )
        elif key not in fields:
            raise InvalidRequest(
                f"cannot filter on {key!r}; filterable fields are: {', '.join(fields)}"
            )
        else:
            items.extend(_parse_field(key, value, fields[key], depth, budget))
    if len(items) == 1:
        return items[0]
    return Logical("$and", tuple(items))


def _parse_field(field: str, spec: Any, kind: str, depth: int, budget: list[int]) -> list[Node]:
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"{field}: $not nests deeper than {MAX_DEPTH} levels")
    budget[0] -= 1
    if budget[0] < 0:
        raise InvalidRequest(f"the filter has more than {MAX_TERMS} conditions")
    if not (isinstance(spec, dict) and spec and all(k.startswith("$") for k in spec)):
        if isinstance(spec, dict) and any(k.startswith("$") for k in spec):
            raise InvalidRequest(f"{field}: do not mix operators and plain keys")
        return [Condition(field, "$eq", _value(field, kind, spec, "$eq"))]
    out: list[Node] = []
    for op, value in spec.items():
        if op not in FIELD_OPERATORS:
            raise InvalidRequest(
                f"unknown operator {op!r} on {field!r}; allowed: {', '.join(FIELD_OPERATORS)}"
            )
        if op == "$not":
            if not isinstance(value, dict) or not value:
                raise InvalidRequest(f"{field}: $not needs an object of operators")
            inner = _parse_field(field, value, kind, depth + 1, budget)
            node: Node = inner[0] if len(inner) == 1 else Logical("$and", tuple(inner))
            out.append(Not(node))
        elif op == "$exists":
            if not isinstance(value, bool):
                raise InvalidRequest(f"{field}: $exists takes true or false")
            out.append(Condition(field, op, value))
        elif op in ("$in", "$nin", "$all"):
            if op == "$all" and kind != "tags":
                raise InvalidRequest(f"{field}: $all applies to tags only")
            if not isinstance(value, list):
                raise InvalidRequest(f"{field}: {op} takes an array")
            if len(value) > MAX_IN:
                raise InvalidRequest(f"{field}: {op} takes at most {MAX_IN} values")
            if op == "$all" and len(value) > MAX_ALL:
                raise InvalidRequest(
                    f"{field}: $all takes at most {MAX_ALL} tags (a job has at most {MAX_TAGS})"
                )
            out.append(Condition(field, op, tuple(_value(field, kind, v, op) for v in value)))
        else:
            if op in ("$gt", "$gte", "$lt", "$lte") and kind in ("boolean", "tags"):
                raise InvalidRequest(f"{field}: {op} does not apply to {kind}")
            if value is None and op not in ("$eq", "$ne"):
                raise InvalidRequest(f"{field}: {op} cannot compare with null")
            out.append(Condition(field, op, _value(field, kind, value, op)))
    return out


def _value(field: str, kind: str, value: Any, op: str) -> Any:
    if value is None:
        return None
    if kind in ("string", "tags"):
        if not isinstance(value, str):
            raise InvalidRequest(f"{field}: {op} needs a string, not {_json_kind(value)}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidRequest(f"{field}: {op} needs true or false")
        return value
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequest(f"{field}: {op} needs a number, not {_json_kind(value)}")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            try:  # beyond what a store keeps as an integer: compare it as a float
                return float(value)
            except OverflowError:
                raise InvalidRequest(f"{field}: {op} takes a number of sensible size") from None
        return value
    if kind == "time":
        if not isinstance(value, str):
            raise InvalidRequest(f"{field}: {op} needs an ISO 8601 time string")
        try:
            return format_time(parse_time(value))
        except ValueError:
            raise InvalidRequest(
                f"{field}: {value!r} is not an ISO 8601 time such as 2026-11-29T08:00:00Z"
            ) from None
    raise AssertionError(kind)


def narrowed(
    where: Node | None, spec: dict[str, Any] | None, fields: dict[str, str] = JOB_FIELDS
) -> Node | None:
    """``where`` and, when there is one, the filter document ``spec`` too (who may see
    what, whose records a bulk change may touch)."""
    if spec is None:
        return where
    extra = parse_filter(spec, fields)
    return extra if where is None else Logical("$and", (extra, where))


def any_of(**values: list[str] | None) -> dict[str, Any]:
    """A filter from query parameters: each field equal to one of its values (fields
    without values are left out); ``tags`` must have all of them."""
    spec: dict[str, Any] = {}
    for field, options in values.items():
        if options:
            spec[field] = {"$all" if field == "tags" else "$in": list(options)}
    return spec


def parse_sort(
    spec: Any, allowed: tuple[str, ...] = JOB_SORT_FIELDS, default: str = "created"
) -> list[tuple[str, int]]:
    """Parse ``"-created,script"`` or ``{"created": -1}`` or ``[["created", -1]]``."""
    pairs: list[tuple[str, Any]]
    if spec is None or spec == "":
        return [(default, -1)]
    if isinstance(spec, str):
        pairs = []
        for part in spec.split(","):
            part = part.strip()
            if part.startswith("-"):
                pairs.append((part[1:], -1))
            else:
                pairs.append((part.lstrip("+"), 1))
    elif isinstance(spec, dict):
        pairs = list(spec.items())
    elif isinstance(spec, list) and all(isinstance(p, list) and len(p) == 2 for p in spec):
        pairs = [(p[0], p[1]) for p in spec]
    else:
        raise InvalidRequest('sort must look like "-created,script" or {"created": -1}')
    out: list[tuple[str, int]] = []
    for field, direction in pairs:
        if field not in allowed:
            raise InvalidRequest(
                f"cannot sort by {field!r}; sortable fields are: {', '.join(allowed)}"
            )
        if direction not in (1, -1) or isinstance(direction, bool):
            raise InvalidRequest(f"sort direction of {field!r} must be 1 or -1")
        out.append((field, direction))
    return out


# --- times ----------------------------------------------------------------------------


_second: tuple[int, str] = (-1, "")  # the last whole second seen, and its text


def utcnow() -> str:
    """Now, as the ISO 8601 UTC string every time field uses (``format_time``'s form,
    made directly: it is taken several times for every job, and the text of the whole
    second is reused while it lasts)."""
    global _second
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    known, text = _second
    if seconds != known:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, text)
    return f"{text}.{micros:06d}Z"


def format_time(moment: _dt.datetime) -> str:
    """Fixed-width ISO 8601 UTC with microseconds, so strings sort as times do."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds") + "Z"


def parse_time(text: str) -> _dt.datetime:
    """Parse ISO 8601 (a date alone means midnight UTC; no zone means UTC)."""
    text = text.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = _dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
