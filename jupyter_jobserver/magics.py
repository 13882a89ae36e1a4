"""IPython magics: ``%jobserver`` and ``%%jobserver``, loaded with ``%load_ext jupyter_jobserver``.

``%jobserver run SCRIPT key=value ...`` runs a job, shows its output and a progress bar
while it runs and its result at the end, and returns the job. Interrupting the kernel
cancels the job. ``%jobserver sweep SCRIPT a=1,2,3 b=0.1,0.2 [--datafile a.csv,b.csv]``
runs a job for every combination, shows one progress bar over them all and the results
table at the end. The other commands: ``scripts``, ``list``, ``status ID``, ``output ID``,
``cancel ID``, ``rerun ID``, ``datafiles``, ``upload PATH`` (``%jobserver help`` lists
them with their options). A job id may be shortened to any unique prefix.

``%%jobserver run SCRIPT ...`` runs the script on the cell's body as inline data: JSON, or
CSV (read as a DataFrame).

Errors (an unknown script, a bad value, no server) are one line, not a traceback.
"""

from __future__ import annotations

import argparse
import html
import io
import json
import math
import shlex
import sys
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import HTML, display
from traitlets import Unicode

from . import display as show
from .client import Job, JobServerClient, ServerNotFound, Sweep
from .errors import Conflict, JobServerError


@magics_class
class JobServerMagics(Magics):
    """Run and inspect jobs from a notebook."""

    url = Unicode(
        "",
        help="The Jupyter server with the job server (default: found by itself).",
    ).tag(config=True)

    token = Unicode("", help="Its token (default: found with the server).").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._client: JobServerClient | None = None
        self._schemas: dict[str, dict[str, Any]] = {}
        self._commands: dict[str, Callable[[str, str | None], Any]] = {
            "run": self._run,
            "sweep": self._sweep,
            "scripts": self._scripts,
            "list": self._list,
            "status": self._status,
            "output": self._output,
            "cancel": self._cancel,
            "rerun": self._rerun,
            "datafiles": self._datafiles,
            "upload": self._upload,
            "help": self._help,
        }

    @property
    def client(self) -> JobServerClient:
        if self._client is None:
            self._client = JobServerClient(self.url or None, self.token or None)
        return self._client

    @line_cell_magic
    def jobserver(self, line: str, cell: str | None = None) -> Any:
        """Run and inspect jobs; ``%jobserver help`` lists the commands."""
        command, _, rest = strip_comment(line).strip().partition(" ")
        handler = self._commands.get(command or "help")
        if handler is None:
            raise UsageError(f"unknown command {command!r}; commands: {', '.join(self._commands)}")
        if cell is not None and command != "run":
            raise UsageError("only `%%jobserver run` takes a cell (its body is the data)")
        try:
            return handler(rest, cell)
        except (JobServerError, ServerNotFound) as exc:
            raise UsageError(exc.message) from None
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    # --- run -------------------------------------------------------------------------------

    @magic_arguments("%jobserver run")
    @argument("script", help="the script to run")
    @argument("parameters", nargs="*", metavar="key=value", help="its parameters")
    @argument("--datafile", metavar="NAME", help="bind this datafile")
    @argument("--data", metavar="ID", help="bind this stored data document")
    @argument("--raw", metavar="JSON", help="bind this JSON as inline data")
    @argument(
        "--datatype", metavar="NAME", help="the datatype of inline data (json, dataframe, ...)"
    )
    @argument("--no-wait", action="store_true", help="start the job and return at once")
    @argument("--timeout", type=float, metavar="SECONDS", help="seconds the job may run")
    @argument("--public", action="store_true", help="let everyone see the job")
    @argument("--tag", action="append", default=[], help="label the job (repeatable)")
    def _run(self, line: str, cell: str | None) -> Job | None:
        """Run a script as a job: its output and progress as they come, then its result."""
        args = _parse(self._run, line)
        schema = self._schema(args.script)
        kwargs = dict(parse_parameter(item, schema) for item in args.parameters)
        data = self._binding(args, cell)
        job = self.client.create_job(
            args.script,
            kwargs=kwargs,
            data=data,
            run=True,
            public=args.public,
            timeout=args.timeout,
            tags=args.tag,
        )
        if args.no_wait:
            print(f"started job {job.id}")  # news, not an error: not in the error colour
            return job
        return self._follow(job)

    def _binding(self, args: Any, cell: str | None) -> dict[str, Any] | None:
        given = [o for o in (args.datafile, args.data, args.raw) if o is not None]
        if len(given) + (cell is not None and bool(cell.strip())) > 1:
            raise UsageError("bind one kind of data: --datafile, --data, --raw or the cell")
        if args.datafile is not None:
            return self.client.datafile_binding(args.datafile)
        if args.data is not None:
            return self.client.document_binding(args.data)
        if args.raw is not None:
            try:
                value = json.loads(args.raw)
            except ValueError as exc:
                raise UsageError(f"--raw is not JSON: {exc}") from None
            return self.client.inline_binding(value, args.datatype)
        if cell is not None and cell.strip():
            return self.client.inline_binding(cell_data(cell), args.datatype)
        return None

    def _follow(self, job: Job) -> Job:
        """Show output and progress as they come; the result at the end."""
        bar = show.Progress(status=job.status)
        handle = display(bar, display_id=True)
        final: dict[str, Any] | None = None
        try:
            for event in self.client.events(job.id):
                kind = event["event"]
                if kind == "output":
                    stream = sys.stdout if event["stream"] == "stdout" else sys.stderr
                    stream.write(event["text"])
                    stream.flush()
                elif kind == "progress":
                    bar.progress = event["progress"]
                    _update(handle, bar)
                elif kind == "status" and event.get("job"):
                    bar.status = event["job"]["status"]
                    _update(handle, bar)
                elif kind == "end":
                    final = event.get("job")
        except KeyboardInterrupt:
            cancelled = self.client.cancel(job.id)
            print(f"\ncancelled job {job.id}", file=sys.stderr)
            bar.status = cancelled.status
            _update(handle, bar)
            return cancelled
        job = Job(final, self.client) if final else self.client.get_job(job.id)
        bar.status = job.status
        if job.status == "succeeded":
            bar.progress = None
        _update(handle, bar)
        if job.status == "failed" and job.error:
            print(
                f"job {job.id} failed: {job.error['type']}: {job.error['message']}", file=sys.stderr
            )
        elif job.status == "succeeded" and job.record.get("result") is not None:
            display(job.result)
        if (job.record.get("provenance") or {}).get("files"):
            display(HTML(self.client.files_html(job)))
        return job

    # --- sweep -----------------------------------------------------------------------------

    @magic_arguments("%jobserver sweep")
    @argument("script", help="the script to run")
    @argument(
        "parameters",
        nargs="*",
        metavar="key=v1,v2",
        help="its parameters, each with the values to sweep over (a job per combination)",
    )
    @argument("--datafile", metavar="A,B", help="run on each of these datafiles")
    @argument("--timeout", type=float, metavar="SECONDS", help="seconds each job may run")
    @argument("--public", action="store_true", help="let everyone see the jobs")
    @argument("--no-wait", action="store_true", help="start the sweep and return at once")
    def _sweep(self, line: str, cell: str | None) -> Sweep:
        """Run a script over every combination of values: one progress bar, then the table."""
        args = _parse(self._sweep, line)
        schema = self._schema(args.script)
        grid: dict[str, list[Any]] = {}
        kwargs: dict[str, Any] = {}
        for item in args.parameters:
            key, values = parse_values(item, schema)
            if isinstance(values, list):
                grid[key] = values
            else:
                kwargs[key] = values
        datafiles = None
        if args.datafile is not None:
            datafiles = [name.strip() for name in args.datafile.split(",") if name.strip()]
        sweep = self.client.sweep(
            args.script,
            grid,
            datafiles=datafiles,
            kwargs=kwargs,
            timeout=args.timeout,
            public=args.public,
        )
        if args.no_wait:
            print(f"started sweep {sweep.id} of {sweep.size} jobs")
            return sweep
        return self._follow_sweep(sweep)

    def _follow_sweep(self, sweep: Sweep) -> Sweep:
        """One progress bar over the whole sweep; the results table at the end."""
        bar = show.Progress(_sweep_progress(sweep.record), status=sweep.status)
        handle = display(bar, display_id=True)
        try:
            for record in sweep.follow():
                bar.status = record["status"]
                bar.progress = _sweep_progress(record)
                _update(handle, bar)
        except KeyboardInterrupt:
            sweep.cancel()
            print(f"\ncancelled sweep {sweep.id}", file=sys.stderr)
        sweep.refresh()
        bar.status = sweep.status
        bar.progress = _sweep_progress(sweep.record)
        _update(handle, bar)
        failed = sweep.counts.get("failed", 0)
        if failed:
            print(f"{failed} of {sweep.size} jobs failed (see the error column)", file=sys.stderr)
        display(sweep.results())
        return sweep

    # --- the other commands --------------------------------------------------------------

    @magic_arguments("%jobserver scripts")
    def _scripts(self, line: str, cell: str | None) -> show.Table:
        """What can run, and with which parameters."""
        _parse(self._scripts, line)
        rows = [
            [
                s["name"],
                s["process"],
                show.parameters_text(s["parameters"]),
                ", ".join(s["data"]) or "-",
                (s["description"] or "").split("\n")[0],
            ]
            for s in self.client.scripts()
        ]
        return show.Table(["script", "process", "parameters", "data", "description"], rows)

    @magic_arguments("%jobserver list")
    @argument("--status", action="append", help="only jobs with this status (repeatable)")
    @argument("--script", action="append", help="only jobs of this script (repeatable)")
    @argument("--limit", type=int, default=20, metavar="N", help="how many (newest first)")
    def _list(self, line: str, cell: str | None) -> show.Table:
        """Your newest jobs."""
        args = _parse(self._list, line)
        jobs, total = self.client.jobs(
            status=args.status, script=args.script, limit=args.limit, mine=True
        )
        headers = ["job", "script", "status", "created", "time", "note"]
        rows, html_rows = [], []
        for job in jobs:
            record = job.record
            note = ""
            if record.get("error"):
                note = f"{record['error']['type']}: {record['error']['message']}"
            elif record["status"] == "running":
                note = show.progress_text(record.get("progress"), 12)
            time_text = "" if record["time_sec"] is None else f"{record['time_sec']:.2f}s"
            cells = [
                record["id"][:8],
                record["script"] or record["process"],
                record["status"],
                record["created"][:19],
                time_text,
                note,
            ]
            rows.append(cells)
            html_rows.append(
                [
                    *(_escape(c) for c in cells[:2]),
                    show.status_badge(record["status"]),
                    *(_escape(c) for c in cells[3:]),
                ]
            )
        if total > len(jobs):
            print(f"{len(jobs)} of {total} jobs")
        return show.Table(headers, rows, html_rows)

    @magic_arguments("%jobserver status")
    @argument("job", help="the job's id (or a unique prefix)")
    def _status(self, line: str, cell: str | None) -> None:
        """One line about a job."""
        job = self._job(_parse(self._status, line).job)
        print(show.job_line(job.record))

    @magic_arguments("%jobserver output")
    @argument("job", help="the job's id (or a unique prefix)")
    @argument("--stderr", action="store_true", help="stderr rather than stdout")
    def _output(self, line: str, cell: str | None) -> None:
        """What a job printed."""
        args = _parse(self._output, line)
        job = self._job(args.job)
        stream = "stderr" if args.stderr else "stdout"
        sys.stdout.write(self.client.output(job.id, stream).text)

    @magic_arguments("%jobserver cancel")
    @argument("job", help="the job's id (or a unique prefix)")
    def _cancel(self, line: str, cell: str | None) -> None:
        """Stop a job."""
        job = self._job(_parse(self._cancel, line).job)
        print(show.job_line(self.client.cancel(job.id).record))

    @magic_arguments("%jobserver rerun")
    @argument("job", help="the job's id (or a unique prefix)")
    @argument("--current-data", action="store_true", help="use the data as it is now")
    @argument("--no-wait", action="store_true", help="start the new job and return at once")
    def _rerun(self, line: str, cell: str | None) -> Job:
        """Run a job again with the same script, parameters and data."""
        args = _parse(self._rerun, line)
        try:
            job = self.client.rerun(self._job(args.job).id, current_data=args.current_data)
        except Conflict as exc:
            raise UsageError(
                _advise(exc, "add --current-data to use the data as it is now")
            ) from None
        return job if args.no_wait else self._follow(job)

    @magic_arguments("%jobserver datafiles")
    def _datafiles(self, line: str, cell: str | None) -> show.Table:
        """The files jobs can read."""
        _parse(self._datafiles, line)
        rows = [
            [f["name"], f"{f['size']:,}", f["modified"][:19], f["sha256"][:12]]
            for f in self.client.datafiles()
        ]
        return show.Table(["datafile", "bytes", "modified", "sha256"], rows)

    @magic_arguments("%jobserver upload")
    @argument("path", help="the file to upload")
    @argument("--name", help="the datafile's name (default: the file's)")
    @argument("--overwrite", action="store_true", help="replace a datafile of that name")
    def _upload(self, line: str, cell: str | None) -> None:
        """Make a file a datafile."""
        args = _parse(self._upload, line)
        try:
            meta = self.client.upload(args.path, args.name, overwrite=args.overwrite)
        except Conflict as exc:
            raise UsageError(_advise(exc, "add --overwrite to replace it")) from None
        except FileNotFoundError:
            raise UsageError(f"no file {args.path!r}") from None
        except IsADirectoryError:
            raise UsageError(f"{args.path!r} is a folder; upload its files one by one") from None
        except OSError as exc:
            raise UsageError(f"cannot read {args.path!r}: {exc.strerror or exc}") from None
        print(f"uploaded {meta['name']} ({meta['size']:,} bytes, sha256 {meta['sha256'][:12]}...)")

    def _help(self, line: str, cell: str | None) -> None:
        print(__doc__.split("\n\n")[1].strip() + "\n")
        for name, handler in self._commands.items():
            if name != "help":
                print(_usage(handler))

    # --- helpers -------------------------------------------------------------------------

    def _schema(self, script: str) -> dict[str, Any]:
        if script not in self._schemas:
            self._schemas[script] = self.client.script(script)["parameters"]
        return self._schemas[script]

    def _job(self, reference: str) -> Job:
        """A job by id or by a unique prefix of it."""
        if len(reference) == 32:
            return self.client.get_job(reference)
        if not reference or any(c not in "0123456789abcdef" for c in reference):
            raise UsageError(f"{reference!r} is not a job id")
        matches, _ = self.client.query({"id": {"$gte": reference, "$lt": reference + "g"}}, limit=2)
        if not matches:
            raise UsageError(f"no job with an id starting {reference!r}")
        if len(matches) > 1:
            raise UsageError(f"several jobs have ids starting {reference!r}; give more of it")
        return self.client.get_job(matches[0].id)


def strip_comment(line: str) -> str:
    """The line without a trailing ``# comment``, as a shell reads it: a ``#`` that
    starts a word, outside quotes (``text=a#b`` and ``'# x'`` keep theirs)."""
    quote = ""
    escaped = False
    for i, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def parse_parameter(item: str, schema: dict[str, Any]) -> tuple[str, Any]:
    """``key=value``, the value read as the script's schema says (``n=3`` is an int where
    the schema says integer). A value that does not fit is passed on as text, so the
    server's message names the problem."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise UsageError(f"parameters are key=value, not {item!r}")
    prop = (schema.get("properties") or {}).get(key, {})
    value = parse_value(text, prop)
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"parameter {key!r}: {text} is not a finite number (JSON has no {text})")
    return key, value


def parse_values(item: str, schema: dict[str, Any]) -> tuple[str, Any]:
    """``key=v1,v2,...`` of a sweep: the list of values, each read as the schema says.
    A parameter that takes a list or an object has one JSON value (its commas are its
    own), returned as it is rather than as a list of values."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise UsageError(f"parameters are key=value1,value2,..., not {item!r}")
    prop = (schema.get("properties") or {}).get(key, {})
    kinds = prop.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    if kinds and set(kinds) <= {"array", "object", "null"}:
        return parse_parameter(item, schema)
    values = []
    for part in text.split(","):
        _, value = parse_parameter(f"{key}={part}", schema)
        values.append(value)
    return key, values


def _sweep_progress(record: dict[str, Any]) -> dict[str, Any]:
    progress = record.get("progress") or {}
    counts = record.get("counts") or {}
    told = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    return {
        "fraction": progress.get("fraction"),
        "message": f"{progress.get('done', 0)} of {progress.get('total', '?')} jobs: {told}",
    }


def parse_value(text: str, prop: dict[str, Any]) -> Any:
    kinds = prop.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    if "enum" in prop and text in map(str, prop["enum"]):
        return next(v for v in prop["enum"] if str(v) == text)
    if "null" in kinds and text.lower() in ("none", "null"):
        return None
    for kind in kinds:
        try:
            if kind == "integer":
                return int(text)
            if kind == "number":
                return float(text)
            if kind == "boolean":
                lowered = text.lower()
                if lowered in ("true", "yes", "1", "on"):
                    return True
                if lowered in ("false", "no", "0", "off"):
                    return False
            if kind in ("array", "object"):
                return json.loads(text)
            if kind == "string":
                return text
        except ValueError:
            continue
    if not kinds:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def cell_data(cell: str) -> Any:
    """A cell's body as data: JSON if it parses, else CSV as a DataFrame."""
    try:
        return json.loads(cell)
    except ValueError:
        pass
    import pandas as pd

    try:
        return pd.read_csv(io.StringIO(cell.strip()))
    except (ValueError, pd.errors.ParserError) as exc:
        raise UsageError(f"the cell is neither JSON nor CSV: {exc}") from None


def _parse(handler: Callable[..., Any], line: str) -> Any:
    """Parse a command's arguments the way a shell would (quotes group, and are removed)."""
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"cannot read the arguments: {exc}") from None
    parser = handler.parser  # type: ignore[attr-defined]
    try:  # options may come before, between or after key=value parameters
        return parser.parse_intermixed_args(argv)
    except UsageError as exc:
        raise UsageError(f"{parser.prog}: {exc}") from None


def _advise(exc: JobServerError, advice: str) -> str:
    """The server's reason, with the advice the REST API gives put as this magic's flag."""
    reason, sep, _ = exc.message.rpartition("; ")
    return f"{reason if sep else exc.message}; {advice}"


def _update(handle: Any, value: Any) -> None:
    if handle is not None:
        handle.update(value)


def _escape(text: Any) -> str:
    return html.escape(str(text))


def _usage(handler: Callable[..., Any]) -> str:
    """``%jobserver NAME ARGS`` and the command's summary, from its parser."""
    parser = handler.parser  # type: ignore[attr-defined]
    words = [parser.prog]
    for action in parser._actions:  # argparse keeps no public list of them
        if isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            metavar = action.metavar or action.dest.upper()
            words.append(f"[{metavar} ...]" if action.nargs == "*" else metavar)
        elif action.nargs == 0:
            words.append(f"[{action.option_strings[-1]}]")
        else:
            metavar = action.metavar or action.dest.upper()
            words.append(f"[{action.option_strings[-1]} {metavar}]")
    return f"  {' '.join(words)}\n      {parser.description}"
