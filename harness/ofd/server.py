"""The emulated OFD: accepts registers' TCP connections, records the documents each ФН sends and
answers every document with a receipt (квитанция).  ``kkt-hil ofd`` serves one
(:func:`serve_ofd_command`).

One thread accepts, one thread serves each connection; every blocking call has a short socket
timeout and polls a stop flag, so :meth:`OfdServer.close` returns promptly and joins them all.
A resent document is recorded again (``documents()`` keeps duplicates), and answered again:
a register that lost a receipt resends, the OFD acknowledges again.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Self

from harness.net import check_loopback, parse_tcp_url

from .protocol import Corrupt, DocumentMessage, MessageReader, encode_receipt

POLL = 0.05  # seconds: socket timeout between looks at the stop flag
JOIN_TIMEOUT = 5.0


class OfdServer:
    """``OfdServer()`` listens on 127.0.0.1 (a free port); ``.url`` is ``tcp://127.0.0.1:PORT``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, allow_lan: bool = False) -> None:
        if not allow_lan:
            check_loopback(host)
        self._listener = socket.create_server((host, port))
        self._listener.settimeout(POLL)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._documents: dict[str, list[DocumentMessage]] = {}
        self._corrupt = 0
        self._connections = 0
        self._threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept, name="ofd-accept", daemon=True)
        self._threads.append(accept)
        accept.start()

    # ------------------------------------------------------------------ what the OFD received

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"tcp://{host}:{port}"

    def documents(self, fn_serial: str) -> list[int]:
        """FD numbers received from this ФН, in arrival order, resends included."""
        with self._lock:
            return [m.number for m in self._documents.get(fn_serial, [])]

    def messages(self, fn_serial: str) -> list[DocumentMessage]:
        with self._lock:
            return list(self._documents.get(fn_serial, []))

    def serials(self) -> list[str]:
        with self._lock:
            return list(self._documents)

    @property
    def corrupt(self) -> int:
        """Stream items that were not messages (bad CRC, bad container)."""
        with self._lock:
            return self._corrupt

    @property
    def connections(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._connections

    # ------------------------------------------------------------------ threads

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), name="ofd-conn", daemon=True)
            with self._lock:
                self._connections += 1
                self._threads = [t for t in self._threads if t.is_alive()]
                self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        reader = MessageReader()
        with conn:
            conn.settimeout(POLL)
            while not self._stop.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                for message in reader.feed(data):
                    if isinstance(message, Corrupt):
                        with self._lock:
                            self._corrupt += 1
                    elif isinstance(message, DocumentMessage):
                        with self._lock:
                            self._documents.setdefault(message.fn_serial, []).append(message)
                        if not self._send(conn, encode_receipt(message.fn_serial, message.number)):
                            return
                    # a receipt sent to the OFD means nothing to it: ignored

    def _send(self, conn: socket.socket, data: bytes) -> bool:
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                sent = conn.send(view)
            except TimeoutError:
                continue
            except OSError:
                return False
            view = view[sent:]
        return not view

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:  # the accept thread first: no connection is added after it
            thread.join(timeout=JOIN_TIMEOUT)
        with self._lock:
            late = [t for t in self._threads if t not in threads]
        for thread in late:
            thread.join(timeout=JOIN_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def serve_ofd_command(listen: str = "tcp://127.0.0.1:0") -> OfdServer:
    """What ``kkt-hil ofd [--listen URL]`` runs: a started server on a loopback ``tcp://`` URL.

    ValueError (bad or non-loopback URL) and OSError (cannot bind) go to the caller, which turns
    them into a usage error; the caller prints ``listening {server.url}``, waits for its stop
    signal, then calls ``close()``.
    """
    host, port = parse_tcp_url(listen)
    return OfdServer(host, port)
