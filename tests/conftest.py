"""Fixtures shared by the stand's own tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest


@pytest.fixture
def dead_control_url() -> Iterator[str]:
    """A loopback listener that accepts and hangs up at once: a control channel whose emulator died."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # poll the stop flag: close() does not wake a blocked accept()
    stop = threading.Event()

    def accept_and_close() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)
