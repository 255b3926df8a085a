"""``pace=device``: the emulator answers after the time a real register would take, so that a
run on emulators estimates its time on the real registers.

Each wire front-end says which command it executed (:meth:`DeviceLatency.executed`); its family
gives the vendor's answer timeout for that command: Pirit, Crystal's per-command read timeouts
(reference ``protocols.md`` §2.3, :data:`devices.pirit.protocol.COMMAND_TIMEOUTS`); АТОЛ, T5
per command (§3.4, :data:`devices.atol.protocol.COMMAND_TIMEOUTS`).  Those are the *longest* a
command may take; the reference has no typical times [not found].  The estimate here is a fixed
share of each timeout, :data:`TYPICAL_SHARE` [inferred]: Pirit status 1.5 s → 75 ms, a Z report
60 s → 3 s, an АТОЛ receipt close 20 s → 1 s, other commands 10 s → 0.5 s.  Replace the share
(or the tables) with times measured on a lab register when there are some.

The wait is the serving thread's, after the command ran and before its answer leaves (the answer
then leaves at the line rate: ``pace=device`` includes ``pace=line`` on a pty); closing the
emulator ends a wait at once.  Off by default: the tests never wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from harness.families import FrontEnd

PACE = "device"
TYPICAL_SHARE = 0.05  # a command's typical answer time as a share of the vendor's timeout [inferred]


class DeviceLatency:
    """What the commands executed by one front-end since the last :meth:`take` would cost a real
    register, in seconds."""

    def __init__(self) -> None:
        self._due = 0.0

    def executed(self, timeout: float) -> None:
        """A command whose vendor timeout is ``timeout`` seconds ran."""
        self._due += TYPICAL_SHARE * timeout

    def take(self) -> float:
        due, self._due = self._due, 0.0
        return due


class DevicePaced:
    """A front-end whose answers leave after the executed commands' typical time (a front-end
    that reports no commands is served as it is)."""

    def __init__(self, inner: FrontEnd, stop: threading.Event) -> None:
        self._inner = inner
        self._stop = stop
        self.latency = DeviceLatency()
        inner.latency = self.latency  # type: ignore[attr-defined]  # the front-ends' optional hook

    def feed(self, data: bytes) -> bytes:
        out = self._inner.feed(data)
        due = self.latency.take()
        if out and due > 0:
            self._stop.wait(due)
        return out

    def pending(self) -> bool:
        return self._inner.pending()

    def reset(self) -> None:
        self._inner.reset()


def device_paced(factory: Callable[[], FrontEnd], stop: threading.Event) -> Callable[[], FrontEnd]:
    """``factory``'s front-ends, paced as a real register (``stop``: set when the emulator closes)."""
    return lambda: DevicePaced(factory(), stop)
