"""The ``faulty://`` pyserial URL handler: any other pyserial URL, with seeded faults injected.

URL form (options as in :mod:`harness.faults.schedule`, lists separated by ``,``)::

    faulty://?seed=7&p=0.01&kinds=drop,corrupt&dir=rx&url=socket://127.0.0.1:50003
    faulty://?at=rx:3:5:corrupt,tx:1:0:drop&url=/dev/pts/5
    faulty://?seed=2&p=0.05&hold=0.2&url=socket%3A%2F%2F127.0.0.1%3A50003&after=1

``url=`` is the wrapped port: the last parameter, verbatim, or percent-encoded anywhere.  The
port opens the inner one with the same settings; what is written (tx) and what is read (rx)
pass through an :class:`~harness.faults.schedule.Injector`.  Every fault is appended to
:attr:`Serial.injected` and handed to each callable in :attr:`Serial.listeners` as it happens.

Delays: with ``hold`` the held bytes go on after ``hold`` seconds (a read waits for them within
its own timeout); without it, the next read that would have to wait for them returns at once
with what it has, as if its timeout had elapsed, and the held bytes go on after it (rx: the
next read gets them; tx: they are written to the inner port then).  No wall-clock waiting.

:attr:`Serial.tx_check`, when set, sees every byte about to reach the inner port (faults applied)
and may refuse it by raising: the harness puts a safety guard there for real registers.

Disconnect: the inner port is closed (a cut cable); bytes already received can still be read,
then every read, write, flush and ``in_waiting`` raises :class:`serial.SerialException` until
the port is closed and opened again (which opens the inner port again; the schedule goes on
where it was, so the same fault does not strike twice).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import serial
from serial.serialutil import PortNotOpenError, SerialBase, SerialException

from . import parse_faulty_url
from .schedule import DIRECTIONS, Fault, Injector, Outcome, Schedule

PULL_LIMIT = 65536  # bytes taken from the inner port in one go


class Serial(SerialBase):
    """A pyserial port over another one, injecting the faults of its URL's schedule."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.schedule: Schedule | None = None
        self.inner_url = ""
        self.injected: list[Fault] = []
        self.listeners: list[Callable[[Fault], None]] = []
        # sees every byte about to reach the inner port, faults applied; raising stops them there
        # (connect.py puts a safety guard here for real registers: faults never make a request)
        self.tx_check: Callable[[bytes], None] | None = None
        self._injector: Injector | None = None
        self._inner: serial.Serial | None = None
        self._rx = bytearray()  # received, faults applied, ready to be read
        self._held = {d: bytearray() for d in DIRECTIONS}  # delayed bytes, per direction
        self._release_at: dict[str, float | None] = dict.fromkeys(DIRECTIONS)  # None: after one timeout
        self._cut: Fault | None = None
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ open / close

    def open(self) -> None:
        if self.is_open:
            raise SerialException("Port is already open.")
        if self.port is None:
            raise SerialException("Port must be configured before it can be used.")
        try:
            schedule, inner_url = parse_faulty_url(self.port)
        except ValueError as exc:
            raise SerialException(str(exc)) from None
        if self._injector is None or schedule != self.schedule:
            self._injector = Injector(schedule)
            self._injector.on_fault.append(self._announce)
            self.schedule, self.injected = schedule, self._injector.injected
        try:
            inner = serial.serial_for_url(
                inner_url,
                baudrate=self.baudrate,
                bytesize=self.bytesize,
                parity=self.parity,
                stopbits=self.stopbits,
                timeout=self.timeout,
                write_timeout=self.write_timeout,
                xonxoff=self.xonxoff,
                rtscts=self.rtscts,
                dsrdtr=self.dsrdtr,
                do_not_open=True,
            )
        except ValueError as exc:
            raise SerialException(f"faulty:// inner URL {inner_url!r}: {exc}") from None
        if self.exclusive is not None:
            inner.exclusive = self.exclusive
        inner.open()
        self._inner, self.inner_url, self._cut = inner, inner_url, None
        self._rx.clear()
        for direction in DIRECTIONS:
            self._held[direction].clear()
        self.is_open = True

    def close(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            with contextlib.suppress(SerialException, OSError):
                inner.close()
        self.is_open = False

    def _reconfigure_port(self, *args: Any, **kwargs: Any) -> None:
        inner = self._inner
        if inner is not None and inner.is_open and inner.baudrate != self.baudrate:
            inner.baudrate = self.baudrate

    def _update_dtr_state(self) -> None:
        if self._inner is not None and self._inner.is_open:
            self._inner.dtr = self.dtr

    def _update_rts_state(self) -> None:
        if self._inner is not None and self._inner.is_open:
            self._inner.rts = self.rts

    def _update_break_state(self) -> None:
        if self._inner is not None and self._inner.is_open:
            self._inner.break_condition = self.break_condition

    def frame(self, direction: str) -> int:
        """The number of the latest ``tx`` or ``rx`` frame (0 before the first byte), for placing
        a fault with ``at=`` after a known exchange."""
        return self._injector.frame(direction) if self._injector is not None else 0

    # ------------------------------------------------------------------ the byte pipe

    @property
    def in_waiting(self) -> int:
        self._check()
        self._release_due()
        if self._cut is None:
            self._pull(0)
        if self._cut is not None and not self._rx:
            raise self._cut_error()
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        self._check()
        if self._injector is not None:
            self._injector.turn("tx")  # the host listens: its next write is a new request
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        timed_out = False  # "the reader's timeout elapsed": what is held goes on after this read
        while True:
            self._release_due()
            if len(self._rx) >= size:
                break
            if self._cut is not None:
                if self._rx:
                    break
                raise self._cut_error()
            if self._untimed_hold():  # this read "times out" at once, then what was held goes on
                timed_out = True
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self._pull(0)
                self._release_due()
                break
            self._pull(_earliest(remaining, self._until_due()))
        data = bytes(self._rx[:size])
        del self._rx[:size]
        if timed_out:
            self._release(lambda at: at is None)
        return data

    def write(self, b: Any) -> int:
        self._check()
        if self._cut is not None:
            raise self._cut_error()
        data = bytes(memoryview(b))
        self._release_due()
        if data:
            assert self._injector is not None
            self._take("tx", self._injector.feed("tx", data))
        return len(data)

    def flush(self) -> None:
        self._check()
        if self._cut is not None:
            raise self._cut_error()
        self._release_due()
        assert self._inner is not None
        self._inner.flush()

    def reset_input_buffer(self) -> None:
        self._check()
        self._rx.clear()
        self._held["rx"].clear()
        if self._inner is not None and self._cut is None:
            self._inner.reset_input_buffer()

    def reset_output_buffer(self) -> None:
        self._check()
        self._held["tx"].clear()
        if self._inner is not None and self._cut is None:
            self._inner.reset_output_buffer()

    def cancel_read(self) -> None:
        if self._inner is not None and hasattr(self._inner, "cancel_read"):
            self._inner.cancel_read()

    def cancel_write(self) -> None:
        if self._inner is not None and hasattr(self._inner, "cancel_write"):
            self._inner.cancel_write()

    # ------------------------------------------------------------------ inside

    def _check(self) -> None:
        if not self.is_open:
            raise PortNotOpenError()

    def _cut_error(self) -> SerialException:
        assert self._cut is not None
        return SerialException(f"link cut by fault injection ({self._cut.describe()}); reopen the port")

    def _announce(self, fault: Fault) -> None:
        for listener in list(self.listeners):
            listener(fault)

    def _pull(self, wait: float | None) -> None:
        """Take what the inner port has (waiting up to ``wait`` s for a first byte; None: forever)."""
        inner = self._inner
        assert inner is not None and self._injector is not None
        data = b""
        waiting = inner.in_waiting
        if not waiting and (wait is None or wait > 0):
            if inner.timeout != wait:
                inner.timeout = wait
            data = inner.read(1)
            waiting = inner.in_waiting if data else 0
        while waiting and len(data) < PULL_LIMIT:
            data += inner.read(waiting)
            waiting = inner.in_waiting
        if data:
            self._take("rx", self._injector.feed("rx", data))

    def _take(self, direction: str, outcome: Outcome) -> None:
        """Deliver what the injector made of a chunk: now, held, or up to a cut."""
        held = self._held[direction]
        if held:
            held += outcome.data  # behind what is already delayed: order is kept
        elif direction == "rx":
            self._rx += outcome.data
        elif outcome.data:
            self._send(outcome.data)
        if outcome.held:
            if not held:
                hold = self.schedule.hold if self.schedule is not None else None
                self._release_at[direction] = None if hold is None else time.monotonic() + hold
            held += outcome.held
        if outcome.cut is not None:
            self._cut = outcome.cut
            for direction_held in self._held.values():
                direction_held.clear()
            inner, self._inner = self._inner, None
            if inner is not None:
                with contextlib.suppress(SerialException, OSError):
                    inner.close()

    def _untimed_hold(self) -> bool:
        return any(self._held[d] and self._release_at[d] is None for d in DIRECTIONS)

    def _until_due(self) -> float | None:
        dues = [at for d, at in self._release_at.items() if self._held[d] and at is not None]
        return max(0.0, min(dues) - time.monotonic()) if dues else None

    def _release_due(self) -> None:
        now = time.monotonic()
        self._release(lambda at: at is not None and now >= at)

    def _release(self, due: Callable[[float | None], bool]) -> None:
        for direction in DIRECTIONS:
            held = self._held[direction]
            if not held or not due(self._release_at[direction]):
                continue
            data = bytes(held)
            held.clear()
            if direction == "rx":
                self._rx += data
            else:
                self._send(data)

    def _send(self, data: bytes) -> None:
        if self.tx_check is not None:
            self.tx_check(data)
        if self._inner is not None:
            self._inner.write(data)


def _earliest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else min(a, b)
