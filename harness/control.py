"""Client of an emulator's control channel (the JSON-lines contract of DESIGN.md "Command line").

One JSON object per line out, one JSON reply per line back, over loopback TCP.  The server side
lives with the emulator (``devices/emulator/control.py``); the harness needs only this client,
for ``url:…#model=kf&control=tcp://127.0.0.1:PORT`` specs and lab scripts.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

from .net import check_loopback, parse_tcp_url

Reply = dict[str, Any]


class ControlClient:
    """Talks to a control channel out of process (``tcp://127.0.0.1:PORT``); every read has a timeout."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        host, port = parse_tcp_url(url)
        check_loopback(host)
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.settimeout(timeout)
        self._file = self._sock.makefile("rwb")
        self._lock = threading.Lock()

    def request(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self._file.write((json.dumps(request, ensure_ascii=False) + "\n").encode("utf-8"))
            self._file.flush()
            line = self._file.readline()
        if not line:
            raise ConnectionError("control channel closed")
        reply = json.loads(line.decode("utf-8"))
        if not isinstance(reply, dict):
            raise ValueError(f"control channel answered {type(reply).__name__}, not a JSON object")
        return reply

    __call__ = request

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._sock.close()
