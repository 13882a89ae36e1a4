"""Job output kept in the shared MongoDB store, so that any server sharing the database
serves it after the server that ran the job is gone.

The local executor's workers write a job's streams into a folder on this machine (fast,
and read from there while the job runs here). When the job ends, :class:`PublishOutput`
copies each stream into the ``job_output`` collection as chunk documents of
:data:`CHUNK` bytes (``{job, stream, n, start, end, data}``); copying again replaces the
same chunks, so it is safe to repeat. A read uses the local file when this server has it,
and the chunks otherwise.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from bson.binary import Binary
from traitlets import Instance

from ..store.mongo import MongoStore
from ..vocabulary import FINISHED
from .logs import STREAMS, FolderJobLogs
from .transitions import TransitionPlugin

#: bytes of output in one chunk document (well under MongoDB's 16 MB document limit)
CHUNK = 255 * 1024
COLLECTION = "job_output"


class MongoJobLogs(FolderJobLogs):
    """Output in a folder while the job runs here, and in MongoDB once it ended."""

    store = Instance(MongoStore, help="The open MongoDB store whose database holds output.")

    def _chunks(self) -> Any:
        return self.store.collection(COLLECTION)

    def _local(self, job_id: str, stream: str) -> bool:
        return os.path.exists(self._path(job_id, stream))

    def size(self, job_id: str, stream: str) -> int:
        if self._local(job_id, stream):
            return super().size(job_id, stream)
        with self.store.guard():
            last = self._chunks().find_one(
                {"job": job_id, "stream": stream}, {"end": 1}, sort=[("start", -1)]
            )
        return 0 if last is None else int(last["end"])

    def read(self, job_id: str, stream: str, offset: int, limit: int) -> bytes:
        if self._local(job_id, stream):
            return super().read(job_id, stream, offset, limit)
        query = {
            "job": job_id,
            "stream": stream,
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
        """Copy the job's local streams into MongoDB; returns the bytes copied."""
        copied = 0
        chunks = self._chunks()
        with self.store.guard():
            for stream in STREAMS:
                if not self._local(job_id, stream):
                    continue
                prefix = f"{job_id}:{stream}:"

                def chunk_id(n: int, prefix: str = prefix) -> str:
                    return f"{prefix}{n:08d}"

                with open(self._path(job_id, stream), "rb") as f:
                    pieces = iter(lambda: f.read(CHUNK), b"")
                    copied += put_chunks(
                        chunks, {"job": job_id, "stream": stream}, chunk_id, pieces
                    )
        return copied

    def delete(self, job_ids: Iterable[str]) -> None:
        job_ids = list(job_ids)
        super().delete(job_ids)
        with self.store.guard():
            for start in range(0, len(job_ids), 500):
                self._chunks().delete_many({"job": {"$in": job_ids[start : start + 500]}})

    def create_indexes(self) -> None:
        """The index every read uses (call once the store is open)."""
        with self.store.guard():
            self._chunks().create_index([("job", 1), ("stream", 1), ("start", 1)])


class Publisher(Protocol):
    """What copies a finished job's output or files into MongoDB."""

    log: Any

    def publish(self, job_id: str) -> int: ...


class PublishOutput(TransitionPlugin):
    """Copies a job's output (or, given :class:`~.mongo_files.MongoJobFiles`, its files)
    into MongoDB when the job ends, off the event loop."""

    def __init__(self, logs: Publisher) -> None:
        self.logs = logs
        self._pending: set[asyncio.Future[Any]] = set()

    def transition(
        self,
        job_id: str,
        start: str | None,
        finish: str,
        job: dict[str, Any] | None,
        record: dict[str, Any] | None,
    ) -> None:
        if finish not in FINISHED:
            return
        future = asyncio.get_running_loop().run_in_executor(None, self.logs.publish, job_id)
        self._pending.add(future)
        future.add_done_callback(self._done(job_id))

    def _done(self, job_id: str) -> Any:
        def done(future: asyncio.Future[Any]) -> None:
            self._pending.discard(future)
            if not future.cancelled() and future.exception() is not None:
                self.logs.log.warning(
                    "jobserver: what job %s left could not be copied to MongoDB: %s",
                    job_id,
                    future.exception(),
                )

        return done

    async def drain(self) -> None:
        """Wait for the copies under way (before the server stops)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def put_chunks(
    chunks: Any, key: dict[str, Any], chunk_id: Callable[[int], str], pieces: Iterable[bytes]
) -> int:
    """Keep a job's stream or file in ``chunks`` as numbered pieces (with their byte
    range), in place of any copy made before, so that copying twice is harmless; a copy
    cut shorter than an earlier one keeps no tail. Returns the bytes kept."""
    size = 0
    n = 0
    for piece in pieces:
        chunks.replace_one(
            {"_id": chunk_id(n)},
            {**key, "n": n, "start": size, "end": size + len(piece), "data": Binary(piece)},
            upsert=True,
        )
        size += len(piece)
        n += 1
    chunks.delete_many({**key, "n": {"$gte": n}})
    return size
