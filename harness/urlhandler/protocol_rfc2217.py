"""``rfc2217://HOST:PORT``: pyserial's RFC 2217 client with the harness's deadlines.

pyserial 3.5's client (:class:`serial.rfc2217.Serial`) has habits a test stand cannot live
with, and this class (the same client otherwise: its telnet option and subnegotiation state
machines and handlers, its ``?timeout=``/``?ign_set_control``/``?poll_modem``/``?logging=``
options and its messages) drops them:

* it refuses ``write_timeout`` (``NotImplementedError`` at open).  Here ``write_timeout`` is the
  TCP socket's timeout: ``sendall`` (a user write, and a telnet answer, both under pyserial's
  write lock) gives up after it in total (Python >= 3.5) and pyserial turns the
  ``socket.timeout`` into a SerialException.  Without one the socket keeps pyserial's own 5 s.
* it renegotiates baud rate, data bits, parity, stop bits and flow control -- four
  subnegotiations and at least 50 ms of polling -- whenever ``timeout`` changes, which the
  harness does before every read.  Here the line is negotiated when a line setting changes.
* it waits for the server by polling: a 50 ms sleep before each look at the telnet options, the
  line settings and each purge, and a fixed 0.1 s after each DTR/RTS/flow-control request with
  ``?ign_set_control`` (whose answer it ignores) -- about 0.5 s to open a port.  Here a wait
  for an answer receives from the socket until the answer is there, with pyserial's deadline
  (``?timeout=``, 3 s) and its messages when the deadline passes; with ``?ign_set_control``
  nothing is waited for (TCP keeps the requests in order anyway).
* a reader thread of its own receives, queues every byte as its own ``queue.Queue`` item (one
  ``get`` a byte in ``read``; ``in_waiting`` counts the items), and its start and every answer
  handed from it to the reader cost a thread switch.  Here there is no thread: whoever reads
  (``read``, ``in_waiting``, a wait for an answer) receives what the server sent, with
  ``poll`` on the socket and at most the time left, parses each block with ``bytes.find`` for
  the telnet IAC, hands telnet commands to pyserial's handlers and appends the data between to
  one buffer; ``read`` takes from it up to ``size`` with pyserial's ``timeout`` semantics.
  What the server sends while nobody reads waits in the socket, as bytes wait in a tty.  When
  the connection ends, ``read`` returns what was received and then raises SerialException
  (pyserial returned an empty read once first, which reads like a timeout).
* its ``close`` sleeps 0.3 s "in case of quick reconnects".  Here close shuts the socket and
  returns: a server still busy with the old connection is what ``harness.transport``'s open
  already retries (a refused connection, until its deadline), and ser2net's ``kickolduser``
  replaces a connection it has not seen close.

Opening is bounded: 5 s to connect (pyserial's), ``?timeout=`` for the telnet options, the
line settings and each acknowledged request.  One thread receives at a time (a lock); writing
from another thread meanwhile is fine, and so is ``close`` (it wakes a blocked read).
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable

from serial import rfc2217 as r
from serial.rfc2217 import (
    BINARY,
    COM_PORT_OPTION,
    DO,
    DONT,
    ECHO,
    IAC,
    INACTIVE,
    REQUESTED,
    SGA,
    WILL,
    WONT,
    TelnetOption,
    TelnetSubnegotiation,
)
from serial.serialutil import PortNotOpenError, SerialException, Timeout

__all__ = ["Serial"]

LineSettings = tuple[int, int, str, float, bool, bool]
CONNECT_TIMEOUT = 5  # pyserial's
RECV_SIZE = 4096
NEGOTIATION = (DO, DONT, WILL, WONT)
GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


class Serial(r.Serial):
    """pyserial's RFC 2217 client; ``write_timeout`` bounds every send, waits are on answers."""

    # pyserial's attributes (the stubs leave them out)
    _socket: socket.socket | None
    _write_timeout: float | None
    _network_timeout: float
    _ignore_set_control_answer: bool
    _poll_modem_state: bool
    _modemstate: int | None
    _modemstate_timeout: Timeout
    _telnet_options: list[TelnetOption]
    _rfc2217_port_settings: dict[str, TelnetSubnegotiation]
    _rfc2217_options: dict[str, TelnetSubnegotiation]

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._negotiated: LineSettings | None = None
        self._socket_timeout: float | None = None
        self._receiving = threading.Lock()  # one receiver at a time
        self._poller: select.poll | None = None
        self._received = bytearray()  # data from the server not read yet
        self._ended = True  # the connection is gone (or not there yet): nothing more will come
        self._mode = r.M_NORMAL  # the telnet parser's state between blocks
        self._suboption: bytearray | None = None
        self._command = b""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ receiving

    def _receive(self, timeout: float | None) -> bool:
        """Take one block the server sent within ``timeout`` seconds (0: only if one is there,
        None: however long it takes); False when none came (or the connection is gone)."""
        with self._receiving:
            sock, poller = self._socket, self._poller
            if self._ended or sock is None or poller is None:
                return False
            try:
                events = poller.poll(None if timeout is None else max(0.0, timeout) * 1000)
                if not events:
                    return False
                # os.read: the socket's own recv would poll again first (it has a timeout)
                block = os.read(sock.fileno(), RECV_SIZE) if not events[0][1] & select.POLLNVAL else b""
            except BlockingIOError:
                return False  # readable after all not
            except OSError:
                block = b""  # reset, or closed under us
            if not block:
                self._ended = True
                return False
            try:
                self._parse(block)
            except OSError:  # a telnet answer could not be sent: the connection is gone
                self._ended = True
            return True

    def _parse(self, block: bytes) -> None:
        """pyserial's telnet read loop (its states and handlers) over one received block: the
        data between IACs goes to the buffer in one piece."""
        mode, suboption, data = self._mode, self._suboption, self._received
        at, size = 0, len(block)
        try:
            while at < size:
                if mode == r.M_NORMAL:
                    iac = block.find(IAC, at)
                    end = size if iac < 0 else iac
                    if suboption is not None:
                        suboption += block[at:end]
                    else:
                        data += block[at:end]
                    if iac < 0:
                        break
                    at, mode = iac + 1, r.M_IAC_SEEN
                    continue
                byte = block[at : at + 1]
                at += 1
                if mode == r.M_IAC_SEEN:
                    mode = r.M_NORMAL
                    if byte == IAC:  # a doubled IAC: the byte 0xFF itself
                        if suboption is not None:
                            suboption += IAC
                        else:
                            data += IAC
                    elif byte == r.SB:
                        suboption = bytearray()
                    elif byte == r.SE:
                        if suboption is not None:
                            self._telnet_process_subnegotiation(bytes(suboption))  # type: ignore[attr-defined]
                        suboption = None
                    elif byte in NEGOTIATION:
                        self._command, mode = byte, r.M_NEGOTIATE
                    else:
                        self._telnet_process_command(byte)  # type: ignore[attr-defined]
                else:  # M_NEGOTIATE: the option after DO, DONT, WILL or WONT
                    mode = r.M_NORMAL
                    self._telnet_negotiate_option(self._command, byte)  # type: ignore[attr-defined]
        finally:
            self._mode, self._suboption = mode, suboption

    def _until(self, ready: Callable[[], bool]) -> bool:
        """Receive until ``ready()``, at most ``?timeout=`` seconds or until the connection
        ends; whether it is.  ``ready`` may raise (pyserial's ValueError for a rejected value)."""
        deadline = time.monotonic() + self._network_timeout
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0 or self._ended:
                return ready()
            self._receive(left)
        return True

    def _acknowledged(self, item: TelnetSubnegotiation) -> None:
        if not self._until(item.is_ready):
            raise SerialException(f"timeout while waiting for option {item.name!r}")  # pyserial's words

    # ------------------------------------------------------------------ open and close

    def open(self) -> None:
        """pyserial 3.5's ``open``: connect, negotiate the telnet options, the line, DTR/RTS and
        purge both buffers -- receiving the answers instead of sleeping, with no reader thread."""
        self._negotiated = None  # a new connection: the server knows nothing yet
        self.logger = None
        self._ignore_set_control_answer = False
        self._poll_modem_state = False
        self._network_timeout = 3
        if self.port is None:
            raise SerialException("Port must be configured before it can be used.")
        if self.is_open:
            raise SerialException("Port is already open.")
        try:
            self._socket = socket.create_connection(self.from_url(self.port), timeout=CONNECT_TIMEOUT)
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception as msg:  # noqa: BLE001 - pyserial's: any failure to connect is one SerialException
            self._socket = None
            raise SerialException(f"Could not open port {self.port}: {msg}") from None
        self._socket_timeout = None
        self._write_lock = threading.Lock()
        mandatory = [
            TelnetOption(self, "we-BINARY", BINARY, WILL, WONT, DO, DONT, INACTIVE),
            TelnetOption(self, "we-RFC2217", COM_PORT_OPTION, WILL, WONT, DO, DONT, REQUESTED),
        ]
        self._telnet_options = [
            TelnetOption(self, "ECHO", ECHO, DO, DONT, WILL, WONT, REQUESTED),
            TelnetOption(self, "we-SGA", SGA, WILL, WONT, DO, DONT, REQUESTED),
            TelnetOption(self, "they-SGA", SGA, DO, DONT, WILL, WONT, REQUESTED),
            TelnetOption(self, "they-BINARY", BINARY, DO, DONT, WILL, WONT, INACTIVE),
            TelnetOption(self, "they-RFC2217", COM_PORT_OPTION, DO, DONT, WILL, WONT, REQUESTED),
            *mandatory,
        ]
        sub = TelnetSubnegotiation
        self._rfc2217_port_settings = {
            "baudrate": sub(self, "baudrate", r.SET_BAUDRATE, r.SERVER_SET_BAUDRATE),
            "datasize": sub(self, "datasize", r.SET_DATASIZE, r.SERVER_SET_DATASIZE),
            "parity": sub(self, "parity", r.SET_PARITY, r.SERVER_SET_PARITY),
            "stopsize": sub(self, "stopsize", r.SET_STOPSIZE, r.SERVER_SET_STOPSIZE),
        }
        self._rfc2217_options = {
            "purge": sub(self, "purge", r.PURGE_DATA, r.SERVER_PURGE_DATA),
            "control": sub(self, "control", r.SET_CONTROL, r.SERVER_SET_CONTROL),
            **self._rfc2217_port_settings,
        }
        self._linestate = 0
        self._modemstate = None
        self._modemstate_timeout = Timeout(-1)
        self._remote_suspend_flow = False
        with self._receiving:
            self._received.clear()
            self._mode, self._suboption, self._command = r.M_NORMAL, None, b""
            self._poller = select.poll()
            self._poller.register(self._socket, select.POLLIN | GONE)
            self._ended = False
        self.is_open = True
        try:  # must clean up if open fails
            for option in self._telnet_options:
                if option.state is REQUESTED:
                    self.telnet_send_option(option.send_yes, option.option)
            if not self._until(lambda: all(o.active for o in mandatory if o.state != INACTIVE)):
                raise SerialException(f"Remote does not seem to support RFC2217 or BINARY mode {mandatory!r}")
            self._reconfigure_port()
            if not self.dsrdtr:
                self._update_dtr_state()  # type: ignore[attr-defined]
            if not self.rtscts:
                self._update_rts_state()  # type: ignore[attr-defined]
            self.reset_input_buffer()
            self.reset_output_buffer()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Shut the connection (a read blocked in another thread returns); no pause afterwards."""
        self.is_open = False
        self._ended = True
        sock, self._socket = self._socket, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    # ------------------------------------------------------------------ data

    @property
    def in_waiting(self) -> int:
        """The number of bytes received and not read yet (after taking what the server sent)."""
        if not self.is_open:
            raise PortNotOpenError()
        if not self._received:  # (what is buffered already is enough to say)
            self._receive(0)
        return len(self._received)

    def write(self, data: bytes, /) -> int:  # type: ignore[override]
        """pyserial's write (0xFF doubled, under its write lock), sent with ``os.write`` (the
        socket's own ``sendall`` polls before each send: it has a timeout) and a ``poll`` only
        while the socket is full; all of it within ``write_timeout`` (else pyserial's 5 s)."""
        if not self.is_open:
            raise PortNotOpenError()
        payload = memoryview(bytes(data).replace(IAC, r.IAC_DOUBLED))
        with self._write_lock:
            sock = self._socket
            if sock is None:
                raise PortNotOpenError()
            timeout = self._socket_timeout or CONNECT_TIMEOUT
            deadline: float | None = None
            while payload:
                try:
                    payload = payload[os.write(sock.fileno(), payload) :]
                    continue
                except BlockingIOError:
                    pass
                except OSError as exc:
                    raise SerialException(f"connection failed (socket error): {exc}") from exc
                if deadline is None:
                    deadline = time.monotonic() + timeout
                left = deadline - time.monotonic()
                writable = select.poll()
                writable.register(sock, select.POLLOUT)
                if left <= 0 or not writable.poll(left * 1000):
                    raise SerialException("connection failed (socket error): timed out")
        return len(data)

    def read(self, size: int = 1) -> bytes:
        """Up to ``size`` bytes: as many as arrive before ``timeout`` (None: wait for all
        ``size``; 0: what is there).  SerialException once the connection has ended and
        everything received has been read."""
        if not self.is_open:
            raise PortNotOpenError()
        timeout = self.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        data = bytearray()
        while True:
            with self._receiving:
                received = self._received
                if received:
                    take = size - len(data)
                    data += received[:take]
                    del received[:take]
            if len(data) >= size:
                break
            if self._ended:
                if data:
                    break
                raise SerialException("connection failed (the server closed it)")
            left = None if deadline is None else deadline - time.monotonic()
            if not self._receive(left) and deadline is not None and time.monotonic() >= deadline:
                break
        return bytes(data)

    def reset_input_buffer(self) -> None:
        """Ask the server to purge its receive buffer, then drop what was received."""
        if not self.is_open:
            raise PortNotOpenError()
        self.rfc2217_send_purge(r.PURGE_RECEIVE_BUFFER)
        with self._receiving:
            self._received.clear()

    def get_modem_state(self) -> int:
        """pyserial's cached modem state; with ``?poll_modem`` a stale one is asked for and the
        notification received (at most ``?timeout=``)."""
        if self._poll_modem_state and self._modemstate_timeout.expired():
            self.rfc2217_send_subnegotiation(r.NOTIFY_MODEMSTATE)
            self._until(lambda: not self._modemstate_timeout.expired())
        else:
            self._receive(0)  # notifications that came meanwhile
        if self._modemstate is not None:
            return self._modemstate
        raise SerialException("remote sends no NOTIFY_MODEMSTATE")

    # ------------------------------------------------------------------ line and requests

    def _line(self) -> LineSettings:
        return (self.baudrate, self.bytesize, self.parity, self.stopbits, self.rtscts, self.xonxoff)

    def _reconfigure_port(self) -> None:
        sock = self._socket
        if sock is None:
            raise SerialException("Can only operate on open ports")
        write_timeout = self._write_timeout
        if write_timeout and write_timeout != self._socket_timeout:  # None or 0: pyserial's 5 s stays
            sock.settimeout(write_timeout)
            self._socket_timeout = write_timeout
        line = self._line()
        if line == self._negotiated:
            return
        baudrate, bytesize, parity, stopbits, rtscts, xonxoff = line
        if not 0 < baudrate < 2**32:
            raise ValueError(f"invalid baudrate: {baudrate!r}")
        settings = self._rfc2217_port_settings  # all four sent first, then their answers awaited
        settings["baudrate"].set(struct.pack("!I", baudrate))
        settings["datasize"].set(struct.pack("!B", bytesize))
        settings["parity"].set(struct.pack("!B", r.RFC2217_PARITY_MAP[parity]))
        settings["stopsize"].set(struct.pack("!B", r.RFC2217_STOPBIT_MAP[stopbits]))
        items = list(settings.values())
        if not self._until(lambda: all(o.active for o in items)):
            raise SerialException(f"Remote does not accept parameter change (RFC2217): {items!r}")
        if rtscts and xonxoff:
            raise ValueError("xonxoff and rtscts together are not supported")
        if rtscts:
            self.rfc2217_set_control(r.SET_CONTROL_USE_HW_FLOW_CONTROL)
        elif xonxoff:
            self.rfc2217_set_control(r.SET_CONTROL_USE_SW_FLOW_CONTROL)
        else:
            self.rfc2217_set_control(r.SET_CONTROL_USE_NO_FLOW_CONTROL)
        self._negotiated = line

    def rfc2217_send_purge(self, value: bytes) -> None:
        item = self._rfc2217_options["purge"]
        item.set(value)
        self._acknowledged(item)

    def rfc2217_set_control(self, value: bytes) -> None:
        item = self._rfc2217_options["control"]
        item.set(value)
        if not self._ignore_set_control_answer:  # ?ign_set_control: the answer (if any) is not awaited
            self._acknowledged(item)
