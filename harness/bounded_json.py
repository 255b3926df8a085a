"""JSON from untrusted peers (the emulator's control channel, the Dreamkas hub) with bounds.

:func:`loads` is :func:`json.loads` that refuses, with a one-line :class:`BadJson` (a
``ValueError``) instead of a stray exception, what would otherwise escape as something else or
cost too much: bytes that are not UTF-8, nesting deeper than ``max_depth`` (the C scanner
raises ``RecursionError`` near the interpreter's recursion limit), numbers longer than
``max_number_chars`` (Python's int-string-digit limit raises a ``ValueError`` of its own, and
it is a process-wide setting), ``NaN`` / ``Infinity`` and floats that overflow to infinity.
:func:`one_line` makes any message fit a one-line reply.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["MAX_DEPTH", "MAX_NUMBER_CHARS", "BadJson", "dumps_line", "loads", "one_line"]

MAX_DEPTH = 32
MAX_NUMBER_CHARS = 64
MAX_MESSAGE_CHARS = 300


class BadJson(ValueError):
    """Input that is not acceptable JSON; the message is one line."""


def one_line(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """The first line of ``message``, cut to ``limit`` characters (an ellipsis marks a cut)."""
    lines = str(message).splitlines()
    first = lines[0] if lines else ""
    if len(first) > limit or len(lines) > 1:
        first = first[: limit - 1] + "…"
    return first


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH, max_number_chars: int = MAX_NUMBER_CHARS) -> Any:
    """Parse one JSON document within the bounds; :class:`BadJson` on anything else."""
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadJson(f"not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}") from None
    else:
        text = data

    def number(kind: type[int] | type[float]) -> Any:
        def parse(literal: str) -> int | float:
            if len(literal) > max_number_chars:
                raise BadJson(f"a number of {len(literal)} characters (at most {max_number_chars})")
            value = kind(literal)
            if isinstance(value, float) and not math.isfinite(value):
                raise BadJson(f"number {one_line(literal, 40)} is out of range")
            return value

        return parse

    def constant(name: str) -> Any:
        raise BadJson(f"{name} is not JSON")

    try:
        value = json.loads(text, parse_int=number(int), parse_float=number(float), parse_constant=constant)
    except BadJson:
        raise
    except RecursionError:
        raise BadJson(f"nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # json.JSONDecodeError and anything a hook let through
        raise BadJson(one_line(str(exc))) from None
    if _depth_exceeds(value, max_depth):
        raise BadJson(f"nested deeper than {max_depth} levels")
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True if containers nest more than ``limit`` levels (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def dumps_line(value: Any) -> bytes:
    """``value`` as one UTF-8 JSON line; lone surrogates (from ``\\ud800`` escapes in a request
    echoed back) are written as escapes instead of failing the reply."""
    try:
        return (json.dumps(value, ensure_ascii=False) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(value) + "\n").encode("ascii")
