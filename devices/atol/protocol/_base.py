"""The codec's error type and the byte-level checks every layer of the package shares.

Not a protocol layer of its own: :class:`CodecError` is what all of ``/work/shared/reference/
protocols.md`` §3.2–§3.5 raise on malformed input; :func:`hex_text`, :func:`need` and
:func:`check_byte` keep their messages uniform.  Package-internal helpers, not in ``__all__``.
"""

from __future__ import annotations


class CodecError(ValueError):
    """Bytes or values that the ATOL codec cannot encode or decode."""


def hex_text(data: bytes, limit: int = 48) -> str:
    """Upper-case spaced hex, cut after ``limit`` bytes (for messages and the trace)."""
    data = bytes(data)
    if len(data) <= limit:
        return data.hex(" ").upper()
    return data[:limit].hex(" ").upper() + f" ...(+{len(data) - limit})"


def need(data: bytes, size: int, what: str) -> None:
    """Raise :class:`CodecError` unless ``data`` holds at least ``size`` bytes."""
    if len(data) < size:
        raise CodecError(f"{what}: need {size} bytes, got {len(data)} ({hex_text(data)})")


def check_byte(value: int, what: str) -> int:
    """``value`` if it is an int in 0..255, else :class:`CodecError` naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise CodecError(f"{what} must be a byte (0..255), got {value!r}")
    return value
