"""A LAN bench supply on loopback: a real TCP SCPI server, as a supply on port 5025 would be.

The stand-in register wires ``on_output`` to an emulator's power, so a scenario that power-cycles
"the register" through :class:`~harness.instruments.supply.BenchSupply` drives the emulator over
the same pyvisa-py path (``TCPIP::127.0.0.1::<port>::SOCKET``) as on a real bench.

Dialect (one command per ``\\n``-terminated line, headers case-insensitive, short or long form —
``OUTP``/``OUTPut``, ``VOLT``/``VOLTage``, ``CURR``/``CURRent``, ``MEAS``/``MEASure``,
``INST``/``INSTrument``, ``NSEL``/``NSELect``, ``SYST``/``SYSTem``, ``ERR``/``ERRor``)::

    *IDN?                 -> idn
    INST:NSEL <n>         1 only (a single-channel supply); INST:NSEL? -> 1
    OUTP ON|OFF|1|0       OUTP? -> 1 | 0   (starts ON: the register is powered)
    VOLT <0..30>          VOLT? -> setpoint, 3 decimals (starts 12.000)
    CURR <0..5>           CURR? -> limit, 3 decimals (starts 1.000)
    MEAS:VOLT?            -> setpoint when the output is on, 0.000 when off
    MEAS:CURR?            -> 0.000 (no load is modelled)
    SYST:ERR?             -> oldest queued error, or 0,"No error"

Errors are queued, never answered: -113 "Undefined header", -109 "Missing parameter",
-108 "Parameter not allowed", -104 "Data type error", -222 "Data out of range",
-224 "Illegal parameter value", -223 "Too much data" (a line over 4 KiB), -350 "Queue overflow",
-300 "Device-specific error" (on_output raised).  State and error queue are the instrument's,
shared by every connection.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
from collections.abc import Callable

from harness.net import ConnectionServer

DEFAULT_IDN = "kkt-hil,SIM-PSU,0,1.0"
MAX_VOLTS = 30.0
MAX_AMPS = 5.0
MAX_LINE = 4096
MAX_ERRORS = 16
NO_ERROR = '0,"No error"'
# pyvisa-py 0.8 cannot set VI_ATTR_TCPIP_NODELAY, so a setting and the SYST:ERR? written after it
# meet Nagle plus our delayed ACK (~40 ms per setting); Linux lets the server ack at once instead.
QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

_LONG_FORMS = {
    "OUTPUT": "OUTP",
    "VOLTAGE": "VOLT",
    "CURRENT": "CURR",
    "MEASURE": "MEAS",
    "INSTRUMENT": "INST",
    "NSELECT": "NSEL",
    "SYSTEM": "SYST",
    "ERROR": "ERR",
}
_QUERIES = {"*IDN?", "INST:NSEL?", "OUTP?", "VOLT?", "CURR?", "MEAS:VOLT?", "MEAS:CURR?", "SYST:ERR?"}
_SETTINGS = {"INST:NSEL", "OUTP", "VOLT", "CURR"}
_BOOLEANS = {"ON": True, "1": True, "OFF": False, "0": False}

log = logging.getLogger(__name__)


class ScpiError(Exception):
    """One entry for the error queue: ``code,"text"``."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f'{code},"{text}"')


def _header(word: str) -> str:
    nodes = word.upper().lstrip(":").split(":")
    return ":".join(
        _LONG_FORMS.get(node.rstrip("?"), node.rstrip("?")) + ("?" if node.endswith("?") else "") for node in nodes
    )


def _number(arg: str, low: float, high: float) -> float:
    try:
        value = float(arg)
    except ValueError:
        raise ScpiError(-104, "Data type error") from None
    if not math.isfinite(value):
        raise ScpiError(-104, "Data type error")
    if not low <= value <= high:
        raise ScpiError(-222, "Data out of range")
    return value


class SimulatedSupply(ConnectionServer):
    """A one-channel SCPI bench supply listening on ``host:port`` (loopback unless ``allow_lan``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_output: Callable[[bool], None] | None = None,
        idn: str = DEFAULT_IDN,
        allow_lan: bool = False,
    ) -> None:
        self.idn = idn
        self._on_output = on_output
        # RLock: on_output runs on the connection's thread with the lock held (so callbacks arrive
        # in the order the output changed) and may read .output; it must not talk to this supply
        # over TCP, that connection's thread would wait for the lock.
        self._lock = threading.RLock()
        self._output = True
        self._volts = 12.0
        self._amps = 1.0
        self._errors: list[str] = []
        super().__init__(host, port, name="sim-psu-accept", allow_lan=allow_lan)

    @property
    def resource(self) -> str:
        """The VISA resource name of this supply (for pyvisa-py)."""
        return f"TCPIP::{self.host}::{self.port}::SOCKET"

    @property
    def output(self) -> bool:
        with self._lock:
            return self._output

    # ---------------------------------------------------------------- the wire

    def serve_connection(self, conn: socket.socket) -> None:
        pending = b""
        for data in self.chunks(conn):
            if QUICKACK is not None:  # ack at once: the client's Nagle holds SYST:ERR? until we do
                try:
                    conn.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
                except OSError:
                    pass
            pending += data
            *lines, pending = pending.split(b"\n")
            if len(pending) > MAX_LINE:
                pending = b""
                self._queue(ScpiError(-223, "Too much data"))
            for line in lines:
                answer = self.handle(line.decode("ascii", errors="replace").strip())
                if answer is not None and not self.send_all(conn, answer.encode("ascii", errors="replace") + b"\n"):
                    return

    # ---------------------------------------------------------------- the instrument

    def handle(self, line: str) -> str | None:
        """One command line in, its answer out (None for a setting or an error, which is queued)."""
        if not line:
            return None
        word, _, arg = line.partition(" ")
        header, arg = _header(word), arg.strip()
        with self._lock:
            try:
                if header in _QUERIES:
                    if arg:
                        raise ScpiError(-108, "Parameter not allowed")
                    return self._query(header)
                if header in _SETTINGS:
                    if not arg:
                        raise ScpiError(-109, "Missing parameter")
                    self._setting(header, arg)
                    return None
                raise ScpiError(-113, "Undefined header")
            except ScpiError as error:
                self._queue(error)
                return None

    def _query(self, header: str) -> str:
        if header == "*IDN?":
            return self.idn
        if header == "INST:NSEL?":
            return "1"
        if header == "OUTP?":
            return "1" if self._output else "0"
        if header == "VOLT?":
            return f"{self._volts:.3f}"
        if header == "CURR?":
            return f"{self._amps:.3f}"
        if header == "MEAS:VOLT?":
            return f"{self._volts if self._output else 0.0:.3f}"
        if header == "MEAS:CURR?":
            return "0.000"
        return self._errors.pop(0) if self._errors else NO_ERROR  # SYST:ERR?

    def _setting(self, header: str, arg: str) -> None:
        if header == "INST:NSEL":
            try:
                channel = int(arg)
            except ValueError:
                raise ScpiError(-104, "Data type error") from None
            if channel != 1:
                raise ScpiError(-222, "Data out of range")
        elif header == "OUTP":
            state = _BOOLEANS.get(arg.upper())
            if state is None:
                raise ScpiError(-224, "Illegal parameter value")
            self._switch(state)
        elif header == "VOLT":
            self._volts = _number(arg, 0.0, MAX_VOLTS)
        else:  # CURR
            self._amps = _number(arg, 0.0, MAX_AMPS)

    def _switch(self, state: bool) -> None:
        if state == self._output:
            return
        self._output = state
        if self._on_output is None:
            return
        try:
            self._on_output(state)
        except Exception:  # a broken callback is the instrument's error, not a dead server
            log.exception("on_output(%s) failed", state)
            self._queue(ScpiError(-300, "Device-specific error"))

    def _queue(self, error: ScpiError) -> None:
        with self._lock:
            if len(self._errors) >= MAX_ERRORS:
                self._errors[-1] = '-350,"Queue overflow"'
            else:
                self._errors.append(str(error))
