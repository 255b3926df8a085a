"""``rfc2217://HOST:PORT``: pyserial's RFC 2217 client with the harness's deadlines.

pyserial 3.5's client (:class:`serial.rfc2217.Serial`) has two habits a test stand cannot live
with, and this class (the same client otherwise) drops them:

* it refuses ``write_timeout`` (``NotImplementedError`` at open).  Here ``write_timeout`` is the
  TCP socket's timeout: ``sendall`` (a user write, and the reader thread's telnet answers, both
  under pyserial's write lock) gives up after it in total (Python >= 3.5) and pyserial turns the
  ``socket.timeout`` into a SerialException.  Without one the socket keeps pyserial's own 5 s.
* it renegotiates baud rate, data bits, parity, stop bits and flow control -- four
  subnegotiations and at least 50 ms of polling -- whenever ``timeout`` changes, which the
  harness does before every read.  Here the line is negotiated when a line setting changes.

Everything else (telnet option negotiation, its ``?timeout=``/``?ign_set_control`` options,
the reader thread, the read timeout, the 0.3 s pause after close) is pyserial's.  Opening is bounded by pyserial: 5 s to
connect, ``?timeout=`` (3 s) for each negotiation.
"""

from __future__ import annotations

import socket
import warnings

from serial import rfc2217
from serial.serialutil import SerialException

__all__ = ["Serial"]

LineSettings = tuple[int, int, str, float, bool, bool]


class Serial(rfc2217.Serial):
    """pyserial's RFC 2217 client; ``write_timeout`` bounds every send."""

    _socket: socket.socket | None  # pyserial's attributes (the stubs leave them out)
    _write_timeout: float | None

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._negotiated: LineSettings | None = None
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def open(self) -> None:
        self._negotiated = None  # a new connection: the server knows nothing yet
        with warnings.catch_warnings():  # pyserial 3.5 names its reader thread with Thread.setDaemon/setName
            warnings.filterwarnings("ignore", r"set(Daemon|Name)\(\) is deprecated", DeprecationWarning)
            super().open()

    def _line(self) -> LineSettings:
        return (self.baudrate, self.bytesize, self.parity, self.stopbits, self.rtscts, self.xonxoff)

    def _reconfigure_port(self) -> None:
        sock = self._socket
        if sock is None:
            raise SerialException("Can only operate on open ports")
        write_timeout = self._write_timeout
        if write_timeout:  # 0 (non-blocking) would end the reader thread's recv loop: keep pyserial's
            sock.settimeout(write_timeout)
        line = self._line()
        if line == self._negotiated:
            return
        self._write_timeout = None  # pyserial's refusal; the deadline is the socket's (above)
        try:
            super()._reconfigure_port()  # type: ignore[misc]
        finally:
            self._write_timeout = write_timeout
        self._negotiated = line
