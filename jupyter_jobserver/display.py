"""How jobs, scripts and datafiles look in a notebook: small, readable HTML and text.

Shared by the client's rich display, the magics and the widgets.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable
from typing import Any

STATUS_COLOURS = {
    "created": "#6c757d",
    "queued": "#6c757d",
    "running": "#0b6fc2",
    "succeeded": "#1e7d32",
    "failed": "#c62828",
    "cancelled": "#8d6e63",
}


def status_badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#6c757d")
    return (
        f'<span style="color:white;background:{colour};border-radius:3px;'
        f'padding:0 5px;font-size:90%">{html.escape(status)}</span>'
    )


def progress_text(progress: dict[str, Any] | None, width: int = 30) -> str:
    """A text progress bar: ``[#########.....]  45% message``."""
    if not progress:
        return ""
    fraction = progress.get("fraction")
    message = progress.get("message") or ""
    if fraction is None:
        return message
    filled = round(width * fraction)
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {message}".rstrip()


def progress_html(progress: dict[str, Any] | None) -> str:
    if not progress:
        return ""
    fraction = progress.get("fraction")
    message = html.escape(progress.get("message") or "")
    if fraction is None:
        return f"<div>{message}</div>"
    return (
        f'<div><progress value="{fraction:.3f}" max="1" style="width:14em"></progress> '
        f"{fraction:.0%} {message}</div>"
    )


def job_line(job: dict[str, Any]) -> str:
    """One line about a job, for a terminal."""
    name = job.get("script") or job.get("process")
    parts = [job["id"][:8], str(name), job["status"]]
    if job.get("time_sec") is not None:
        parts.append(f"{job['time_sec']:.2f}s")
    if job.get("progress") and job["status"] == "running":
        parts.append(progress_text(job["progress"], 20))
    if job.get("error"):
        parts.append(f"{job['error'].get('type')}: {job['error'].get('message')}")
    return "  ".join(parts)


def job_html(job: dict[str, Any]) -> str:
    """A job record as a compact table."""
    name = html.escape(str(job.get("script") or job.get("process")))
    rows = [
        ("job", f"<code>{html.escape(job['id'])}</code>"),
        ("script", name),
        ("status", status_badge(job["status"])),
    ]
    for field in ("owner", "created", "started", "finished"):
        if job.get(field):
            rows.append((field, html.escape(str(job[field]))))
    if job.get("time_sec") is not None:
        rows.append(("time", f"{job['time_sec']:.3f} s"))
    if job.get("kwargs") or job.get("args"):
        rows.append(("parameters", f"<code>{html.escape(_params(job))}</code>"))
    if job.get("data"):
        rows.append(("data", html.escape(binding_text(job["data"]))))
    if job.get("progress") and job["status"] not in ("succeeded", "failed", "cancelled"):
        rows.append(("progress", progress_html(job["progress"])))
    if job.get("error"):
        error = job["error"]
        kind = html.escape(str(error.get("type")))
        rows.append(("error", f"<b>{kind}</b>: {html.escape(str(error.get('message')))}"))
    body = "".join(
        f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{v}</td></tr>"
        for k, v in rows
    )
    return f"<table>{body}</table>"


def binding_text(binding: dict[str, Any]) -> str:
    if binding["type"] == "datafile":
        return f"datafile {binding['name']}"
    if binding["type"] == "mongodb":
        return f"data document {binding['id']}"
    return f"inline {binding.get('datatype') or 'json'} data"


def _params(job: dict[str, Any]) -> str:
    parts = [repr(a) for a in job.get("args") or []]
    parts += [f"{k}={v!r}" for k, v in (job.get("kwargs") or {}).items()]
    return ", ".join(parts)


def table_html(headers: Iterable[str], rows: Iterable[Iterable[Any]], escape: bool = True) -> str:
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td style='text-align:left'>{html.escape(str(cell)) if escape else cell}</td>"
            for cell in row
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def table_text(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def parameters_text(schema: dict[str, Any]) -> str:
    """``name: type = default`` for each parameter, as a short line."""
    required = set(schema.get("required") or [])
    parts = []
    for name, prop in (schema.get("properties") or {}).items():
        if "enum" in prop:  # the choices say more than their type
            kind = "|".join(repr(choice) for choice in prop["enum"])
        else:
            kind = prop.get("type") or "any"
            if isinstance(kind, list):
                kind = "|".join(kind)
        text = f"{name}: {kind}"
        if name not in required and "default" in prop:
            text += f" = {prop['default']!r}"
        parts.append(text)
    return ", ".join(parts)


class Table:
    """Rows shown as an HTML table in a notebook and as aligned text in a terminal."""

    def __init__(
        self, headers: list[str], rows: list[list[Any]], html_rows: list[list[str]] | None = None
    ) -> None:
        self.headers = headers
        self.rows = rows
        self.html_rows = html_rows

    def _repr_html_(self) -> str:
        if self.html_rows is not None:
            return table_html(self.headers, self.html_rows, escape=False)
        return table_html(self.headers, self.rows)

    def __repr__(self) -> str:
        return table_text(self.headers, self.rows) if self.rows else "(none)"


class Progress:
    """A progress bar that can be updated in place (``display(..., display_id=True)``)."""

    def __init__(self, progress: dict[str, Any] | None = None, status: str = "queued") -> None:
        self.progress = progress
        self.status = status

    def _repr_html_(self) -> str:
        return f"{status_badge(self.status)} {progress_html(self.progress)}"

    def __repr__(self) -> str:
        return f"{self.status} {progress_text(self.progress)}".rstrip()


#: images a job wrote are shown inline (as data, so a saved notebook keeps them) up to
#: this size; larger ones, and every other file, are links
INLINE_IMAGE_LIMIT = 4 << 20
IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
}


def image_type(path: str) -> str | None:
    """The image type of a job file, by its extension (``None`` for any other file)."""
    return IMAGE_TYPES.get(path.rsplit(".", 1)[-1].lower()) if "." in path else None


def files_html(
    files: list[dict[str, Any]],
    link: Callable[[str], str],
    content: Callable[[str], bytes],
) -> str:
    """A job's files: images shown inline, every file a download link with its size.
    ``link(path)`` is a file's URL, ``content(path)`` its bytes (read for images only)."""
    if not files:
        return ""
    parts = []
    for entry in files:
        path = entry["path"]
        name = html.escape(path)
        anchor = (
            f'<a href="{html.escape(link(path))}" download="{html.escape(path.rsplit("/", 1)[-1])}"'
            f' target="_blank">{name}</a> <small>({size_text(entry["size"])})</small>'
        )
        kind = image_type(path)
        if kind and entry["size"] <= INLINE_IMAGE_LIMIT:
            data = base64.b64encode(content(path)).decode("ascii")
            parts.append(
                f'<figure style="margin:4px 0"><img src="data:{kind};base64,{data}" '
                f'alt="{name}" style="max-width:100%"/><figcaption>{anchor}</figcaption></figure>'
            )
        else:
            parts.append(f"<div>{anchor}</div>")
    return f"<div class='jobserver-files'><b>files</b>{''.join(parts)}</div>"


def size_text(size: int) -> str:
    """Bytes for a person: ``512 B``, ``3.2 kB``, ``1.4 MB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
