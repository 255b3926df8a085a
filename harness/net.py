"""Addresses the stand listens on or connects to: ``tcp://HOST:PORT`` URLs and the loopback rule.

Tests and the emulators talk only to loopback (127.0.0.1); every server of the stand (emulator
wire and control channel, the hub, the emulated OFD) checks its address here.  A server listens
on another address only with ``allow_lan``, which comes from the user asking for it explicitly
(``kkt-hil emulate|hub|ofd --allow-lan``, an inventory's own addresses), never from a default.
:class:`ConnectionServer` is the threaded TCP server of the lab's simulated instruments and the
emulated OFD.
"""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Self
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


# ------------------------------------------------------------------ a threaded loopback server

POLL = 0.05  # seconds: the socket timeout between looks at the stop flag


class _Connection(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        assert isinstance(server, ConnectionServer)
        self.request.settimeout(POLL)
        server.count_connection()
        server.serve_connection(self.request)


class ConnectionServer(socketserver.ThreadingTCPServer):
    """Accepts on ``host:port`` (loopback unless ``allow_lan``) in a thread of its own and serves
    each connection in another with :meth:`serve_connection`, which subclasses define.  Every
    socket has a short timeout and :meth:`chunks`/:meth:`send_all` poll :attr:`stopping`, so
    :meth:`close` returns promptly and joins every thread."""

    allow_reuse_address = True
    daemon_threads = False  # tracked, so that server_close() joins them
    block_on_close = True

    def __init__(self, host: str, port: int, *, name: str, allow_lan: bool = False) -> None:
        if not allow_lan:
            check_loopback(host)
        self.stopping = threading.Event()
        self._count_lock = threading.Lock()
        self._connections = 0
        super().__init__((host, port), _Connection)
        self.host: str = self.socket.getsockname()[0]
        self.port: int = self.socket.getsockname()[1]
        self._thread = threading.Thread(target=self.serve_forever, args=(POLL,), name=name, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._count_lock:
            return self._connections

    def count_connection(self) -> None:
        with self._count_lock:
            self._connections += 1

    def serve_connection(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def chunks(self, conn: socket.socket) -> Iterator[bytes]:
        """What the peer sends, chunk by chunk, until it hangs up or the server stops."""
        while not self.stopping.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            yield data

    def send_all(self, conn: socket.socket, data: bytes) -> bool:
        """Everything written (True), or the peer is gone or the server stopping (False)."""
        view = memoryview(data)
        while view and not self.stopping.is_set():
            try:
                sent = conn.send(view)
            except TimeoutError:
                continue
            except OSError:
                return False
            view = view[sent:]
        return not view

    def close(self) -> None:
        """Stop accepting, end every connection and join every thread.  Idempotent."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
