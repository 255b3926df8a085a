"""Loopback TCP peers for the stand's own tests: a control channel that hangs up at once
(tests/conftest.py), registers that answer garbage or nothing (tests/contract/conftest.py,
tests/test_cli_probe.py).

Plain sockets on 127.0.0.1, not the emulator's ``TcpServer``, so that a hostile peer does not
depend on the code under test.  Every blocking call polls a stop flag (``close()`` does not wake
a blocked ``accept()`` or ``recv()``), and ``close()`` joins every thread it started.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

JOIN_TIMEOUT = 5.0


class LoopbackPeer:
    """Accepts on 127.0.0.1 until closed.  Each connection is handed to ``handler`` in a thread of
    its own, with ``poll`` as its socket timeout, and closed when the handler returns; without a
    handler it is closed at once (a peer that died)."""

    def __init__(self, handler: Callable[[socket.socket], None] | None = None, *, poll: float = 0.05) -> None:
        self._handler = handler
        self._poll = poll
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(poll)
        self.port: int = self._listener.getsockname()[1]
        self.stopping = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(self._poll)
            if self._handler is not None and not self.stopping.is_set():
                self._handler(conn)

    def close(self) -> None:
        self.stopping.set()
        self._listener.close()
        for thread in self._threads:  # the accept thread first: no connection is added after it
            thread.join(timeout=JOIN_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AnsweringPeer(LoopbackPeer):
    """A "register" that answers every chunk it reads with ``payload()`` — or, with ``respond``,
    with ``respond(chunk)`` — (``b""``: it reads everything and never answers, a register that is
    off); ``reads`` counts the chunks."""

    def __init__(
        self,
        payload: Callable[[], bytes] = bytes,
        *,
        respond: Callable[[bytes], bytes] | None = None,
        poll: float = 0.05,
    ) -> None:
        self._respond = respond or (lambda _chunk: payload())
        self.reads = 0
        super().__init__(self._answer, poll=poll)

    def _answer(self, conn: socket.socket) -> None:
        while not self.stopping.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.reads += 1
            reply = self._respond(data)
            if reply:
                try:
                    conn.sendall(reply)
                except OSError:
                    return
