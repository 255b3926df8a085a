"""A loopback TCP proxy that injects faults on the byte stream, for clients that cannot use the
``faulty://`` URL handler (a POS developer's own cash software).

    proxy = FaultProxy("tcp://127.0.0.1:50003", parse_schedule("seed:7,p:0.01"))
    ...point the client at proxy.url (tcp://127.0.0.1:PORT)...; proxy.injected; proxy.close()

Client → upstream is ``tx``, upstream → client is ``rx``, as for the URL handler; one
:class:`~harness.faults.schedule.Injector` serves every connection of the proxy, in the order
the bytes pass, so a client that reconnects after a disconnect goes on with the schedule (the
same fault does not strike again).  A delay stalls that direction ``hold`` seconds (default
:data:`DEFAULT_HOLD`); a disconnect closes both sockets of the connection.  Listens and connects
on loopback only unless ``allow_lan``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

from harness import families
from harness.net import ConnectionServer, check_loopback, parse_tcp_url

from .schedule import Fault, Injector, Schedule

DEFAULT_HOLD = 1.0  # seconds a delay lasts when the schedule names no hold
CONNECT_TIMEOUT = 2.0
JOIN_TIMEOUT = 5.0


class _Server(ConnectionServer):
    def __init__(self, proxy: FaultProxy, host: str, port: int, *, allow_lan: bool) -> None:
        self.proxy = proxy
        super().__init__(host, port, name="fault-proxy", allow_lan=allow_lan)

    def serve_connection(self, conn: socket.socket) -> None:
        self.proxy._serve(self, conn)


class FaultProxy:
    """Forwards ``listen`` (default ``tcp://127.0.0.1:0``) to ``upstream`` with ``schedule``'s faults."""

    def __init__(
        self, upstream: str, schedule: Schedule, *, listen: str = "tcp://127.0.0.1:0", allow_lan: bool = False
    ) -> None:
        host, port = parse_tcp_url(listen)
        self.upstream = parse_tcp_url(upstream)
        if not allow_lan:
            check_loopback(self.upstream[0])
        self.schedule = schedule
        self.hold = schedule.hold if schedule.hold is not None else DEFAULT_HOLD
        self._injector = Injector(schedule)
        self.refused = 0  # requests the faults turned destructive, not delivered
        self._lock = threading.Lock()
        self.listeners: list[Callable[[Fault], None]] = []
        self._injector.on_fault.append(self._announce)
        self._active: set[threading.Event] = set()  # one per open connection: set it to end that one
        self._server = _Server(self, host, port, allow_lan=allow_lan)

    @property
    def url(self) -> str:
        """``tcp://127.0.0.1:PORT`` (``socket://`` for pyserial)."""
        return self._server.url

    @property
    def injected(self) -> list[Fault]:
        with self._lock:
            return list(self._injector.injected)

    def close(self) -> None:
        """Stop accepting, end every connection (a delay in progress too) and join the threads."""
        with self._lock:
            active = list(self._active)
        for done in active:
            done.set()
        self._server.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _announce(self, fault: Fault) -> None:
        for listener in list(self.listeners):
            with contextlib.suppress(Exception):
                listener(fault)

    # ------------------------------------------------------------------ one connection

    def _serve(self, server: _Server, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=CONNECT_TIMEOUT)
        except OSError:
            return  # the client's connection is closed: the upstream is down
        with upstream:
            upstream.settimeout(client.gettimeout())
            done = threading.Event()
            with self._lock:
                self._active.add(done)
            rx = threading.Thread(target=self._pump, args=(server, upstream, client, "rx", done), daemon=True)
            rx.start()
            self._pump(server, client, upstream, "tx", done)
            for sock in (client, upstream):  # wake the other pump: the connection is over
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            rx.join(timeout=JOIN_TIMEOUT)
            with self._lock:
                self._active.discard(done)

    def _pump(
        self, server: _Server, source: socket.socket, sink: socket.socket, direction: str, done: threading.Event
    ) -> None:
        try:
            for chunk in server.chunks(source):
                if done.is_set():
                    return
                with self._lock:
                    outcome = self._injector.feed(direction, chunk)
                if direction == "tx" and outcome.faults and _makes_destructive(chunk, outcome.data + outcome.held):
                    self.refused += 1  # faults never make a destructive request: the connection is cut
                    return
                if outcome.data and not server.send_all(sink, outcome.data):
                    return
                if outcome.cut is not None:
                    return
                if outcome.held:
                    if done.wait(self.hold) or server.stopping.is_set():
                        return
                    if not server.send_all(sink, outcome.held):
                        return
        finally:
            done.set()
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _makes_destructive(sent: bytes, faulted: bytes) -> bool:
    """Did the faults turn ``sent`` into more destructive requests than it held (a corrupted Z
    report that became a ФН close, a replayed registration)?  Whatever the upstream is."""
    return len(families.scan_all(faulted)[0]) > len(families.scan_all(sent)[0])
