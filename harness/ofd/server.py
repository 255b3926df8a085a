"""The emulated OFD: accepts registers' TCP connections, records the documents each ФН sends and
answers every document with a receipt (квитанция).  ``kkt-hil ofd`` serves one
(:func:`serve_ofd_command`).

One thread accepts, one thread serves each connection (:class:`harness.net.ConnectionServer`), so
:meth:`OfdServer.close` returns promptly and joins them all.
A resent document is recorded again (``documents()`` keeps duplicates), and answered again:
a register that lost a receipt resends, the OFD acknowledges again.
"""

from __future__ import annotations

import socket
import threading

from harness.net import ConnectionServer, parse_tcp_url

from .protocol import Corrupt, DocumentMessage, MessageReader, encode_receipt


class OfdServer(ConnectionServer):
    """``OfdServer()`` listens on 127.0.0.1 (a free port); ``.url`` is ``tcp://127.0.0.1:PORT``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, allow_lan: bool = False) -> None:
        self._lock = threading.Lock()
        self._documents: dict[str, list[DocumentMessage]] = {}
        self._corrupt = 0
        super().__init__(host, port, name="ofd-accept", allow_lan=allow_lan)

    # ------------------------------------------------------------------ what the OFD received

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

    # ------------------------------------------------------------------ one connection

    def serve_connection(self, conn: socket.socket) -> None:
        reader = MessageReader()
        for data in self.chunks(conn):
            for message in reader.feed(data):
                if isinstance(message, Corrupt):
                    with self._lock:
                        self._corrupt += 1
                elif isinstance(message, DocumentMessage):
                    with self._lock:
                        self._documents.setdefault(message.fn_serial, []).append(message)
                    if not self.send_all(conn, encode_receipt(message.fn_serial, message.number)):
                        return
                # a receipt sent to the OFD means nothing to it: ignored


def serve_ofd_command(listen: str = "tcp://127.0.0.1:0") -> OfdServer:
    """What ``kkt-hil ofd [--listen URL]`` runs: a started server on a loopback ``tcp://`` URL.

    ValueError (bad or non-loopback URL) and OSError (cannot bind) go to the caller, which turns
    them into a usage error; the caller prints ``listening {server.url}``, waits for its stop
    signal, then calls ``close()``.
    """
    host, port = parse_tcp_url(listen)
    return OfdServer(host, port)
