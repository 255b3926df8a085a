"""The lab's bench power supply: SCPI over pyvisa (LAN ``TCPIP::host::5025::SOCKET``, USB, serial).

The dialect is the common SCPI subset of LAN bench supplies, one command per message, ``\\n``
terminated both ways::

    *IDN?                      identity
    INST:NSEL <n>              select the output channel (sent before every channel command)
    OUTP 1 | OUTP 0            output on / off;            OUTP?      -> 1 | 0
    VOLT <v.vvv>               voltage setpoint (V);       VOLT?      -> setpoint
    CURR <a.aaa>               current limit (A);          CURR?      -> limit
    MEAS:VOLT?  MEAS:CURR?     measured output voltage (V) / current (A)
    SYST:ERR?                  next error in the queue, ``0,"No error"`` when empty

Channel selection: ``INST:NSEL <n>`` is sent before every channel command, channel 1 included,
and its error queue checked.  Single-channel supplies treat ``INST:NSEL 1`` as a no-op; a supply
that does not know ``INST`` at all fails with an :class:`InstrumentError` naming ``INST:NSEL`` —
one explicit rule instead of guessing, per model, when the selection may be skipped.  It is sent
every time because the selection is instrument state another client may have changed.

After every setting command ``SYST:ERR?`` is read until the queue is empty; any error fails the
call.  Every call has a deadline (the pyvisa timeout).  Every failure is an
:class:`InstrumentError` (a :class:`~harness.errors.LinkError`: the lab is broken, not the
register) with one line naming the resource and what failed, never a pyvisa traceback.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import pyvisa
from pyvisa import constants
from pyvisa.resources import MessageBasedResource

from harness.errors import LinkError, UsageError

TERMINATION = "\n"
MAX_QUEUED_ERRORS = 16  # SYST:ERR? reads after one command before we stop draining
_ERROR_ANSWER = re.compile(r'^\s*([+-]?\d+)\s*,\s*"?(.*?)"?\s*$')
_IO_FAILURES = (pyvisa.errors.Error, OSError, ValueError)  # VISA errors, sockets, undecodable bytes


class InstrumentError(LinkError):
    """A lab instrument failed: not found, no answer in time, a malformed answer, an error it reported."""

    def __init__(self, resource: str, what: str, *, original: BaseException | None = None) -> None:
        self.resource = resource
        self.what = " ".join(what.split())  # one line, whatever the backend put in its message
        self.original = original  # kept for debugging; deliberately not chained (no pyvisa traceback)
        super().__init__(f"bench supply {resource}: {self.what}")

    def __reduce__(self) -> tuple[Any, ...]:  # keep pickling (pytest-xdist) working
        return (type(self), (self.resource, self.what))


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, pyvisa.errors.VisaIOError) and exc.error_code == constants.StatusCode.error_timeout


class BenchSupply:
    """One channel of a SCPI bench supply.  Thread-safe: each call is one locked transaction."""

    def __init__(
        self,
        resource: str,
        *,
        channel: int = 1,
        resource_manager: pyvisa.ResourceManager | None = None,
        timeout: float = 2.0,
    ) -> None:
        if channel < 1:
            raise UsageError(f"bench supply {resource}: channel must be 1 or more, not {channel}")
        if not timeout > 0:
            raise UsageError(f"bench supply {resource}: timeout must be positive, not {timeout}")
        self.resource = resource
        self.channel = channel
        self.timeout = timeout
        self._lock = threading.Lock()
        self._manager: pyvisa.ResourceManager | None = None
        self._instrument: MessageBasedResource | None = None
        try:
            self._manager = resource_manager if resource_manager is not None else pyvisa.ResourceManager("@py")
            opened = self._manager.open_resource(resource, open_timeout=self._timeout_ms)
        except Exception as exc:  # noqa: BLE001 -- pyvisa-py raises bare Exception("could not connect")
            self._close_manager()
            if _timed_out(exc):
                raise InstrumentError(resource, f"no connection within {timeout:g} s", original=exc) from None
            raise InstrumentError(resource, f"cannot open: {exc}", original=exc) from None
        try:
            self._instrument = self._configure(opened)
        except InstrumentError:
            try:
                opened.close()
            except _IO_FAILURES:
                pass
            self._close_manager()
            raise

    def _configure(self, opened: pyvisa.resources.Resource) -> MessageBasedResource:
        if opened.session == constants.VI_NULL:  # pyvisa-sim "opens" an unknown resource as session 0
            raise InstrumentError(self.resource, "cannot open: no such resource")
        if not isinstance(opened, MessageBasedResource):
            raise InstrumentError(self.resource, f"not a message-based instrument ({type(opened).__name__})")
        try:
            opened.read_termination = opened.write_termination = TERMINATION
            opened.timeout = self._timeout_ms
        except _IO_FAILURES as exc:
            raise InstrumentError(self.resource, f"cannot configure: {exc}", original=exc) from None
        return opened

    @property
    def _timeout_ms(self) -> int:
        return max(1, round(self.timeout * 1000))

    # ---------------------------------------------------------------- the API

    def identify(self) -> str:
        """``*IDN?``: maker, model, serial, firmware."""
        with self._lock:
            answer = self._query("*IDN?")
        if not answer:
            raise InstrumentError(self.resource, "empty answer to *IDN?")
        return answer

    def output(self, on: bool) -> None:
        """Switch the channel's output on or off."""
        self._set(f"OUTP {1 if on else 0}")

    def output_state(self) -> bool:
        """``OUTP?``: is the channel's output on?"""
        answer = self._channel_query("OUTP?")
        state = {"1": True, "ON": True, "0": False, "OFF": False}.get(answer.upper())
        if state is None:
            raise InstrumentError(self.resource, f"malformed answer to OUTP?: {answer!r}")
        return state

    def set_voltage(self, volts: float) -> None:
        """Voltage setpoint in volts (the instrument judges the range)."""
        self._set(f"VOLT {self._number(volts, 'voltage')}")

    def set_current_limit(self, amps: float) -> None:
        """Current limit in amperes (the instrument judges the range)."""
        self._set(f"CURR {self._number(amps, 'current limit')}")

    def voltage(self) -> float:
        """``VOLT?``: the voltage setpoint read back."""
        return self._float("VOLT?")

    def current_limit(self) -> float:
        """``CURR?``: the current limit read back."""
        return self._float("CURR?")

    def measure_voltage(self) -> float:
        """``MEAS:VOLT?``: the voltage at the output terminals."""
        return self._float("MEAS:VOLT?")

    def measure_current(self) -> float:
        """``MEAS:CURR?``: the current the load draws."""
        return self._float("MEAS:CURR?")

    def close(self) -> None:
        """Release the instrument.  Idempotent."""
        with self._lock:
            instrument, self._instrument = self._instrument, None
            if instrument is not None:
                try:
                    instrument.close()
                except _IO_FAILURES:
                    pass
            self._close_manager()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"BenchSupply({self.resource!r}, channel={self.channel})"

    # ---------------------------------------------------------------- transactions

    def _set(self, command: str) -> None:
        with self._lock:
            self._select()
            self._write(command)
            self._check_errors(command)

    def _channel_query(self, command: str) -> str:
        with self._lock:
            self._select()
            return self._query(command)

    def _float(self, command: str) -> float:
        answer = self._channel_query(command)
        try:
            return float(answer)
        except ValueError:
            raise InstrumentError(self.resource, f"malformed answer to {command}: {answer!r}") from None

    def _select(self) -> None:
        command = f"INST:NSEL {self.channel}"
        self._write(command)
        self._check_errors(command)

    def _number(self, value: float, what: str) -> str:
        if not math.isfinite(value):
            raise UsageError(f"bench supply {self.resource}: {what} must be a finite number, not {value}")
        return f"{value:.3f}"

    def _check_errors(self, command: str) -> None:
        reported: list[str] = []
        for _ in range(MAX_QUEUED_ERRORS):
            answer = self._query("SYST:ERR?")
            match = _ERROR_ANSWER.match(answer)
            if match is None:
                raise InstrumentError(self.resource, f"malformed answer to SYST:ERR? after {command}: {answer!r}")
            if int(match.group(1)) == 0:
                break
            reported.append(answer.strip())
        else:
            reported.append("...")
        if reported:
            raise InstrumentError(self.resource, f"{command} rejected: {'; '.join(reported)}")

    def _device(self) -> MessageBasedResource:
        if self._instrument is None:
            raise InstrumentError(self.resource, "used after close()")
        return self._instrument

    def _write(self, command: str) -> None:
        instrument = self._device()
        try:
            instrument.write(command)
        except _IO_FAILURES as exc:
            raise self._failure(command, exc) from None

    def _query(self, command: str) -> str:
        instrument = self._device()
        try:
            return instrument.query(command).strip()
        except _IO_FAILURES as exc:
            raise self._failure(command, exc) from None

    def _failure(self, command: str, exc: BaseException) -> InstrumentError:
        if _timed_out(exc):
            return InstrumentError(self.resource, f"no answer to {command} within {self.timeout:g} s", original=exc)
        return InstrumentError(self.resource, f"{command} failed: {exc}", original=exc)

    def _close_manager(self) -> None:
        # pyvisa keeps one ResourceManager per backend for the whole process: closing it would end
        # every other supply's session too (two lab registers, or preflight and the run), so only
        # our own instrument is closed and the manager is left to pyvisa.
        self._manager = None


def power_cycle(supply: BenchSupply, off_seconds: float, sleep: Callable[[float], None] = time.sleep) -> None:
    """Output off, wait ``off_seconds`` (through ``sleep``: tests pass a fake), output on again.

    The output is switched back on even if the wait is interrupted: a lab register is powered."""
    supply.output(False)
    try:
        sleep(off_seconds)
    finally:
        supply.output(True)
