"""How a script's return value becomes JSON, and back.

A job's ``result`` is plain JSON so that any client can read it. Values JSON has no
word for are written as tagged objects, ``{"$type": ..., ...}``, that the Python client
turns back into the original kind of value:

=====================================  ==============================================
returned value                         stored as
=====================================  ==============================================
``None``, ``bool``, ``int``, ``str``   itself
``float``                              itself; NaN and infinities become ``null``
``dict``, ``list``, ``tuple``, ``set`` object / array (keys become strings)
numpy scalar                           the matching Python number or bool
``numpy.ndarray``                      ``{"$type": "ndarray", "dtype", "shape", "data"}``
``pandas.DataFrame``                   ``{"$type": "dataframe", "columns", "index",
                                       "data", "dtypes"}`` (pandas' ``split`` layout)
``pandas.Series``                      ``{"$type": "series", "name", "index", "data",
                                       "dtype"}``
``datetime``, ``date``, ``Timestamp``  ISO 8601 string
``timedelta``, ``Timedelta``           seconds as a number
``bytes``                              ``{"$type": "bytes", "base64"}``
``pathlib.Path``, ``Decimal``, enums   string / number / the enum's value
dataclass instance                     its fields as an object
anything else                          ``{"$type": "repr", "type", "repr"}``
=====================================  ==============================================

This module is imported by worker processes, so it imports pandas and numpy only when a
value of theirs is met.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import json
import math
import pathlib
import re
import sys
from collections.abc import Callable
from typing import Any

REPR_LIMIT = 10_000


def dumps(value: Any) -> str:
    """Serialize ``value`` to a JSON string following the table above."""
    return json.dumps(to_jsonable(value), allow_nan=False, separators=(",", ":"))


def loads_strict(text: str | bytes) -> Any:
    """Parse JSON as the standard defines it: Python's parser also takes ``NaN`` and
    ``Infinity``, which no other JSON reader (nor SQLite's) accepts."""
    return json.loads(text, parse_constant=_not_json)


def _not_json(word: str) -> Any:
    raise ValueError(f"{word} is not JSON (NaN and infinities have no JSON form; use null)")


def to_jsonable(value: Any) -> Any:
    """Return a structure of JSON types that stands for ``value``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, enum.Enum):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    converted = _convert_scientific(value)
    if converted is not _UNHANDLED:
        return converted
    if isinstance(value, _dt.datetime):
        return _iso(value)
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, decimal.Decimal):
        return to_jsonable(float(value))
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$type": "bytes", "base64": base64.b64encode(bytes(value)).decode("ascii")}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    return {
        "$type": "repr",
        "type": f"{type(value).__module__}.{type(value).__qualname__}",
        "repr": repr(value)[:REPR_LIMIT],
    }


_UNHANDLED = object()


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    converted = to_jsonable(key)
    return converted if isinstance(converted, str) else json.dumps(converted)


def _iso(value: _dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat() + "Z"
    return value.isoformat()


def _convert_scientific(value: Any) -> Any:
    """Convert numpy and pandas values, without importing either if unused."""
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            if value.dtype.kind in "Mm":
                data = to_jsonable(value.astype(object).tolist())
            else:
                data = to_jsonable(value.tolist())
            return {
                "$type": "ndarray",
                "dtype": str(value.dtype),
                "shape": list(value.shape),
                "data": data,
            }
        if isinstance(value, np.generic):
            if isinstance(value, np.datetime64):
                return str(value)
            return to_jsonable(value.item())
    pd = sys.modules.get("pandas")
    if pd is not None:
        if isinstance(value, pd.DataFrame):
            split = json.loads(
                value.to_json(
                    orient="split", date_format="iso", date_unit="us", default_handler=str
                )
            )
            return {
                "$type": "dataframe",
                "columns": split["columns"],
                "index": split["index"],
                "data": split["data"],
                "dtypes": [str(t) for t in value.dtypes],  # by position: names may repeat
                "index_dtype": str(value.index.dtype),
                "index_name": to_jsonable(value.index.name),
                "column_levels": value.columns.nlevels,
                "index_levels": value.index.nlevels,
                "column_names": to_jsonable(list(value.columns.names)),
                "index_names": to_jsonable(list(value.index.names)),
            }
        if isinstance(value, pd.Series):
            split = json.loads(
                value.to_json(
                    orient="split", date_format="iso", date_unit="us", default_handler=str
                )
            )
            return {
                "$type": "series",
                "name": to_jsonable(value.name),
                "index": split["index"],
                "data": split["data"],
                "dtype": str(value.dtype),
                "index_dtype": str(value.index.dtype),
            }
        if isinstance(value, pd.Timestamp):
            return None if pd.isna(value) else _iso(value.to_pydatetime())
        if isinstance(value, pd.Timedelta):
            return None if pd.isna(value) else value.total_seconds()
        if value is pd.NaT or value is getattr(pd, "NA", None):
            return None
    return _UNHANDLED


def from_jsonable(value: Any) -> Any:
    """Rebuild numpy and pandas values from their tagged form (the client's side)."""
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("$type")
    if kind == "dataframe":
        import pandas as pd

        columns = _labels(value["columns"], value.get("column_levels", 1))
        frame = pd.DataFrame(value["data"], columns=pd.RangeIndex(len(columns)))
        frame = _restore_dtypes(frame, value.get("dtypes") or {}, columns)
        frame.columns = columns
        frame.index = _restore_index(
            _labels(value["index"], value.get("index_levels", 1)), value.get("index_dtype")
        )
        index_names = value.get("index_names") or [value.get("index_name")]
        if len(index_names) == frame.index.nlevels:
            frame.index.names = index_names
        column_names = value.get("column_names")
        if column_names and len(column_names) == frame.columns.nlevels:
            frame.columns.names = column_names
        return frame
    if kind == "series":
        import pandas as pd

        series = pd.Series(value["data"], index=value["index"], name=value.get("name"))
        series = _restore_series(series, value.get("dtype"))
        series.index = _restore_index(series.index, value.get("index_dtype"))
        return series
    if kind == "ndarray":
        import numpy as np

        return np.array(value["data"], dtype=value.get("dtype")).reshape(value["shape"])
    if kind == "bytes":
        return base64.b64decode(value["base64"])
    return {k: from_jsonable(v) for k, v in value.items()}


def _restore_series(series: Any, dtype: str | None) -> Any:
    import pandas as pd

    if not dtype:
        return series
    try:
        if dtype.startswith("datetime64"):
            return pd.to_datetime(series)
        if dtype.startswith("timedelta64"):
            return pd.to_timedelta(series)
        return series.astype(dtype)
    except (TypeError, ValueError):
        return series


def _labels(labels: list[Any], levels: int) -> Any:
    """Column or index labels; with several levels, a MultiIndex of their tuples."""
    import pandas as pd

    if levels > 1:
        if not labels:  # no rows: the levels cannot be read off the labels
            return pd.MultiIndex.from_arrays([[] for _ in range(levels)])
        return pd.MultiIndex.from_tuples([tuple(label) for label in labels])
    return pd.Index(labels)


def _restore_dtypes(frame: Any, dtypes: list[str] | dict[str, str], columns: Any) -> Any:
    """Give each column (by position) its dtype again; ``dtypes`` by name is the form
    results were stored in before names could repeat."""
    for position, column in enumerate(columns):
        if isinstance(dtypes, dict):
            dtype = dtypes.get(_key(column))
        else:
            dtype = dtypes[position] if position < len(dtypes) else None
        if dtype:
            frame.isetitem(position, _restore_series(frame.iloc[:, position], dtype))
    return frame


def _restore_index(index: Any, dtype: str | None) -> Any:
    import pandas as pd

    if dtype and dtype.startswith("datetime64"):
        try:
            return pd.DatetimeIndex(pd.to_datetime(index))
        except (TypeError, ValueError):
            return index
    return index


class RawJSON(str):
    """Text that already is JSON (a stored result or payload): :func:`dumps_with_raw` puts
    it into a document as it is, without parsing it and writing it again."""


class DeferredJSON:
    """JSON text that is fetched only when it is stored (a large result an executor
    holds): the store calls :meth:`text` in its own thread, so the text never passes
    through the event loop, and :meth:`release` once the store has its copy."""

    def text(self) -> str:
        raise NotImplementedError

    def release(self) -> None:
        """Let go of the text where it was held."""


def dumps_with_raw(document: Any) -> str:
    """``json.dumps`` for a document that may hold :class:`RawJSON` values, at its top or
    one level down (a job's ``result``, or the ``job`` an event carries): those are spliced
    in verbatim, which for a result of many megabytes is far cheaper than parsing it and
    writing it again. A document without any costs one pass over its top keys."""
    pieces: list[str] = []

    def mark(raw: RawJSON) -> str:
        pieces.append(str(raw))
        return f"\x00raw{len(pieces) - 1}\x00"

    text = json.dumps(_swap_raw(document, mark), separators=(",", ":"))
    if not pieces:
        return text
    found = _MARKER.findall(text)
    if len(found) != len(pieces) or len(set(found)) != len(pieces):
        # the document's own text looks like a marker: parse the raw values instead
        return json.dumps(_swap_raw(document, json.loads), separators=(",", ":"))
    # one pass, so that nothing spliced in is searched for markers again
    return _MARKER.sub(lambda m: pieces[int(m.group(1))], text)


#: a value ``dumps_with_raw`` stands in for a raw piece, as ``json.dumps`` writes it
_MARKER = re.compile(r'"\\u0000raw(\d+)\\u0000"')


def _swap_raw(document: Any, swap: Callable[[RawJSON], Any]) -> Any:
    """The document with each :class:`RawJSON` at its top or one level down swapped
    (copying only the mappings that change)."""

    def walk(mapping: dict[str, Any], depth: int) -> dict[str, Any]:
        changed: dict[str, Any] | None = None
        for key, value in mapping.items():
            new = value
            if isinstance(value, RawJSON):
                new = swap(value)
            elif depth and isinstance(value, dict):
                new = walk(value, depth - 1)
            if new is not value:
                changed = changed if changed is not None else dict(mapping)
                changed[key] = new
        return mapping if changed is None else changed

    return walk(document, 1) if isinstance(document, dict) else document
