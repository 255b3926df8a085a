"""Firmware version strings: parsed into numbers and compared as numbers, never as text.

``"2.26.0" < "2.3.0"`` as text but not as a version; every firmware gate (deferred
re-registration, the ``firmware(min=...)`` marker, the hub's "updated" status) goes through here.
"""

from __future__ import annotations

import re

_LEADING = re.compile(r"\s*v?(\d+(?:\.\d+)*)")


def parse_version(text: str) -> tuple[int, ...]:
    """``"2.26.0"`` → ``(2, 26, 0)``; ValueError (one line) for anything but dotted digits."""
    parts = text.strip().split(".")
    if not parts or not all(p.isdigit() for p in parts):
        raise ValueError(f"bad firmware version {text!r} (expected digits like 2.26.0)")
    return tuple(int(p) for p in parts)


def leading_version(text: object) -> tuple[int, ...] | None:
    """The leading dotted numbers of what a device reports (``"2.26.0-rc1"`` → (2, 26, 0)); None if none."""
    match = _LEADING.match(str(text))
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def version_at_least(version: object, threshold: object) -> bool:
    """``version >= threshold`` numerically (missing parts count as 0); unparseable is never enough."""
    have, need = leading_version(version), leading_version(threshold)
    if have is None or need is None:
        return False
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) >= need + (0,) * (width - len(need))
