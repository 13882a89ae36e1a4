"""A widget's event stream, read in a thread of its own so the kernel stays free."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..client import JobServerClient


class Following(threading.Thread):
    """Runs ``read(self)``, which reads a stream with ``self.client``, a client of its own
    (a blocking client serves one thread at a time); ``close`` ends the stream it is
    waiting on, and with it the thread."""

    def __init__(
        self, client: JobServerClient, read: Callable[[Following], None], name: str
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.client = client.clone()
        self.closed = False
        self._read = read

    def run(self) -> None:
        try:
            self._read(self)
        finally:
            self.client.close()

    def close(self) -> None:
        """Stop following: the stream ends quietly, and the thread with it."""
        self.closed = True
        self.client.close()
        if self.is_alive() and self is not threading.current_thread():
            self.join(timeout=10)
