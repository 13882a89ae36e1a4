"""What every job server handler shares: the user, the services, JSON and errors.

Handlers stay thin: parse the request, call a service, write the answer. Service errors
(:mod:`jupyter_jobserver.errors`) become ``{"error": code, "message": text}`` with their
status, so no handler needs a ``try``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator
from http.client import responses
from typing import Any, Protocol, cast
from urllib.parse import quote

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web
from tornado.iostream import StreamClosedError

from ..data.datafiles import DataFiles
from ..data.documents import DataDocuments
from ..errors import InvalidRequest, JobServerError, Unavailable
from ..jobs import JobManager, SweepService
from ..limits import SMALL_BODY, check_body_size, check_json
from ..models import MAX_COUNT
from ..scripts import ScriptRegistry
from ..serialize import dumps_with_raw, loads_strict
from ..users import User
from ..vocabulary import API_PREFIX

#: an idle event stream sends a comment this often, so proxies keep it open
KEEPALIVE = 15.0
#: request bodies larger than this are decoded off the event loop
LARGE_BODY = 1 << 20

#: query parameters Jupyter Server itself reads on any request (authentication, XSRF)
JUPYTER_ARGUMENTS = frozenset({"token", "_xsrf"})

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "limit_reached",
    503: "unavailable",
}


def _decode(body: bytes) -> Any:
    """Strict JSON, within the input limits of :mod:`jupyter_jobserver.limits`."""
    value = loads_strict(body)
    check_json(value)
    return value


class Services(Protocol):
    """What the handlers use of the extension app: its services, and who is asking."""

    jobs: JobManager
    sweeps: SweepService
    datafiles: DataFiles
    documents: DataDocuments
    registry: ScriptRegistry

    @property
    def server(self) -> Any: ...

    def user_for(self, identity: Any) -> User: ...


#: how much of a refused body is read and dropped after the answer, so that the client
#: gets it (closing with unread data resets the connection); beyond this it closes
DRAIN = 64 << 20
#: methods whose request may carry a body
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@web.stream_request_body
class JobServerHandler(ExtensionHandlerMixin, APIHandler):
    """Base class of the job server's REST handlers.

    Bodies are streamed in (Tornado would otherwise read a whole body, however large,
    before any handler code runs): a body over the operation's limit
    (:meth:`body_limit`) is a 413 before it is read when it announces its length, and
    as soon as the limit is passed when it comes in chunks.
    """

    auth_resource = "jobserver"
    _chunks: bytearray | None = None
    _refused: JobServerError | None = None
    _drained = 0

    def body_limit(self) -> int:
        """The most bytes this request's body may have (0: no limit); small by default,
        larger for the operations that carry data."""
        return SMALL_BODY

    @property
    def jobserver(self) -> Services:
        """The extension app (Jupyter hands it to every handler of the extension)."""
        return cast(Services, self.extensionapp)

    async def prepare(self) -> None:  # type:ignore[override]  # as APIHandler's
        await super().prepare()
        broken = self.jobserver.jobs.broken
        if broken is not None and self.current_user:  # why, to those who are signed in
            raise Unavailable(broken)
        if self.request.method in BODY_METHODS and not self._streams_itself():
            self._chunks = bytearray()
            limit = self.body_limit()
            length = self.request.headers.get("Content-Length")
            if length is not None and length.isdigit():
                check_body_size(int(length), limit, self._operation())
            # the limit is this handler's to enforce, with a JSON answer: Tornado's own
            # would be a bare 400 (and comes only at Jupyter's 512 MiB)
            connection: Any = self.request.connection
            connection.set_max_body_size(1 << 62)

    def _streams_itself(self) -> bool:
        """A handler that takes its body in its own ``data_received`` (uploads)."""
        return type(self).data_received is not JobServerHandler.data_received

    def _operation(self) -> str:
        return f"{self.request.method} {self.request.path.rsplit(API_PREFIX, 1)[-1]}"

    async def data_received(self, chunk: bytes) -> None:
        """Collect a JSON body, answering 413 the moment it passes the limit."""
        if self._refused is not None:
            await self.drain(chunk)
            return
        if self._chunks is None:
            return
        self._chunks += chunk
        limit = self.body_limit()
        if limit and len(self._chunks) > limit:
            try:
                check_body_size(len(self._chunks), limit, self._operation())
            except JobServerError as exc:
                await self.refuse_body(exc)

    async def refuse_body(self, exc: JobServerError) -> None:
        """Answer ``exc`` now, while the body is still coming, and keep nothing of it.

        The rest of the body is read and dropped (up to :data:`DRAIN` bytes) rather than
        left unread: closing a connection with unread data resets it, and the client
        would lose the answer it was sent. The handler's method then does not run.
        """
        self._refused = exc
        self._chunks = None
        payload = json.dumps({"error": exc.code, "message": exc.message}).encode()
        self.clear()
        self.set_status(exc.status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Content-Length", str(len(payload)))
        self.set_header("Connection", "close")
        self.write(payload)
        setattr(self, self.request.method.lower(), self._answered)  # type: ignore[union-attr]
        with contextlib.suppress(StreamClosedError):
            await self.flush()

    async def drain(self, chunk: bytes) -> None:
        self._drained += len(chunk)
        if self._drained > DRAIN and not self._finished:
            self.finish()  # enough: the connection closes

    async def _answered(self, *args: Any, **kwargs: Any) -> None:
        if not self._finished:
            self.finish()

    @property
    def user(self) -> User:
        """The person making this request, as the services know them."""
        return self.jobserver.user_for(self.current_user)

    async def json_body(self) -> Any:
        """The decoded JSON body (``None`` when empty); a 400 when it is not JSON.
        A large body is decoded in a thread, not on the event loop."""
        body = bytes(self._chunks) if self._chunks is not None else self.request.body
        if not body:
            return None
        try:
            if len(body) > LARGE_BODY:
                return await asyncio.to_thread(_decode, body)
            return _decode(body)
        except RecursionError:
            raise InvalidRequest("the request body is nested too deeply") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None

    def only_arguments(self, *names: str) -> None:
        """A 400 for a query parameter this endpoint does not know (a misspelt filter
        would otherwise be ignored, and match more than was meant)."""
        unknown = sorted(set(self.request.query_arguments) - set(names) - JUPYTER_ARGUMENTS)
        if unknown:
            known = ", ".join(names) or "none"
            raise InvalidRequest(
                f"unknown query parameter {', '.join(map(repr, unknown))}; this endpoint "
                f"takes: {known}"
            )

    def bool_argument(self, name: str, default: bool = False) -> bool:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no"):
            return False
        raise InvalidRequest(f"{name} must be true or false, not {raw!r}")

    def int_argument(
        self, name: str, default: int, minimum: int = 0, maximum: int | None = None
    ) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidRequest(f"{name} must be a whole number, not {raw!r}") from None
        top = MAX_COUNT if maximum is None else maximum
        if not minimum <= value <= top:
            raise InvalidRequest(f"{name} must be between {minimum} and {top}, not {value}")
        return value

    def float_argument(self, name: str, default: float | None) -> float | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            raise InvalidRequest(f"{name} must be a number of seconds, not {raw!r}") from None
        if not value >= 0:
            raise InvalidRequest(f"{name} must be 0 or more")
        return value

    def list_argument(self, name: str) -> list[str]:
        """All values of a query parameter, also comma-separated (``?status=a,b``)."""
        values: list[str] = []
        for raw in self.get_query_arguments(name):
            values.extend(v.strip() for v in raw.split(",") if v.strip())
        return values

    def send(self, model: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(dumps_with_raw(model))

    def location(self, *parts: str) -> str:
        """The URL path of a resource, each part percent-encoded (a header is Latin-1)."""
        base = self.jobserver.server.base_url.rstrip("/")
        return "/".join([base, API_PREFIX, *(quote(p, safe="") for p in parts)])

    async def stream_events(
        self, events: AsyncGenerator[dict[str, Any], None], first: bool = True
    ) -> None:
        """Send ``events`` as ``text/event-stream`` until they end (an ``end`` event) or
        the client goes away. With ``first``, the first event is taken before any header is
        sent, so that a 404 is still an ordinary JSON answer."""
        pending: asyncio.Future[dict[str, Any]] | None = None
        try:
            if first:
                pending = asyncio.ensure_future(events.__anext__())
                await pending
            self.set_header("Content-Type", "text/event-stream")
            self.set_header("Cache-Control", "no-cache")
            self.set_header("X-Accel-Buffering", "no")
            if not first:  # say at once that the stream is open: nothing is missed after
                self.write(f"event: open\ndata: {json.dumps({'time': time.time()})}\n\n")
            await self.flush()
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(events.__anext__())
                done, _ = await asyncio.wait({pending}, timeout=KEEPALIVE)
                if not done:
                    self.write(": keep-alive\n\n")
                    await self.flush()
                    continue
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    break
                pending = None
                data = {k: v for k, v in event.items() if k != "event"}
                data["time"] = time.time()
                payload = dumps_with_raw(data)
                self.write(f"event: {event['event']}\ndata: {payload}\n\n")
                await self.flush()
                if event["event"] == "end":
                    break
        except StreamClosedError:
            pass  # the client went away
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending
            await events.aclose()
        if not self._finished:
            self.finish(set_content_type="text/event-stream")

    # --- errors -------------------------------------------------------------------------

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, JobServerError):
            self.set_status(exc.status)
            body = {"error": exc.code, "message": exc.message}
        elif isinstance(exc, web.HTTPError):
            message = (
                exc.log_message % exc.args if exc.log_message and exc.args else exc.log_message
            )
            body = {
                "error": _HTTP_CODES.get(status_code, "error"),
                "message": message or exc.reason or responses.get(status_code, "error"),
            }
        elif status_code < 500:
            body = {
                "error": _HTTP_CODES.get(status_code, "error"),
                "message": self._reason or responses.get(status_code, "error"),
            }
        else:
            body = {
                "error": "internal_error",
                "message": "the job server hit an unexpected error; the server log has details",
            }
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, JobServerError):
            self.log.info(
                "jobserver: %s %s -> %d %s",
                self.request.method,
                self.request.path,
                value.status,
                value.message,
            )
            return
        super().log_exception(typ, value, tb)
