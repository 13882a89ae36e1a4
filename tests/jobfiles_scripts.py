"""Scripts that write files in their job's folder, for the job files tests."""

from __future__ import annotations

import os
import pathlib
import struct
import zlib


def png(width: int = 2, height: int = 2) -> bytes:
    """A small valid PNG (red pixels), written without any imaging library."""
    row = b"\x00" + b"\xff\x00\x00" * width
    raw = row * height

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def write_files(text: str = "hello", size: int = 0) -> str:
    """Write a table, a plot, a nested file and a link leading out of the folder."""
    pathlib.Path("table.csv").write_text(f"name,value\n{text},1\n")
    pathlib.Path("plot.png").write_bytes(png())
    pathlib.Path("sub/deeper").mkdir(parents=True)
    pathlib.Path("sub/deeper/notes.txt").write_text(text * 3)
    os.symlink("/etc/hostname", "escape")
    if size:
        pathlib.Path("big.bin").write_bytes(b"\0" * size)
    return "written"


def write_then_wait(gate: str) -> str:
    """Write one file, then wait for a line through the FIFO ``gate``."""
    pathlib.Path("partial.txt").write_text("so far\n")
    with open(gate) as f:
        f.readline()
    return "done"
