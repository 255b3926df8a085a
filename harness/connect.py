"""Open a device from a spec: the register (a :class:`~harness.device.Kkt` driver) and its lab.

Emulators are reached exactly like hardware: the emulator serves its wire protocol on a pty (or
loopback TCP) and the real driver talks to it.  Shared by the pytest plugin, ``kkt-hil probe``
and the benchmarks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devices.registry import Family, load_family, make_driver

from .device import Kkt
from .errors import HarnessError, KktError, UsageError
from .lab import EmulatorLab, Lab, UnavailableLab
from .spec import DeviceSpec
from .trace import Trace
from .transport import check_url, open_transport


@dataclass
class DeviceHandle:
    spec: DeviceSpec
    kkt: Kkt
    lab: Lab
    trace: Trace
    family: Family
    emulator: Any = None  # devices.emulator.build.Emulator for emulator specs
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer()
        self._closers.clear()


def _family_for(model: str) -> Family:
    from devices.emulator.profiles import profile

    try:
        return load_family(profile(model).protocol)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def open_device(spec: DeviceSpec, *, timeout_scale: float = 1.0, link_timeout: float = 5.0) -> DeviceHandle:
    """Connect (incl. "start of work"); raise UsageError/HarnessError/LinkError with one line."""
    if spec.kind == "emulator":
        return _open_emulator(spec, timeout_scale=timeout_scale, link_timeout=link_timeout)
    if spec.kind == "url":
        return _open_url(spec, timeout_scale=timeout_scale, link_timeout=link_timeout)
    raise UsageError(f"{spec.text}: lab inventory specs need --inventory FILE (not available in this version)")


def _open_emulator(spec: DeviceSpec, *, timeout_scale: float, link_timeout: float) -> DeviceHandle:
    from devices.emulator.build import build_emulator
    from devices.emulator.serve import serve

    try:
        emulator = build_emulator(spec.model, spec.params)
    except ValueError as exc:
        raise UsageError(f"{spec.text}: {exc}") from None
    family = _family_for(spec.model)
    core = emulator.core
    listen = "pty" if spec.params.get("transport", "pty") == "pty" else "tcp://127.0.0.1:0"
    server = serve(lambda: family.make_frontend(core), listen)
    closers: list[Callable[[], None]] = [server.close]
    try:
        trace = Trace(family.describe)
        transport = open_transport(server.url, baudrate=family.baudrate, timeout=link_timeout, trace=trace)
        closers.append(transport.close)
        kkt = make_driver(family, transport, model=spec.model, timeout_scale=timeout_scale, host_clock=core.now)
        kkt.connect()
    except BaseException:
        for closer in reversed(closers):
            closer()
        raise
    lab = EmulatorLab(emulator.control.handle, description=f"emulator {spec.model}")
    return DeviceHandle(spec, kkt, lab, trace, family, emulator, closers)


def _open_url(spec: DeviceSpec, *, timeout_scale: float, link_timeout: float) -> DeviceHandle:
    family = _family_for(spec.model)
    check_url(spec.url)
    closers: list[Callable[[], None]] = []
    lab: Lab
    control_url = spec.params.get("control")
    if control_url:
        from devices.emulator.control import ControlClient

        try:
            client = ControlClient(control_url, timeout=link_timeout)
        except (OSError, ValueError) as exc:
            raise HarnessError(f"{spec.text}: cannot reach the control channel {control_url}: {exc}") from None
        closers.append(client.close)
        lab = EmulatorLab(client.request, description=f"emulator control {control_url}")
    else:
        lab = UnavailableLab(
            "this device has no lab control (no bench power supply, paper or clock control configured)",
            description="real device, no instruments",
        )
    trace = Trace(family.describe)
    baud = spec.params.get("baud", str(family.baudrate))
    if not baud.isdigit():
        raise UsageError(f"{spec.text}: baud must be a number like 57600, not {baud!r}")
    try:
        transport = open_transport(spec.url, baudrate=int(baud), timeout=link_timeout, trace=trace)
        closers.append(transport.close)
        kkt = make_driver(family, transport, model=spec.model, timeout_scale=timeout_scale)
        kkt.connect()
    except (KktError, ValueError):
        for closer in reversed(closers):
            closer()
        raise
    return DeviceHandle(spec, kkt, lab, trace, family, None, closers)
