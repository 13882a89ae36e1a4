"""Copy one store into another (``jupyter jobserver copy SOURCE TARGET``): jobs, data
documents, sweeps, job output and job files, for instance to move a server's SQLite
file into the MongoDB a team shares.

A copy is safe to repeat: a record whose id the target already has is left as it is
when it is the same, and updated when it differs, never added twice; output and files
that the target holds at the source's size are left alone. Idempotency keys are not
copied (they guard a retry of one request, minutes long). Copy from a store no server
is using: an SQLite store is locked while a server has it, so the copy refuses to start
then; a MongoDB source may still change while it is read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

from traitlets.config import LoggingConfigurable

from ..errors import NotFound
from ..jobs.files import FILE_CHUNK, FolderJobFiles, JobFiles
from ..jobs.logs import OUTPUT_CHUNK, STREAMS, FolderJobLogs, JobLogs
from .base import Store
from .fields import DATA, JOBS, SWEEPS
from .query import parse_filter
from .sqlite import SQLiteStore

#: records read and written at a time
PAGE = 200


def is_mongodb(url: str) -> bool:
    return url.startswith(("mongodb://", "mongodb+srv://"))


class Side:
    """One end of a copy: the store and, beside it, where job output and files are."""

    def __init__(self, url: str, jobs_dir: str = "", parent: Any = None) -> None:
        self.url = url
        self.store: Store
        self.logs: JobLogs
        self.files: JobFiles
        self._scratch = ""
        self._publish: list[Any] = []
        if is_mongodb(url):
            from ..jobs.mongo_files import MongoJobFiles
            from ..jobs.mongo_logs import MongoJobLogs
            from .mongo import MongoStore

            store = MongoStore(parent=parent, url=url)
            # what is written goes through a folder of its own, then into MongoDB
            self._scratch = tempfile.mkdtemp(prefix="jobserver-copy-")
            self.logs = MongoJobLogs(parent=parent, root=self._scratch, store=store)
            self.files = MongoJobFiles(parent=parent, root=self._scratch, store=store)
            self._publish = [self.logs, self.files]
            self.store = store
        else:
            self.store = SQLiteStore(parent=parent, url=url)
            path = self.store.path  # type: ignore[attr-defined]
            folder = jobs_dir or os.path.join(os.path.dirname(os.path.abspath(path)), "jobs")
            self.logs = FolderJobLogs(parent=parent, root=folder)
            self.files = FolderJobFiles(parent=parent, root=folder)

    def where(self) -> str:
        return self.store.where()

    def open(self) -> None:
        self.store.open()
        for kept in self._publish:
            kept.create_indexes()

    def close(self) -> None:
        self.store.close()
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def clear(self, job_id: str, *parts: str) -> None:
        """Remove a stream or a file of a job from the folder it is written into, so that
        what is written next replaces it rather than adding to it."""
        root = self._scratch or self.logs.root  # type: ignore[attr-defined]
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(root, job_id, *parts))

    def finish_job(self, job_id: str) -> None:
        """Make what was written for one job lasting (into MongoDB, for a MongoDB side)."""
        for kept in self._publish:
            kept.publish(job_id)
        if self._scratch:
            shutil.rmtree(os.path.join(self._scratch, job_id), ignore_errors=True)


class Progress:
    """A progress bar on a terminal; a line per step elsewhere (a log, a pipe)."""

    def __init__(self, stream: IO[str] | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()

    def show(self, what: str, done: int, total: int) -> None:
        if self.tty:
            filled = self.width * done // total if total else self.width
            bar = "#" * filled + "-" * (self.width - filled)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{what:<10} [{bar}] {done}/{total}{end}")
        else:
            self.stream.write(f"{what}: {done}/{total}\n")
        self.stream.flush()


class StoreCopy(LoggingConfigurable):
    """Copies every record (and the output and files of every job) of one side into
    another; see the module docstring."""

    def __init__(
        self, source: Side, target: Side, progress: Progress | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.target = target
        self.progress = progress or Progress()

    def run(self) -> dict[str, dict[str, int]]:
        """Copy everything; returns, per kind of record, how many were added, updated
        and left as they were."""
        return {
            "jobs": self._copy_jobs(),
            "data": self._copy_records(
                "data",
                DATA.query_kinds,
                lambda s, where, n, o: s.find_data(where, [("created", 1)], n, o),
                lambda s, i: s.get_data(i, raw=True),
                lambda s, doc: s.insert_data(doc),
                lambda s, i, changes: s.update_data(i, changes),
            ),
            "sweeps": self._copy_records(
                "sweeps",
                SWEEPS.query_kinds,
                lambda s, where, n, o: s.find_sweeps(where, [("created", 1)], n, o),
                lambda s, i: s.get_sweep(i),
                lambda s, doc: s.insert_sweep(doc),
                lambda s, i, changes: s.update_sweep(i, changes),
            ),
        }

    def _pages(
        self, find: Callable[..., tuple[list[dict[str, Any]], int]]
    ) -> Iterator[tuple[list[dict[str, Any]], int]]:
        offset = 0
        while True:
            page, total = find(self.source.store, None, PAGE, offset)
            if not page:
                return
            yield page, total
            offset += len(page)

    def _copy_records(
        self,
        what: str,
        kinds: dict[str, str],
        find: Callable[..., tuple[list[dict[str, Any]], int]],
        get: Callable[[Store, str], dict[str, Any] | None],
        insert: Callable[[Store, dict[str, Any]], None],
        update: Callable[[Store, str, dict[str, Any]], bool],
    ) -> dict[str, int]:
        counts = {"added": 0, "updated": 0, "same": 0}
        done = 0
        total = 0
        for page, total in self._pages(find):
            ids = [r["id"] for r in page]
            there = {
                r["id"]
                for r in find(
                    self.target.store, parse_filter({"id": {"$in": ids}}, kinds), PAGE, 0
                )[0]
            }
            for record in page:
                whole = get(self.source.store, record["id"])
                if whole is None:  # removed meanwhile
                    continue
                counts[self._put(whole, record["id"] in there, get, insert, update)] += 1
            done += len(page)
            self.progress.show(what, done, total)
        if not total:
            self.progress.show(what, 0, 0)
        return counts

    def _put(
        self,
        record: dict[str, Any],
        exists: bool,
        get: Callable[[Store, str], dict[str, Any] | None],
        insert: Callable[[Store, dict[str, Any]], None],
        update: Callable[[Store, str, dict[str, Any]], bool],
    ) -> str:
        if not exists:
            insert(self.target.store, record)
            return "added"
        if _plain(get(self.target.store, record["id"])) == _plain(record):
            return "same"
        update(self.target.store, record["id"], {k: v for k, v in record.items() if k != "id"})
        return "updated"

    def _copy_jobs(self) -> dict[str, int]:
        counts = {"added": 0, "updated": 0, "same": 0}
        source, target = self.source.store, self.target.store
        done = 0
        total = 0
        find = lambda s, where, n, o: s.find_jobs(where, [("created", 1)], n, o)  # noqa: E731
        for page, total in self._pages(find):
            ids = [j["id"] for j in page]
            results = source.job_results(ids)
            there = {
                j["id"]: j for j in find(target, parse_filter({"id": {"$in": ids}}), PAGE, 0)[0]
            }
            new = []
            for job in page:
                job = {**job, "result": results.get(job["id"])}
                if job["id"] not in there:
                    new.append(job)
                    continue
                mine = target.get_job(job["id"])
                if _plain(mine) == _plain(job):
                    counts["same"] += 1
                else:
                    changes = {k: v for k, v in job.items() if k != "id" and k in JOBS.names}
                    target.update_job(job["id"], changes)
                    counts["updated"] += 1
            if new:
                target.insert_jobs(new)
                counts["added"] += len(new)
            for job in page:
                self._copy_output(job)
            done += len(page)
            self.progress.show("jobs", done, total)
        if not total:
            self.progress.show("jobs", 0, 0)
        return counts

    def _copy_output(self, job: dict[str, Any]) -> None:
        """The job's streams and files, unless the target holds them at the same size."""
        job_id = job["id"]
        source, target = self.source, self.target
        wrote = False
        for stream in STREAMS:
            size = source.logs.size(job_id, stream)
            if size == 0 or target.logs.size(job_id, stream) == size:
                continue
            target.clear(job_id, stream)
            for start in range(0, size, OUTPUT_CHUNK):
                target.logs.append(
                    job_id, stream, source.logs.read(job_id, stream, start, OUTPUT_CHUNK)
                )
            wrote = True
        for entry in (job.get("provenance") or {}).get("files") or ():
            path = entry["path"]
            length = _file_size(source.files, job_id, path)
            if length is None or _file_size(target.files, job_id, path) == length:
                continue
            target.clear(job_id, *path.split("/"))
            target.files.put(job_id, path, b"")  # an empty file is a file too
            for start in range(0, length, FILE_CHUNK):
                target.files.put(job_id, path, source.files.read(job_id, path, start, FILE_CHUNK))
            wrote = True
        if wrote:
            target.finish_job(job_id)


def _file_size(files: JobFiles, job_id: str, path: str) -> int | None:
    try:
        return files.size(job_id, path)
    except (NotFound, OSError):
        return None


def _plain(record: dict[str, Any] | None) -> Any:
    """A record with its JSON text decoded, to compare two copies of it."""
    import json

    from ..serialize import RawJSON

    if record is None:
        return None
    return {
        k: json.loads(str(v)) if isinstance(v, RawJSON) else v
        for k, v in record.items()
        if v is not None
    }
