"""The OFD link proxy: sits between a register and its OFD so the lab can cut, refuse or slow the
link (``lab.ofd`` on lab registers; emulated registers with ``ofd=`` point at it too).

Modes (``set_mode``), applied to new *and* established connections:

* ``pass``  — forward both ways;
* ``block`` — accept the register's connection but forward nothing and answer nothing: the
  register sends its document and never sees a receipt; bytes already buffered are dropped;
* ``refuse`` — close new connections at once (with a reset); established ones are closed too;
* ``delay`` — forward each chunk ``delay`` seconds after it arrived, both ways;
* ``lose_receipts`` — forward the register's bytes to the OFD but drop the OFD's answers: the
  OFD got the document, the register never learns it (the lost-receipt case).

One thread runs a selector over every socket; delays are deadlines on queued chunks, so a slow
connection never blocks another.  The upstream is connected per register connection
(non-blocking, with a deadline): if it is down, the register's connection is closed (the
register retries).  Starting with the upstream down is not an error: see ``check_upstream``.
"""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import struct
import threading
import time
from collections import deque
from types import TracebackType
from typing import Self

from harness.net import check_loopback, parse_tcp_url

from .protocol import Corrupt, MessageReader

MODES = ("pass", "block", "refuse", "delay", "lose_receipts")
CONNECT_TIMEOUT = 2.0  # seconds for the upstream to accept a connection
TICK = 0.05  # longest selector wait when nothing is due
JOIN_TIMEOUT = 5.0


class _Side:
    """One socket of a register ↔ OFD pair, and what waits to be written *to* it."""

    def __init__(self, sock: socket.socket, *, to_register: bool) -> None:
        self.sock = sock
        self.to_register = to_register
        self.queue: deque[tuple[float, bytes]] = deque()  # (due, chunk)
        self.out = bytearray()  # due bytes not yet written
        self.reader = MessageReader()  # counts whole messages written to this socket
        self.eof = False
        self.connected = True
        self.events = 0
        self.peer: _Side = self

    def held(self) -> int:
        return sum(len(chunk) for _, chunk in self.queue) + len(self.out)

    def drop(self) -> None:
        self.queue.clear()
        self.out.clear()


class OfdProxy:
    def __init__(self, listen: str, upstream: str, *, allow_lan: bool = False) -> None:
        host, port = parse_tcp_url(listen)
        self._upstream_url = upstream
        self._upstream = parse_tcp_url(upstream)
        if not allow_lan:
            check_loopback(host)
            check_loopback(self._upstream[0])
        self._lock = threading.Lock()
        self._mode = "pass"
        self._delay = 0.0
        self._mode_changed = False
        self._forwarded = 0
        self._held = 0
        self._stop = threading.Event()
        self._listener = socket.create_server((host, port))
        self._listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._pairs: list[tuple[_Side, _Side, float]] = []  # (register, upstream, connect deadline)
        self._thread = threading.Thread(target=self._loop, name="ofd-proxy", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ lab side

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"tcp://{host}:{port}"

    @property
    def mode(self) -> str:
        with self._lock:
            return self._mode

    @property
    def delay(self) -> float:
        with self._lock:
            return self._delay

    @property
    def forwarded_messages(self) -> int:
        """Whole messages written on, either way (documents to the OFD, receipts to the register)."""
        with self._lock:
            return self._forwarded

    @property
    def held_bytes(self) -> int:
        """Bytes the proxy holds right now (delayed or not yet written), both ways."""
        with self._lock:
            return self._held

    def set_mode(self, mode: str, delay: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(f"OFD proxy mode is one of {', '.join(MODES)}, not {mode!r}")
        if delay < 0 or (mode == "delay" and delay == 0):
            raise ValueError(f"delay mode takes a positive delay in seconds, not {delay!r}")
        with self._lock:
            self._mode, self._delay = mode, (delay if mode == "delay" else 0.0)
            self._mode_changed = True
        self._wake()

    def check_upstream(self, timeout: float = 1.0) -> str | None:
        """None when the upstream accepts a TCP connection, else a one-line reason."""
        try:
            with socket.create_connection(self._upstream, timeout=timeout):
                return None
        except OSError as exc:
            return f"OFD upstream {self._upstream_url} does not accept connections: {exc}"

    def close(self) -> None:
        self._stop.set()
        self._wake()
        self._thread.join(timeout=JOIN_TIMEOUT)
        for register, upstream, _ in list(self._pairs):
            self._close_pair(register, upstream)
        self._selector.close()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # ------------------------------------------------------------------ the selector thread

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, mask in self._selector.select(self._next_timeout()):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                elif isinstance(key.data, _Side):
                    self._on_event(key.data, mask)
            self._apply_mode()
            self._tick(time.monotonic())
            held = sum(side.held() for pair in self._pairs for side in pair[:2])
            with self._lock:
                self._held = held

    def _next_timeout(self) -> float:
        now = time.monotonic()
        dues = [side.queue[0][0] for pair in self._pairs for side in pair[:2] if side.queue]
        dues += [deadline for _, up, deadline in self._pairs if not up.connected]
        return max(0.0, min([now + TICK, *dues]) - now)

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        if self.mode == "refuse":  # RST rather than FIN: the register sees its connection refused at once
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        conn.setblocking(False)
        try:
            family, kind, proto, _, addr = socket.getaddrinfo(*self._upstream, type=socket.SOCK_STREAM)[0]
            up = socket.socket(family, kind, proto)
        except OSError:
            conn.close()
            return
        up.setblocking(False)
        err = up.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            up.close()
            conn.close()
            return
        register, upstream = _Side(conn, to_register=True), _Side(up, to_register=False)
        register.peer, upstream.peer = upstream, register
        upstream.connected = err == 0
        self._pairs.append((register, upstream, time.monotonic() + CONNECT_TIMEOUT))
        self._update(register)
        self._update(upstream)

    def _on_event(self, side: _Side, mask: int) -> None:
        if side.sock.fileno() < 0:  # closed by an earlier event of this round
            return
        if not side.connected:
            if side.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._close_pair(side, side.peer)  # upstream down: the register's connection goes too
                return
            side.connected = True
        if mask & selectors.EVENT_READ:
            try:
                data = side.sock.recv(65536)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data == b"":
                side.eof = True
            elif data:
                self._route(side, data)
        if mask & selectors.EVENT_WRITE:
            self._flush(side)
        self._update(side)

    def _route(self, source: _Side, data: bytes) -> None:
        """Bytes read from ``source``: queue them for its peer, or drop them, per mode."""
        with self._lock:
            mode, delay = self._mode, self._delay
        if mode == "block" or (mode == "lose_receipts" and not source.to_register):
            return
        source.peer.queue.append((time.monotonic() + delay, data))

    def _apply_mode(self) -> None:
        with self._lock:
            if not self._mode_changed:
                return
            self._mode_changed, mode = False, self._mode
        for register, upstream, _ in list(self._pairs):
            if mode == "refuse":
                self._close_pair(register, upstream)
            elif mode == "block":
                register.drop()
                upstream.drop()
            elif mode == "lose_receipts":
                register.drop()

    def _tick(self, now: float) -> None:
        for register, upstream, deadline in list(self._pairs):
            if not upstream.connected and now >= deadline:
                self._close_pair(register, upstream)
                continue
            for side in (register, upstream):
                while side.queue and side.queue[0][0] <= now:
                    side.out += side.queue.popleft()[1]
                if side.out and side.connected:
                    self._flush(side)
            if (register.eof and not upstream.held()) or (upstream.eof and not register.held()):
                self._close_pair(register, upstream)
                continue
            self._update(register)
            self._update(upstream)

    def _flush(self, side: _Side) -> None:
        if not side.out or not side.connected:
            return
        try:
            sent = side.sock.send(side.out)
        except BlockingIOError:
            return
        except OSError:
            self._close_pair(side, side.peer)
            return
        written, side.out[:sent] = bytes(side.out[:sent]), b""
        count = sum(1 for m in side.reader.feed(written) if not isinstance(m, Corrupt))
        if count:
            with self._lock:
                self._forwarded += count

    def _update(self, side: _Side) -> None:
        """Register the socket for what it waits on now (write while connecting or buffered)."""
        if side.sock.fileno() < 0:
            return
        events = selectors.EVENT_WRITE if side.out or not side.connected else 0
        if side.connected and not side.eof:
            events |= selectors.EVENT_READ
        if events == side.events:
            return
        if side.events and events:
            self._selector.modify(side.sock, events, side)
        elif events:
            self._selector.register(side.sock, events, side)
        else:
            self._selector.unregister(side.sock)
        side.events = events

    def _close_pair(self, one: _Side, other: _Side) -> None:
        self._pairs = [p for p in self._pairs if p[0] is not one and p[0] is not other]
        for side in (one, other):
            if side.events:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self._selector.unregister(side.sock)
                side.events = 0
            side.sock.close()
