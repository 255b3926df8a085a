"""Byte pipes to a device from a pyserial URL, with the wire-trace tap.

Any URL pyserial understands works: a tty path (``/dev/ttyUSB0``, a pty ``/dev/pts/5``),
``socket://127.0.0.1:50003``, ``rfc2217://host:port`` (ser2net), ``loop://``, and any scheme
of a handler package in ``serial.protocol_handler_packages`` (a module ``protocol_<scheme>``:
pyserial's own, the harness's ``faulty://`` and ``rfc2217://`` (:mod:`harness.urlhandler`), a
user's).  We reuse pyserial's URL handlers rather than reinventing them.  Every read has a
deadline, and so has every write: ``write_timeout`` (a handler that refuses it writes without
one of ours, and the trace says so).
"""

from __future__ import annotations

import importlib
import math
import os
import pkgutil
import re
import select
import time
from typing import Protocol

import serial

from . import families
from . import urlhandler as _urlhandler  # noqa: F401 - registers rfc2217:// with deadlines first
from .errors import LinkDisconnected, LinkTimeout, UsageError
from .safety import Emulated, Guard, Policy, Scanner, Unproven
from .trace import Trace

NO_SPEC = "opened without a device spec, nothing proves this register sacrificial"
HANDLER_PREFIX = "protocol_"
_SCHEME = re.compile(r"[a-z][a-z0-9_]*")  # what can name a handler module


def _has_handler(scheme: str) -> bool:
    """Whether ``serial_for_url`` finds a handler for ``scheme`` (it imports the same way)."""
    for package in list(serial.protocol_handler_packages):
        try:
            importlib.import_module(package)
            importlib.import_module(f".{HANDLER_PREFIX}{scheme}", package)
        except ImportError:
            continue
        return True
    return False


def url_schemes() -> list[str]:
    """The URL schemes pyserial can open here: the ``protocol_<scheme>`` modules of
    ``serial.protocol_handler_packages`` that import (pyserial's cp2110:// needs ``hid``)."""
    from . import faults  # noqa: F401 - registers faulty://

    names: set[str] = set()
    for package in list(serial.protocol_handler_packages):
        try:
            path = importlib.import_module(package).__path__
        except (ImportError, AttributeError):
            continue
        names.update(
            m.name[len(HANDLER_PREFIX) :] for m in pkgutil.iter_modules(path) if m.name.startswith(HANDLER_PREFIX)
        )
    return sorted(name for name in names if _SCHEME.fullmatch(name) and _has_handler(name))


#: --kkt spec kinds (harness.spec), which a URL is not
SPEC_KINDS = ("emulator", "url", "lab", "pool", "labgrid")


def check_url(url: str) -> None:
    """Reject URLs that cannot be a device before anything is opened."""
    if not url:
        raise UsageError("empty device URL")
    kind = url.split(":", 1)[0]
    if kind in SPEC_KINDS and not url.startswith(f"{kind}://"):
        raise UsageError(f"{url!r} is a --kkt device spec, not a pyserial URL (a tty path, socket://, rfc2217://, …)")
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()  # as serial_for_url reads it
        if scheme == "faulty":  # importing harness.faults registers the faulty:// handler with pyserial
            from .faults import parse_faulty_url

            try:
                inner = parse_faulty_url(url)[1]
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            if inner.startswith("faulty:"):  # the guard below the faults sees only the outermost layer
                raise UsageError(f"faulty:// inside faulty:// in {url!r}: one fault schedule per link")
            check_url(inner)
            return
        if not (_SCHEME.fullmatch(scheme) and _has_handler(scheme)):
            available = ", ".join(f"{name}://" for name in url_schemes())
            raise UsageError(
                f"unsupported URL scheme {scheme!r} in {url!r}: pyserial has no protocol_{scheme} handler "
                f"(available: {available}; or a tty path like /dev/ttyUSB0)"
            )


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
            if type(self._port) is POSIX_TTY:
                _write_tty(self._port, data)
            else:
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
            if type(self._port) is POSIX_TTY:
                data = _read_tty(self._port, deadline)
            else:
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


POSIX_TTY = serial.Serial if os.name == "posix" else None  # pyserial's serialposix.Serial


def _write_tty(port: Port, data: bytes) -> None:
    """``port.write(data)`` and ``port.flush()`` of a posix pyserial port (the same write timeout),
    without pyserial's timer object and its wait for the port to be writable again once all is
    written."""
    fd: int = port.fd  # type: ignore[attr-defined]  # serialposix.Serial
    view = memoryview(data)
    deadline: float | None = None
    while True:
        try:
            view = view[os.write(fd, view) :]
        except (BlockingIOError, InterruptedError):
            pass
        if not view:
            break
        if deadline is None:
            timeout = port.write_timeout  # type: ignore[attr-defined]
            deadline = math.inf if timeout is None else time.monotonic() + timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([], [fd], [], None if remaining == math.inf else remaining)[1]:
            raise serial.SerialTimeoutException("Write timeout")
    port.flush()  # tcdrain


def _read_tty(port: Port, deadline: float) -> bytes:
    """What ``read(in_waiting or 1)`` of a posix pyserial port returns (at least one byte; b""
    at the deadline), but waiting on its descriptor directly: setting ``port.timeout`` before
    every read costs a termios reconfiguration and an flock, and in_waiting an ioctl."""
    fd: int = port.fd  # type: ignore[attr-defined]  # serialposix.Serial
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return b""
        try:
            data = os.read(fd, 4096)
        except (BlockingIOError, InterruptedError):
            continue  # as pyserial: not ready after all, wait again
        if not data:  # as pyserial: a disconnected device is readable but gives nothing
            raise serial.SerialException(
                "device reports readiness to read but returned no data "
                "(device disconnected or multiple access on port?)"
            )
        return data


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
        if _locks_a_tty(port):
            port.exclusive = True
        _open(port, time.monotonic() + timeout)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise LinkDisconnected(f"cannot open {url}: {exc}{_hint(url, exc)}") from exc
    transport = Transport(port, url, trace, guard)
    if port.write_timeout is None:
        transport.trace.note(f"{url}: the URL handler refuses write_timeout, writes have no deadline of ours")
    return transport


def _locks_a_tty(port: serial.Serial) -> bool:
    """Exclusive access (flock) means something only on a local tty: pyserial's native port (and
    its subclasses: spy://, alt://, hwgrep://) or faulty://, which hands it to its inner port.
    A network client (socket://, rfc2217://) or loop:// shares nothing lockable."""
    from .faults.protocol_faulty import Serial as FaultySerial

    return isinstance(port, serial.Serial | FaultySerial)


def _open(port: serial.Serial, deadline: float) -> None:
    """Open ``port``; a refused connection (a server still starting) is tried again until
    ``deadline``.  A handler that refuses write_timeout (NotImplementedError) opens without it."""
    while True:
        try:
            port.open()
            return
        except NotImplementedError as exc:
            if "write_timeout" not in str(exc) or port.write_timeout is None:
                raise serial.SerialException(f"{type(exc).__name__}: {exc}") from exc
            port.close()
            port.write_timeout = None
        except (serial.SerialException, OSError) as exc:
            if time.monotonic() >= deadline or "Connection refused" not in str(exc):
                raise
            time.sleep(0.05)


def _hint(url: str, exc: BaseException) -> str:
    """What to do about an RFC 2217 server that does not acknowledge DTR/RTS."""
    if (
        url.lower().startswith("rfc2217://")
        and "waiting for option 'control'" in str(exc)
        and "ign_set_control" not in url
    ):
        return (
            " (the server did not acknowledge DTR/RTS: ser2net exporting a pty answers nothing, a pty has no "
            "modem lines; add ?ign_set_control to the URL)"
        )
    return ""
