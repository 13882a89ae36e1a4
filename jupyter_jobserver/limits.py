"""Input limits: what any value a client sends may be, checked once before it is used.

Every JSON body (jobs, data documents, queries, edits) and every value a job carries to
a worker passes :func:`check_json` before anything is reserved, queued, stored or run:
a value that a store, a pickle or another JSON reader would choke on later is refused
here, as the client's mistake (a 400 that names where it is), never found later as a
server fault with a worker or a limit counter taken.

The limits:

* depth: arrays and objects nest at most :data:`MAX_DEPTH` levels (pickling and
  storing deeper values recurse past what Python allows);
* count: at most :data:`MAX_VALUES` values in one body;
* numbers: finite (``1e400`` parses as infinity, which no store or JSON reader keeps),
  integers within 64 bits (what MongoDB and SQLite keep as integers);
* text: valid Unicode (a lone surrogate such as ``"\\ud800"`` has no UTF-8 form);
* size: each operation's body limit, answered with 413 (:func:`check_body_size`) before
  the body is read when it announces its length, or as soon as the limit is passed.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequest, TooLarge

#: deepest nesting of arrays and objects in any value a client sends
MAX_DEPTH = 64
#: most values (numbers, strings, arrays, objects ...) in one request body
MAX_VALUES = 10_000_000
#: integers a store keeps exactly: 64-bit signed
MIN_INT = -(2**63)
MAX_INT = 2**63 - 1
#: the body limit of operations whose bodies are small (queries, edits, actions)
SMALL_BODY = 1 << 20


def check_json(value: Any, where: str = "body") -> None:
    """Refuse (400) a decoded JSON value that breaks one of the module's limits.

    The walk is iterative, so the check itself cannot overflow the stack, and it stops
    at the first problem, saying where it is (``kwargs.b``, ``data.rows[3]``).
    """
    count = 0
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise InvalidRequest(f"{where} holds more than {MAX_VALUES:,} values")
        if item is None or item is True or item is False:
            continue
        kind = type(item)
        if kind is str:
            _check_text(item, path)
        elif kind is int:
            if not MIN_INT <= item <= MAX_INT:
                raise InvalidRequest(f"{path}: integers must fit in 64 bits (-2**63 to 2**63 - 1)")
        elif kind is float:
            if item != item or item in (float("inf"), float("-inf")):
                raise InvalidRequest(
                    f"{path}: numbers must be finite (too large for a double, or NaN)"
                )
        elif kind is list or kind is tuple:
            if depth >= MAX_DEPTH:
                raise InvalidRequest(f"{path}: values nest deeper than {MAX_DEPTH} levels")
            for index, element in enumerate(item):
                stack.append((element, f"{path}[{index}]", depth + 1))
        elif kind is dict:
            if depth >= MAX_DEPTH:
                raise InvalidRequest(f"{path}: values nest deeper than {MAX_DEPTH} levels")
            for key, element in item.items():
                if not isinstance(key, str):
                    raise InvalidRequest(f"{path}: object keys must be strings")
                _check_text(key, f"{path} (a key)")
                stack.append((element, f"{path}.{key}", depth + 1))
        elif isinstance(item, bool | int | float | str | list | dict):
            stack.append((_plain(item), path, depth))  # a subclass: check its plain value
            count -= 1
        else:
            raise InvalidRequest(f"{path}: {type(item).__name__} is not a JSON value")


def check_text(text: str, where: str) -> str:
    """``text`` if it is valid Unicode (a query parameter, a name), else a 400."""
    _check_text(text, where)
    return text


def _check_text(text: str, where: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(
            f"{where}: the text is not valid Unicode (a lone surrogate such as \\ud800)"
        ) from None


def _plain(item: Any) -> Any:
    """The plain JSON value of a subclass of one (an ``IntEnum``, a ``str`` subclass)."""
    if isinstance(item, bool):
        return bool(item)
    if isinstance(item, int):
        return int(item)
    if isinstance(item, float):
        return float(item)
    if isinstance(item, str):
        return str(item)
    if isinstance(item, list):
        return list(item)
    return dict(item)


def check_body_size(size: int, limit: int, what: str) -> None:
    """A 413 for a body of ``size`` bytes over ``limit`` (0: no limit)."""
    if limit and size > limit:
        raise TooLarge(
            f"the request body is {size:,} bytes or more; {what} takes at most {limit:,} bytes"
        )
