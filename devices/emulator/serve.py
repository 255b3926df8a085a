"""Serve a byte-level front-end on loopback TCP or on a pseudo-terminal, like a real device
(another TCP address only with ``allow_lan``: the user asked for it explicitly).

A *front-end* is any object with ``feed(data: bytes) -> bytes`` (bytes in from the host, bytes
out to the host), ``pending() -> bool`` (an unfinished frame is buffered) and ``reset()``.  One
front-end is made per connection (frame reassembly is per link); they share the fiscal core.

Engineering notes from reference §8.5: the pty slave is put in raw mode right after
``openpty()`` (0x03 would otherwise be Ctrl-C, 0x11/0x13 XON/XOFF, 0x0D/0x0A translated);
the emulator keeps its own slave fd open so the master never sees EIO when the host closes.
An unfinished frame is dropped after the protocol's inter-byte timeout (Pirit: 200 ms).

A pty has line settings like a serial port (whoever opens the slave -- a driver, ser2net applying
an RFC 2217 client's baud rate -- sets its termios): :meth:`PtyServer.line_settings` reads them.
(A Linux pty keeps the speed and the stop bits; it forces 8 data bits and no parity.)
With ``pace="line"`` the answers leave no faster than that line carries them (a byte is written
once its start, data, parity and stop bits would have crossed the wire: 10 bits at 8N1); off by
default, the tests stay fast.  (TCP has no line: pacing is for ptys.)
"""

from __future__ import annotations

import os
import select
import socket
import termios
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from harness.families import FrontEnd
from harness.net import check_loopback, parse_tcp_url

__all__ = [
    "PACE_MODES",
    "Echo",
    "FrontEnd",
    "LineSettings",
    "PtyServer",
    "Server",
    "TcpServer",
    "check_loopback",
    "parse_tcp_url",
    "serve",
]

FrontEndFactory = Callable[[], FrontEnd]

POLL_INTERVAL = 0.05

#: answer pacing: ``off`` (as fast as the host reads) or ``line`` (the pty's current line rate)
PACE_MODES = ("off", "line")

#: termios speed constants -> bits per second (every ``B<rate>`` this system's termios defines;
#: ser2net and pyserial set these)
_SPEEDS = {getattr(termios, name): int(name[1:]) for name in dir(termios) if name[:1] == "B" and name[1:].isdigit()}
_DATA_BITS = {termios.CS5: 5, termios.CS6: 6, termios.CS7: 7, termios.CS8: 8}


@dataclass(frozen=True)
class LineSettings:
    """A tty's line: ``baudrate`` (0: a speed outside the standard rates), ``bytesize``,
    ``parity`` (pyserial's letters N, E, O, M, S) and ``stopbits``."""

    baudrate: int
    bytesize: int
    parity: str
    stopbits: int

    @property
    def bits_per_byte(self) -> int:
        """Start bit, data bits, parity bit, stop bits: 10 at 8N1, 11 at 8E1 or 8N2."""
        return 1 + self.bytesize + (self.parity != "N") + self.stopbits

    @property
    def byte_time(self) -> float:
        """Seconds one byte takes on this line (0.0 when the speed is unknown)."""
        return self.bits_per_byte / self.baudrate if self.baudrate > 0 else 0.0

    @classmethod
    def of_fd(cls, fd: int) -> LineSettings:
        """The termios of the tty open on ``fd``."""
        _iflag, _oflag, cflag, _lflag, _ispeed, ospeed, _cc = termios.tcgetattr(fd)
        parity = "N"
        if cflag & termios.PARENB:
            odd = bool(cflag & termios.PARODD)
            if cflag & getattr(termios, "CMSPAR", 0):
                parity = "M" if odd else "S"
            else:
                parity = "O" if odd else "E"
        stopbits = 2 if cflag & termios.CSTOPB else 1
        return cls(_SPEEDS.get(ospeed, 0), _DATA_BITS[cflag & termios.CSIZE], parity, stopbits)


class Server(Protocol):
    @property
    def url(self) -> str: ...

    def close(self) -> None: ...


class TcpServer:
    """Accepts any number of sequential or parallel connections (fisGo opens one per command)."""

    def __init__(
        self,
        factory: FrontEndFactory,
        url: str = "tcp://127.0.0.1:0",
        *,
        inter_byte_timeout: float = 0.2,
        allow_lan: bool = False,
    ) -> None:
        host, port = parse_tcp_url(url)
        if not allow_lan:
            check_loopback(host)
        self._factory = factory
        self._timeout = inter_byte_timeout
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(POLL_INTERVAL * 4)
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, name="kkt-tcp-accept", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"socket://{host}:{port}"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="kkt-tcp-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        frontend = self._factory()
        conn.settimeout(self._timeout if self._timeout > 0 else POLL_INTERVAL)
        try:
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    if frontend.pending():
                        frontend.reset()  # inter-byte timeout: drop the unfinished frame
                    continue
                if not data:
                    return
                out = _safe_feed(frontend, data)
                if out:
                    conn.sendall(out)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=2)


class PtyServer:
    """A pseudo-terminal whose slave path is a pyserial URL (``/dev/pts/N``)."""

    def __init__(
        self,
        factory: FrontEndFactory,
        *,
        link: str | None = None,
        inter_byte_timeout: float = 0.2,
        pace: str = "off",
    ) -> None:
        if pace not in PACE_MODES:
            raise ValueError(f"pace is {' or '.join(PACE_MODES)}, not {pace!r}")
        self._pace = pace
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # before any byte can arrive (reference §8.5)
        os.set_blocking(self._master, False)  # a host that stops reading must not block the loop
        self.path = os.ttyname(self._slave)
        self._link = link
        if link:
            if os.path.islink(link):
                os.unlink(link)
            os.symlink(self.path, link)
        self._frontend = factory()
        self._timeout = inter_byte_timeout
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._loop, name="kkt-pty", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return self._link or self.path

    def line_settings(self) -> LineSettings:
        """The pty's current line (its termios, as whoever opened it last set it)."""
        return LineSettings.of_fd(self._slave)

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = self._timeout if self._frontend.pending() else 1.0
            readable, _, _ = select.select([self._master, self._wake_r], [], [], wait)
            if self._wake_r in readable:
                return
            if not readable:
                if self._frontend.pending():
                    self._frontend.reset()
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                return
            if not data:
                return
            out = _safe_feed(self._frontend, data)
            if not self._send(out):
                return

    def _send(self, out: bytes) -> bool:
        """Write an answer to the host (paced with ``pace="line"``); False when the loop must end
        (closing, or the master failed)."""
        view = memoryview(out)
        byte_time = 0.0
        if self._pace == "line" and out:
            try:
                byte_time = self.line_settings().byte_time
            except termios.error:  # the pty is going away: nothing to pace
                pass
        started, sent = time.monotonic(), 0
        while view and not self._stop.is_set():
            chunk = view
            if byte_time > 0:  # byte k leaves once k + 1 bytes' time has passed since the answer was ready
                due = int((time.monotonic() - started) / byte_time) - sent
                if due <= 0:
                    wait = started + (sent + 1) * byte_time - time.monotonic()
                    if self._wake_r in select.select([self._wake_r], [], [], max(0.0, wait))[0]:
                        return False
                    continue
                chunk = view[:due]
            try:
                written = os.write(self._master, chunk)
            except BlockingIOError:
                select.select([], [self._master], [], POLL_INTERVAL)
                continue
            except OSError:
                return False
            view, sent = view[written:], sent + written
        return not self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._link and os.path.islink(self._link):
            os.unlink(self._link)


class Echo:
    """The trivial front-end: answers every byte with itself (a link's floor, for benchmarks and
    the transport's own tests)."""

    def feed(self, data: bytes) -> bytes:
        return data

    def pending(self) -> bool:
        return False

    def reset(self) -> None:
        pass


def _safe_feed(frontend: FrontEnd, data: bytes) -> bytes:
    """A front-end bug must not kill the link: drop the input, keep serving (like a device that
    resets its receiver), and leave a trace on stderr for whoever debugs the emulator."""
    try:
        return frontend.feed(data)
    except Exception as exc:  # noqa: BLE001 - the serving loop outlives any one request
        import sys

        print(
            f"kkt-hil emulator: request dropped after an internal error: {type(exc).__name__}: {exc}", file=sys.stderr
        )
        frontend.reset()
        return b""


def serve(
    factory: FrontEndFactory,
    listen: str,
    *,
    inter_byte_timeout: float = 0.2,
    allow_lan: bool = False,
    pace: str = "off",
) -> Server:
    """``listen`` is ``pty`` (or ``pty:/tmp/link``) or ``tcp://127.0.0.1:PORT`` (a non-loopback
    host only with ``allow_lan``).  ``pace`` (:data:`PACE_MODES`) is for a pty: ValueError on TCP."""
    if listen == "pty" or listen.startswith("pty:"):
        link = listen[4:] or None if listen.startswith("pty:") else None
        return PtyServer(factory, link=link, inter_byte_timeout=inter_byte_timeout, pace=pace)
    if pace != "off":
        raise ValueError(f"pace={pace} needs a pty (a TCP link has no line speed): serve on pty")
    return TcpServer(factory, listen, inter_byte_timeout=inter_byte_timeout, allow_lan=allow_lan)
