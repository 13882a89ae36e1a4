"""A sweep's results as one table: a row per job, with its parameters, status, time,
result and error, as JSON (columns and rows) or CSV.

Kept apart from the sweep service: it is pure data shaping, run in a thread (a sweep's
table may have 100,000 rows), and the one place that says what the columns are.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..serialize import RawJSON


def results_table(
    sweep: dict[str, Any], jobs: list[dict[str, Any]], results: dict[str, RawJSON]
) -> dict[str, Any]:
    """``{"columns": [...], "rows": [[...], ...]}``: ``index`` and ``job``, the
    parameters (every keyword a job got), ``datafile`` when the sweep has datafiles, then
    ``status``, ``time_sec``, the result (``result``, or ``result.<key>`` for each key of
    a flat dict) and ``error``."""
    parameters: dict[str, None] = {}
    for job in jobs:
        parameters.update(dict.fromkeys(job.get("kwargs") or {}))
    values = {job_id: json.loads(text) for job_id, text in results.items()}
    result_columns: dict[str, None] = {}
    flat = {job_id: _flat(value) for job_id, value in values.items()}
    for cells in flat.values():
        result_columns.update(dict.fromkeys(cells))
    with_file = bool(sweep.get("datafiles"))
    columns = ["index", "job", *parameters]
    if with_file:
        columns.append("datafile")
    columns += ["status", "time_sec", *result_columns, "error"]
    rows = []
    for job in jobs:
        kwargs = job.get("kwargs") or {}
        row: list[Any] = [job.get("sweep_index"), job["id"], *(kwargs.get(p) for p in parameters)]
        if with_file:
            row.append((job.get("data") or {}).get("name"))
        row += [job["status"], job.get("time_sec")]
        job_id = job["id"]
        cells = flat.get(job_id, {})
        row += [cells.get(c) for c in result_columns]
        error = job.get("error")
        row.append(f"{error.get('type')}: {error.get('message')}" if error else None)
        rows.append(row)
    return {"columns": columns, "rows": rows, "total": len(rows)}


def _flat(value: Any) -> dict[str, Any]:
    """A dict of scalars as its columns; anything else is one ``result`` cell."""
    if isinstance(value, dict) and value and all(_scalar(v) for v in value.values()):
        return {f"result.{k}": v for k, v in value.items()}
    return {"result": value}


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def table_csv(table: dict[str, Any]) -> str:
    """The results table as CSV (lists and dicts in a cell as JSON text)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table["columns"])
    for row in table["rows"]:
        writer.writerow(
            ["" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else v for v in row]
        )
    return out.getvalue()
