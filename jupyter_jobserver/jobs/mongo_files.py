"""Job files kept in the shared MongoDB store, so that any server sharing the database
lists and serves them after the server that ran the job is gone.

As with output (:mod:`.mongo_logs`), the job writes its files in its folder on this
machine, and they are read from there while the job runs here. When the job ends,
:meth:`MongoJobFiles.publish` copies each file its record lists (``provenance.files``)
into the ``job_files`` collection as chunk documents of :data:`CHUNK` bytes
(``{job, path, n, start, end, data}``; a file of no bytes has one empty chunk). Copying
again replaces the same chunks, so it is safe to repeat. A read uses the local file when
this server has it, and the chunks otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from traitlets import Instance

from ..errors import NotFound
from ..store.mongo import MongoStore
from .files import FolderJobFiles, check_path
from .mongo_logs import CHUNK, put_chunks

COLLECTION = "job_files"


class MongoJobFiles(FolderJobFiles):
    """Job files in the job's folder while it runs here, and in MongoDB once it ended."""

    store = Instance(MongoStore, help="The open MongoDB store whose database holds the files.")

    def _chunks(self) -> Any:
        return self.store.collection(COLLECTION)

    def _local(self, job_id: str, path: str) -> bool:
        try:
            self._path(job_id, path)
        except NotFound:
            return False
        return True

    def size(self, job_id: str, path: str) -> int:
        if self._local(job_id, path):
            return super().size(job_id, path)
        with self.store.guard():
            last = self._chunks().find_one(
                {"job": job_id, "path": check_path(path)}, {"end": 1}, sort=[("start", -1)]
            )
        if last is None:
            raise NotFound(f"the job has no file {path!r}")
        return int(last["end"])

    def read(self, job_id: str, path: str, offset: int, limit: int) -> bytes:
        if self._local(job_id, path):
            return super().read(job_id, path, offset, limit)
        query = {
            "job": job_id,
            "path": check_path(path),
            "end": {"$gt": offset},
            "start": {"$lt": offset + limit},
        }
        with self.store.guard():
            chunks = list(self._chunks().find(query, {"start": 1, "data": 1}).sort("start", 1))
        if not chunks:
            return b""
        joined = b"".join(bytes(c["data"]) for c in chunks)
        skip = offset - int(chunks[0]["start"])
        return joined[skip : skip + limit]

    def publish(self, job_id: str) -> int:
        """Copy the files the job's record lists from its folder into MongoDB; returns
        the bytes copied (nothing for a job this server did not run)."""
        with self.store.guard():
            job = self.store.get_job(job_id, result=False)
        if job is None:
            return 0
        copied = 0
        for entry in (job.get("provenance") or {}).get("files") or ():
            path = entry["path"]
            if self._local(job_id, path):
                copied += self.copy_in(job_id, path, self._chunked(self._path(job_id, path)))
        return copied

    def copy_in(self, job_id: str, path: str, pieces: Iterable[bytes]) -> int:
        """Keep one file of a job, given as pieces of at most :data:`CHUNK` bytes, in
        place of any copy made before; returns its size."""
        with self.store.guard():
            return put_chunks(
                self._chunks(),
                {"job": job_id, "path": path},
                lambda n: f"{job_id}:{n:08d}:{path}",
                pieces,
            )

    @staticmethod
    def _chunked(full: str) -> Iterable[bytes]:
        """The file's pieces; one empty piece for an empty file, so that it is kept."""
        with open(full, "rb") as f:
            piece = f.read(CHUNK)
            yield piece
            while piece := f.read(CHUNK):
                yield piece

    def delete(self, job_ids: Iterable[str]) -> None:
        job_ids = list(job_ids)
        super().delete(job_ids)
        with self.store.guard():
            for start in range(0, len(job_ids), 500):
                self._chunks().delete_many({"job": {"$in": job_ids[start : start + 500]}})

    def create_indexes(self) -> None:
        """The index every read uses (call once the store is open)."""
        with self.store.guard():
            self._chunks().create_index([("job", 1), ("path", 1), ("start", 1)])
