"""Datatypes: how stored or inline JSON becomes the Python value a script receives.

A data document (and inline ``raw_data``) carries a ``datatype``:

==============  ===================================================  =====================
datatype        JSON it holds                                         a script receives
==============  ===================================================  =====================
``json``        anything                                              it as is
``dataframe``   records ``[{"a": 1}, ...]``, columns ``{"a": [...]}``  ``pandas.DataFrame``
                or split ``{"columns", "data", "index"?}``
``timeseries``  as ``dataframe``; the index (split form) or the       ``pandas.DataFrame``
                first column holds the times                          with a DatetimeIndex
``series``      a list, or an object of index to value                ``pandas.Series``
``ndarray``     nested lists (rectangular), or                        ``numpy.ndarray``
                ``{"data", "dtype"?, "shape"?}``
==============  ===================================================  =====================

More come from the entry-point group ``jupyter_jobserver.datatypes``: a name pointing at
an object with ``to_python(payload)`` (run in the worker) and, optionally,
``validate(payload)`` (run when the data is stored; raise ``ValueError`` to refuse).

Then the script's data parameter decides the final form (see :func:`load_binding`): a
``pathlib.Path`` parameter gets a datafile's path, a ``DataFrame`` gets a table, an
``ndarray`` an array, and an unannotated ``data`` the datatype's own value (for a datafile:
a table for csv, tsv, dat and txt files, the parsed content of a json file).

This module is imported by workers: pandas and numpy load only when a value needs them.
"""

from __future__ import annotations

import csv
import json
import math
import pathlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

ENTRY_POINT_GROUP = "jupyter_jobserver.datatypes"
BUILTIN = ("json", "dataframe", "timeseries", "series", "ndarray")
TABLE_EXTENSIONS = ("csv", "tsv", "dat", "txt")
TIME_COLUMNS = ("time", "date", "datetime", "timestamp", "tstamp")

#: which datatypes (and datafile extensions) can feed which kind of data parameter
ACCEPTS: dict[str, dict[str, Any]] = {
    "path": {"datatypes": (), "extensions": None},
    "file": {"datatypes": None, "extensions": None},
    "dataframe": {"datatypes": ("dataframe", "timeseries", "json"), "extensions": "tables"},
    "series": {"datatypes": ("series", "dataframe", "timeseries", "json"), "extensions": "tables"},
    "ndarray": {
        "datatypes": ("ndarray", "dataframe", "timeseries", "series", "json"),
        "extensions": "tables",
    },
    "json": {"datatypes": ("json",), "extensions": ("json",)},
    "any": {"datatypes": None, "extensions": None},
}


# --- checks made when data is stored or bound (in the server) --------------------------


def known_datatypes() -> list[str]:
    """Every datatype name: the built-in ones and those registered by packages."""
    return [*BUILTIN, *sorted(_plugins())]


def validate(datatype: str, payload: Any) -> None:
    """Refuse a payload its datatype cannot turn into a value (``ValueError`` says why)."""
    if datatype not in BUILTIN:
        if datatype not in _plugins():
            raise ValueError(
                f"unknown datatype {datatype!r}; known datatypes: {', '.join(known_datatypes())}"
            )
        check = getattr(_plugin(datatype), "validate", None)
        if check is not None:
            check(payload)
        return
    if datatype in ("dataframe", "timeseries"):
        _check_table(payload, datatype)
        if datatype == "timeseries":
            if isinstance(payload, (list, dict)) and not payload:
                raise ValueError("a timeseries needs at least one row")
            _check_times(payload)
    elif datatype == "series":
        if not isinstance(payload, (list, dict)):
            raise ValueError("a series is a list, or an object of index to value")
    elif datatype == "ndarray":
        _check_array(payload)


def compatible(kind: str, datatype: str) -> bool:
    """Can a document of ``datatype`` feed a data parameter of ``kind``?"""
    accepted = ACCEPTS.get(kind, ACCEPTS["any"])["datatypes"]
    return accepted is None or datatype in accepted or datatype not in BUILTIN


def readable_extension(kind: str, extension: str) -> bool:
    """Can a datafile with ``extension`` feed a data parameter of ``kind``?"""
    accepted = ACCEPTS.get(kind, ACCEPTS["any"])["extensions"]
    if accepted is None:
        return True
    if accepted == "tables":
        return extension in (*TABLE_EXTENSIONS, "json")
    return extension in accepted


def _check_table(payload: Any, datatype: str) -> None:
    if isinstance(payload, dict) and payload.get("$type") == "dataframe":
        payload = {k: payload[k] for k in ("columns", "data", "index") if k in payload}
    if isinstance(payload, list):
        if not all(isinstance(row, dict) for row in payload):
            raise ValueError(f"a {datatype} as a list needs one object per row")
        return
    if isinstance(payload, dict):
        if "columns" in payload and "data" in payload:
            if not isinstance(payload["columns"], list):
                raise ValueError(f"a {datatype} in split form needs 'columns' as a list")
            if "index" in payload and not isinstance(payload["index"], list):
                raise ValueError("'index' must be a list")
            if not isinstance(payload["data"], list) or not all(
                isinstance(r, list) and len(r) == len(payload["columns"]) for r in payload["data"]
            ):
                raise ValueError(
                    f"a {datatype} in split form needs one list per row, as long as 'columns'"
                )
            if "index" in payload and len(payload["index"]) != len(payload["data"]):
                raise ValueError("'index' must have one entry per row")
            return
        lengths = {len(v) if isinstance(v, list) else -1 for v in payload.values()}
        if -1 in lengths or len(lengths) > 1:
            raise ValueError(f"a {datatype} as an object needs one list per column, all as long")
        return
    raise ValueError(
        f"a {datatype} is a list of rows, an object of columns, or "
        '{"columns": [...], "data": [[...]]}'
    )


def _check_times(payload: Any) -> None:
    """A timeseries' times must be times: numbers would silently become nanoseconds
    since 1970, and any other text fails only later, in the job."""
    source, values = _time_values(payload)
    if source is None:
        return  # already typed as times (a DataFrame sent with a DatetimeIndex)
    from ..store.query import parse_time

    for value in values:
        if value is None:
            continue
        try:
            if not isinstance(value, str):
                raise ValueError
            parse_time(value)
        except ValueError:
            raise ValueError(
                f"a timeseries takes its times from {source}, and {value!r} is not a time: "
                "use ISO 8601 text such as '2026-01-31' or '2026-01-31T12:00:00Z', and name "
                f"the column one of {', '.join(TIME_COLUMNS)} or put it first"
            ) from None


def _time_values(payload: Any) -> tuple[str | None, list[Any]]:
    """Where the times of a timeseries payload are (as ``_timeseries`` reads them), and
    their values; ``None`` when the payload says they are times already."""
    if isinstance(payload, dict) and "columns" in payload and "data" in payload:
        if str(payload.get("index_dtype") or "").startswith("datetime"):
            return None, []
        index = payload.get("index")
        if index is not None and not _positions(index):
            return "the index", index
        column = _time_column(payload["columns"])
        at = payload["columns"].index(column)
        return f"column {column!r}", [row[at] for row in payload["data"]]
    if isinstance(payload, list):
        names: dict[str, None] = {}
        for row in payload:
            names.update(dict.fromkeys(row))
        column = _time_column(list(names))
        return f"column {column!r}", [row.get(column) for row in payload]
    column = _time_column(list(payload))
    return f"column {column!r}", payload[column]


def _time_column(columns: list[Any]) -> Any:
    named = [c for c in columns if str(c).lower() in TIME_COLUMNS]
    if named:
        return named[0]
    if not columns:
        raise ValueError("a timeseries needs a column of times")
    return columns[0]


def _positions(index: Any) -> bool:
    """Is this index just the row numbers (as a table with no index of its own has)?"""
    return isinstance(index, list) and index == list(range(len(index)))


def _check_array(payload: Any) -> None:
    data = payload.get("data") if isinstance(payload, dict) else payload
    if isinstance(payload, dict) and "data" not in payload:
        raise ValueError('an ndarray object needs "data"')
    if not isinstance(data, list):
        raise ValueError("an ndarray is a (nested) list of numbers")
    found = _shape(data)
    shape = payload.get("shape") if isinstance(payload, dict) else None
    if shape is not None:
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise ValueError("an ndarray's 'shape' is a list of whole numbers")
        count, wanted = math.prod(found), math.prod(shape)
        if wanted != count:
            raise ValueError(
                f"an ndarray of shape {shape} needs {wanted} values; 'data' has {count}"
            )


def _shape(data: Any) -> tuple[int, ...]:
    if not isinstance(data, list):
        return ()
    shapes = {_shape(item) for item in data}
    if len(shapes) > 1:
        raise ValueError("an ndarray must be rectangular: its rows differ in length")
    return (len(data), *(shapes.pop() if shapes else ()))


# --- conversions (in the worker) ---------------------------------------------------------


def load_binding(binding: Mapping[str, Any], parameter: Mapping[str, Any]) -> Any:
    """The value a script's data parameter receives for a resolved binding."""
    kind = parameter.get("kind") or "any"
    source = binding["type"]
    if source == "datafile":
        path = pathlib.Path(binding["path"])
        if kind == "path":
            return path
        value = read_datafile(path, binding.get("extension") or path.suffix.lstrip("."))
    else:
        payload = binding.get("data")
        if binding.get("file"):  # a large payload travels as a file
            with open(binding["file"], encoding="utf-8") as f:
                payload = json.load(f)
        value = to_python(binding.get("datatype") or "json", payload)
    return shape_for(kind, value)


def to_python(datatype: str, payload: Any) -> Any:
    """Turn a payload into the Python value of its datatype."""
    if datatype == "json":
        return payload
    if datatype in ("dataframe", "timeseries"):
        frame = _frame(payload)
        return _timeseries(frame) if datatype == "timeseries" else frame
    if datatype == "series":
        import pandas as pd

        if isinstance(payload, dict) and payload.get("$type") == "series":
            from ..serialize import from_jsonable

            return from_jsonable(payload)
        return pd.Series(payload)
    if datatype == "ndarray":
        import numpy as np

        if isinstance(payload, dict):
            array = np.array(payload["data"], dtype=payload.get("dtype"))
            return array.reshape(payload["shape"]) if "shape" in payload else array
        return np.array(payload)
    return _plugin(datatype).to_python(payload)


def read_datafile(path: pathlib.Path, extension: str) -> Any:
    """A datafile's content: a table for csv/tsv/dat/txt, parsed JSON for json."""
    extension = extension.lower()
    if extension == "json":
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    import pandas as pd

    if extension == "csv":
        return pd.read_csv(path)
    if extension == "tsv":
        return pd.read_csv(path, sep="\t")
    if extension in ("dat", "txt"):
        try:
            return pd.read_csv(path, sep=None, engine="python")
        # csv.Error: the sniffer finds no delimiter (an empty or blank file): not a table
        except (ValueError, pd.errors.ParserError, csv.Error):
            return path.read_text(encoding="utf-8")
    return path.read_bytes()


def shape_for(kind: str, value: Any) -> Any:
    """Give a value the form the data parameter asks for."""
    if kind in ("any", "path", "json"):
        return value
    import pandas as pd

    if kind == "dataframe":
        if isinstance(value, pd.DataFrame):
            return value
        if isinstance(value, pd.Series):
            return value.to_frame()
        return _frame(value)
    if kind == "series":
        if isinstance(value, pd.Series):
            return value
        frame = value if isinstance(value, pd.DataFrame) else _frame(value)
        if frame.shape[1] != 1:
            raise ValueError(
                f"this script takes a series, but the data has {frame.shape[1]} columns"
            )
        return frame.iloc[:, 0]
    if kind == "ndarray":
        import numpy as np

        if isinstance(value, (pd.DataFrame, pd.Series)):
            return value.to_numpy()
        return np.asarray(value)
    return value


def _frame(payload: Any) -> Any:
    import pandas as pd

    if isinstance(payload, pd.DataFrame):
        return payload
    if isinstance(payload, dict) and payload.get("$type") == "dataframe":
        from ..serialize import from_jsonable

        return from_jsonable(payload)
    if isinstance(payload, dict) and "columns" in payload and "data" in payload:
        return pd.DataFrame(payload["data"], columns=payload["columns"], index=payload.get("index"))
    return pd.DataFrame(payload)


def _timeseries(frame: Any) -> Any:
    import pandas as pd

    if isinstance(frame.index, pd.DatetimeIndex):
        return frame
    if not _positions(list(frame.index)):
        frame.index = _times(frame.index)
        return frame
    frame = frame.set_index(_time_column(list(frame.columns)))
    frame.index = _times(frame.index)
    return frame


def _times(values: Any) -> Any:
    """ISO 8601 times as a DatetimeIndex, each read on its own (dates and date-times may
    mix); if some carry a zone, all are in UTC (a time without one is taken as UTC)."""
    import pandas as pd

    try:
        return pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601"))
    except ValueError:  # zoned and unzoned times together
        return pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601", utc=True))


# --- plug-ins ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _plugins() -> dict[str, Any]:
    """Registered datatypes by name, read once (their code is imported only where it
    runs, by :func:`_plugin`)."""
    from importlib import metadata

    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _plugin(name: str) -> Any:
    entry_point = _plugins().get(name)
    if entry_point is None:
        raise ValueError(f"unknown datatype {name!r}")
    return entry_point.load()
