"""What a client may send at all: one check at the edges for every JSON body and event.

A hostile or broken client can send JSON that Python decodes but the rest of the
server cannot take: nesting deep enough to exhaust the stack (``RecursionError``),
an integer of thousands of digits (``ValueError`` from the int-digits limit, and
slow to parse), ``NaN`` and ``Infinity``, numbers no SQL ``INTEGER`` column holds
(PostgreSQL refuses ids of 2**31 and more), NUL characters (PostgreSQL refuses
them in text) and lone UTF-16 surrogates (not encodable as UTF-8). :func:`loads`
decodes and :func:`check` walks an already decoded value; both raise
:class:`~server.errors.BadRequest` with a reason, so every such input is a 400
(or a ``bad_request`` ack), never a crash deeper in.

Pure functions: the HTTP edge (``read_json``), the query string and path checks,
and the socket.io packet decoder call them.
"""

from __future__ import annotations

import json
import math
import re

from ..errors import BadRequest, Phrase

#: arrays and objects inside each other: our payloads need 4 (a custom voting rule)
MAX_DEPTH = 32
#: the range of an SQL INTEGER, which every id, seq and count here is stored in
MIN_INT, MAX_INT = -(2**31), 2**31 - 1
#: longer digit strings are refused before Python converts them (the slow part)
MAX_NUMBER_CHARS = 40

#: NUL (PostgreSQL text cannot hold it) and UTF-16 surrogates (no UTF-8 for them)
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored (None: it can)."""
    found = _BAD_TEXT.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return Phrase("contains a NUL character")
    return Phrase("contains a lone UTF-16 surrogate (not valid Unicode text)")


def check_text(text: str, what: str = "the text") -> str:
    problem = text_problem(text)
    if problem:
        raise BadRequest("{what} {problem}", params={"what": what, "problem": Phrase(problem)})
    return text


def check(value: object, what: str = "the payload") -> object:
    """Refuse what no handler can take; return ``value`` unchanged otherwise.

    Walks without recursion, so a deep value is refused at ``MAX_DEPTH``, not by
    the interpreter's stack.
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, f"a text in {what}")
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not MIN_INT <= item <= MAX_INT:
                raise BadRequest(
                    "a number in {what} is out of range ({min_int} to {max_int})",
                    params={"what": what, "min_int": MIN_INT, "max_int": MAX_INT},
                )
        elif isinstance(item, float):
            if not math.isfinite(item) or not MIN_INT <= item <= MAX_INT:
                raise BadRequest(
                    "a number in {what} is out of range ({min_int} to {max_int})",
                    params={"what": what, "min_int": MIN_INT, "max_int": MAX_INT},
                )
        elif isinstance(item, (list, tuple, dict)):
            if depth >= MAX_DEPTH:
                raise BadRequest(
                    "{what} is nested more than {max_depth} levels deep",
                    params={"what": what, "max_depth": MAX_DEPTH},
                )
            if isinstance(item, dict):
                for key, inner in item.items():
                    if not isinstance(key, str):
                        raise BadRequest("{what} has a key that is not text", params={"what": what})
                    check_text(key, f"a key in {what}")
                    stack.append((inner, depth + 1))
            else:
                stack.extend((inner, depth + 1) for inner in item)
        else:  # e.g. a socket.io binary attachment: no event of ours takes one
            raise BadRequest(
                "{what} holds a {type}, which is not accepted",
                params={"what": what, "type": type(item).__name__},
            )
    return value


def parse_id(raw: object) -> int | None:
    """A row id as a client may give it: a whole number, or its decimal digits.

    None for anything else, and for numbers no id column holds (PostgreSQL's
    INTEGER stops at 2**31 - 1; asking it for more is an error, not "no row").
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, str):
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 10:
            return None  # int() would also take " 7", "+7", "7_0" and "٧"
        raw = int(raw)
    if isinstance(raw, int) and 0 < raw <= MAX_INT:
        return raw
    return None


def _number(text: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        raise BadRequest(
            "a number has more than {max_number_chars} characters",
            params={"max_number_chars": MAX_NUMBER_CHARS},
        )


def _int(text: str) -> int:
    _number(text)
    return int(text)


def _float(text: str) -> float:
    _number(text)
    return float(text)


def _constant(name: str) -> None:
    raise BadRequest("{name} is not a number JSON allows", params={"name": name})


def loads(data: str | bytes, what: str = "the body") -> object:
    """Decode JSON text (bytes must be UTF-8) and :func:`check` it."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(
                "{what} is not UTF-8 text (byte {start})", params={"what": what, "start": exc.start}
            ) from None
    try:
        value = json.loads(data, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise BadRequest(
            "{what} is nested more than {max_depth} levels deep",
            params={"what": what, "max_depth": MAX_DEPTH},
        ) from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            "{what} is not JSON: {msg} (line {lineno}, column {colno})",
            params={"what": what, "msg": exc.msg, "lineno": exc.lineno, "colno": exc.colno},
        ) from None
    except ValueError as exc:  # a conversion json left to Python
        raise BadRequest(
            "{what} is not valid JSON: {error}", params={"what": what, "error": str(exc)[:100]}
        ) from None
    return check(value, what)
