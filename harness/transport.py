"""Byte pipes to a device from a pyserial URL, with the wire-trace tap.

Any URL pyserial understands works: a tty path (``/dev/ttyUSB0``, a pty ``/dev/pts/5``),
``socket://127.0.0.1:50003``, ``rfc2217://host:port`` (ser2net), ``loop://``.  We reuse
pyserial's URL handlers rather than reinventing them.  Every read has a deadline.
"""

from __future__ import annotations

import time
from typing import Protocol
from urllib.parse import urlsplit

import serial

from . import families
from .errors import LinkDisconnected, LinkTimeout, UsageError
from .safety import Emulated, Guard, Policy, Scanner, Unproven
from .trace import Trace

NO_SPEC = "opened without a device spec, nothing proves this register sacrificial"

SUPPORTED_SCHEMES = ("socket", "rfc2217", "loop", "spy", "alt", "hwgrep", "faulty")


def check_url(url: str) -> None:
    """Reject URLs that cannot be a device before anything is opened."""
    if not url:
        raise UsageError("empty device URL")
    if "://" in url:
        scheme = urlsplit(url).scheme
        if scheme not in SUPPORTED_SCHEMES:
            raise UsageError(
                f"unsupported URL scheme {scheme!r} in {url!r} (use a tty path, socket://, rfc2217:// or loop://)"
            )
        if scheme == "faulty":  # importing harness.faults registers the faulty:// handler with pyserial
            from .faults import parse_faulty_url

            try:
                inner = parse_faulty_url(url)[1]
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            if inner.startswith("faulty:"):  # the guard below the faults sees only the outermost layer
                raise UsageError(f"faulty:// inside faulty:// in {url!r}: one fault schedule per link")
            check_url(inner)


class Port(Protocol):
    """What a pyserial port opened by ``serial_for_url`` offers (every URL handler has these)."""

    timeout: float | None

    @property
    def is_open(self) -> bool: ...

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...

    def open(self) -> None: ...

    def close(self) -> None: ...


class Transport:
    """A pyserial port with deadlines and a trace."""

    def __init__(self, port: Port, url: str, trace: Trace | None = None, guard: Guard | None = None) -> None:
        self._port = port
        self.url = url
        self.trace = trace or Trace()
        self.guard = guard  # None only for an emulated register

    @property
    def port(self) -> Port:
        """The pyserial port underneath (a URL handler's own object, e.g. faulty://'s)."""
        return self._port

    def write(self, data: bytes) -> None:
        """Send ``data``; a destructive request the guard refuses raises SafetyRefusal, nothing sent."""
        if self.guard is not None:
            self.guard.check(data, self.trace)
        if not self._port.is_open:
            raise LinkDisconnected(f"write to {self.url} failed: the link is closed")
        self.trace.tx(data)
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkDisconnected(f"write to {self.url} failed: {exc}") from exc

    def read(self, deadline: float) -> bytes:
        """Return whatever arrives before ``deadline`` (``time.monotonic()``); at least one byte,
        or raise :class:`LinkTimeout`."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LinkTimeout(f"no answer from {self.url}")
        if not self._port.is_open:
            raise LinkDisconnected(f"read from {self.url} failed: the link is closed")
        try:
            self._port.timeout = remaining
            waiting = self._port.in_waiting
            data = self._port.read(waiting or 1)
        except (serial.SerialException, OSError) as exc:
            raise LinkDisconnected(f"read from {self.url} failed: {exc}") from exc
        if not data:
            raise LinkTimeout(f"no answer from {self.url} within the timeout")
        return bytes(data)

    def drain(self) -> bytes:
        """Discard (and return) bytes already waiting: stale answers after a timeout."""
        if not self._port.is_open:
            return b""
        try:
            waiting = self._port.in_waiting
            return bytes(self._port.read(waiting)) if waiting else b""
        except (serial.SerialException, OSError):
            return b""

    def reopen(self, deadline: float) -> None:
        """Close the port and open it again (a cut cable, a dropped TCP connection), trying until
        ``deadline`` (``time.monotonic()``); LinkDisconnected if it does not come back.  The same
        port object is reopened, so a URL handler's own state (a fault schedule) carries on."""
        self.close()
        while True:
            try:
                self._port.open()
            except (serial.SerialException, OSError) as exc:
                if time.monotonic() >= deadline:
                    raise LinkDisconnected(f"cannot reopen {self.url}: {exc}") from exc
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
                continue
            self.trace.note(f"link to {self.url} reopened")
            return

    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass


def open_transport(
    url: str,
    *,
    baudrate: int = 57600,
    timeout: float = 5.0,
    trace: Trace | None = None,
    policy: Policy | None = None,
    scanner: Scanner | None = None,
) -> Transport:
    """Open ``url`` (8N1 at ``baudrate`` for serial ports); LinkDisconnected if it cannot be opened.

    Every transport is guarded (:mod:`harness.safety`): ``policy`` says what this register may
    receive (default: nothing destructive — :class:`~harness.safety.Unproven`; an emulator passes
    :class:`~harness.safety.Emulated`), ``scanner`` finds destructive requests in what is written
    (default: every registered family's).
    """
    check_url(url)
    policy = policy if policy is not None else Unproven(NO_SPEC)
    guard = None
    if not isinstance(policy, Emulated):
        guard = Guard(scanner or families.scan_all, policy, where=url)
    try:
        port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, write_timeout=timeout, do_not_open=True)
        if hasattr(port, "exclusive") and not url.startswith(("socket://", "rfc2217://", "loop://")):
            port.exclusive = True
        deadline = time.monotonic() + timeout
        while True:
            try:
                port.open()
                break
            except (serial.SerialException, OSError) as exc:
                if time.monotonic() >= deadline or "Connection refused" not in str(exc):
                    raise
                time.sleep(0.05)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkDisconnected(f"cannot open {url}: {exc}") from exc
    return Transport(port, url, trace, guard)
