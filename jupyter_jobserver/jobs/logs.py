"""Job logs: the captured stdout and stderr of each job, apart from where it ran.

The job manager reads output only through :class:`JobLogs`, so where it is kept (a folder
on this machine today, the shared store for a team) changes nothing for those who read
it, and output outlives the worker, or the machine, that wrote it.
"""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import os
import shutil
from collections.abc import AsyncGenerator, Iterable
from typing import Any

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from ..errors import NotFound

#: the streams of a job, in the order they are read
STREAMS = ("stdout", "stderr")
#: largest piece of output one read or one event carries
OUTPUT_CHUNK = 1 << 20


class JobLogs(LoggingConfigurable):
    """Where job output lives; synchronous and thread-safe (call it off the event loop).

    A producer that runs on this machine may write a job's streams straight into
    :meth:`folder`; any other appends what it receives with :meth:`append`.
    """

    def folder(self, job_id: str) -> str | None:
        """A folder on this machine that holds the job's stream files, or ``None`` when
        the logs are kept elsewhere."""
        return None

    def append(self, job_id: str, stream: str, data: bytes) -> None:
        """Add output to the end of a stream."""
        raise NotImplementedError

    def size(self, job_id: str, stream: str) -> int:
        """Bytes written to a stream so far (0 for a stream that has none)."""
        raise NotImplementedError

    def read(self, job_id: str, stream: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes of a stream from byte ``offset``."""
        raise NotImplementedError

    def delete(self, job_ids: Iterable[str]) -> None:
        """Forget the output of these jobs (and whatever else they left here)."""
        raise NotImplementedError

    def read_text(self, job_id: str, stream: str, offset: int, limit: int) -> bytes:
        """Like :meth:`read`, but never ending inside a UTF-8 character."""
        return whole_characters(self.read(job_id, stream, offset, limit), limit)


class FolderJobLogs(JobLogs):
    """Output as files in one folder per job (``<root>/<job id>/stdout``): the workers
    of the local executor write them directly, and they are read from any offset."""

    root = Unicode(help="The folder that holds one folder per job.").tag(config=True)

    def folder(self, job_id: str) -> str:
        return os.path.join(self.root, job_id)

    def _path(self, job_id: str, stream: str) -> str:
        return os.path.join(self.root, job_id, stream)

    def append(self, job_id: str, stream: str, data: bytes) -> None:
        os.makedirs(self.folder(job_id), exist_ok=True)
        with open(self._path(job_id, stream), "ab") as f:
            f.write(data)

    def size(self, job_id: str, stream: str) -> int:
        try:
            return os.stat(self._path(job_id, stream)).st_size
        except FileNotFoundError:
            return 0

    def read(self, job_id: str, stream: str, offset: int, limit: int) -> bytes:
        try:
            with open(self._path(job_id, stream), "rb") as f:
                f.seek(offset)
                return f.read(limit)
        except FileNotFoundError:
            return b""

    def delete(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)


def check_stream(stream: str) -> str:
    """A 404 for a stream a job does not have."""
    if stream not in STREAMS:
        raise NotFound(f"no output stream {stream!r}; streams are: {', '.join(STREAMS)}")
    return stream


def whole_characters(data: bytes, limit: int) -> bytes:
    """``data`` without a UTF-8 character cut off at its end (when it is ``limit`` long,
    the read may have stopped inside one)."""
    if len(data) < limit:
        return data
    lead = len(data) - 1
    while lead > 0 and len(data) - lead < 4 and (data[lead] & 0xC0) == 0x80:
        lead -= 1
    byte = data[lead]
    if byte >= 0xC0:
        width = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
        if len(data) - lead < width and lead > 0:
            return data[:lead]
    return data


@dataclasses.dataclass
class OutputSlice:
    """Bytes ``start`` to ``end`` of one stream; ``complete`` when that is all."""

    logs: JobLogs
    job_id: str
    stream: str
    start: int
    end: int
    complete: bool

    async def read(self, chunk: int = OUTPUT_CHUNK) -> AsyncGenerator[bytes, None]:
        """The bytes, a piece at a time, read off the event loop."""
        position = self.start
        while position < self.end:
            data = await asyncio.to_thread(
                self.logs.read, self.job_id, self.stream, position, min(chunk, self.end - position)
            )
            if not data:
                return
            position += len(data)
            yield data


class OutputFollower:
    """New text of a job's streams since the last look, decoded as it comes (a
    character split between two reads is decoded once it is whole)."""

    def __init__(self, logs: JobLogs, job_id: str) -> None:
        self.logs = logs
        self.job_id = job_id
        self.offsets = dict.fromkeys(STREAMS, 0)
        self._decoders = {s: codecs.getincrementaldecoder("utf-8")("replace") for s in STREAMS}

    async def new_output(self) -> AsyncGenerator[dict[str, Any], None]:
        """``output`` events for what was written since the last call."""
        for stream in STREAMS:
            while True:
                size = await asyncio.to_thread(self.logs.size, self.job_id, stream)
                if size <= self.offsets[stream]:
                    break
                chunk = await asyncio.to_thread(
                    self.logs.read_text, self.job_id, stream, self.offsets[stream], OUTPUT_CHUNK
                )
                if not chunk:
                    break
                self.offsets[stream] += len(chunk)
                text = self._decoders[stream].decode(chunk)
                if text:
                    yield {
                        "event": "output",
                        "stream": stream,
                        "offset": self.offsets[stream],
                        "text": text,
                    }
