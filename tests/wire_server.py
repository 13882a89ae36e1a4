"""A local MongoDB wire-protocol server (mongoeco on its SQLite engine) for the tests and
benchmarks of the MongoDB store; run by the Python 3.13 of ``.venv-mongo`` (see the
Makefile's ``mongo-server``).

``python wire_server.py FOLDER [PORT]`` serves the database kept in FOLDER on 127.0.0.1,
prints ``listening <port>`` once it accepts connections, and stops when its standard
input closes (so it never outlives the process that started it) or on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from mongoeco.engines import SQLiteEngine
from mongoeco.wire import AsyncMongoEcoProxyServer


async def serve(folder: str, port: int) -> None:
    engine = SQLiteEngine(os.path.join(folder, "mongo.sqlite"))
    server = AsyncMongoEcoProxyServer(engine=engine, host="127.0.0.1", port=port)
    address = await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.read(1) or stop.set())
    print(f"listening {address.port}", flush=True)
    await stop.wait()
    await server.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
