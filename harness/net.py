"""Addresses the stand listens on or connects to: ``tcp://HOST:PORT`` URLs and the loopback rule.

Tests and the emulators talk only to loopback (127.0.0.1); every server of the stand (emulator
wire and control channel, the hub) checks its address here.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def parse_tcp_url(url: str) -> tuple[str, int]:
    """``tcp://127.0.0.1:0`` (or ``socket://…``) → (host, port); ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("tcp", "socket") or not parts.hostname:
        raise ValueError(f"expected tcp://127.0.0.1:PORT, got {url!r}")
    try:
        port = parts.port if parts.port is not None else 0
    except ValueError:
        raise ValueError(f"bad port in {url!r}") from None
    return parts.hostname, port


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_loopback(host: str) -> None:
    """The stand binds and connects only to loopback (network safety rule)."""
    if not is_loopback(host):
        raise ValueError(f"only loopback addresses are allowed (127.0.0.1), not {host!r}")
