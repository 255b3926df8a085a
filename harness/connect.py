"""Open a device from a spec: the register (a :class:`~harness.device.Kkt` driver) and its lab.

Emulators are reached exactly like hardware: the emulator serves its wire protocol on a pty (or
loopback TCP) and the real driver talks to it.  Everything vendor-specific comes from the family
registry (:mod:`harness.families`); this module imports no driver and no emulator.

:func:`open_kkt` is the public entry point for lab scripts and benchmarks (``harness.open_kkt``);
the pytest plugin and ``kkt-hil probe`` use :func:`open_device` underneath.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from . import families, leases, ser2net
from .control import ControlClient
from .device import Kkt
from .errors import HarnessError, UsageError
from .faults import faulty_url
from .faults.protocol_faulty import Serial as FaultySerial
from .lab import EmulatorLab, Lab, UnavailableLab
from .lab_open import Bench, LabOptions, open_lab
from .link import Link
from .safety import Emulated, Guard, Unproven
from .spec import DeviceSpec, parse_spec
from .trace import Trace
from .transport import Transport, check_url, open_transport

if TYPE_CHECKING:
    from devices.models import Model

DEFAULT_LINK_TIMEOUT = 5.0  # opening the port and each write, seconds
HARNESS_PARAMS = ("faults",)  # spec parameters the harness itself uses, never emulator settings
URL_UNPROVEN = "a url: spec cannot prove the register is sacrificial (use a lab inventory entry marked sacrificial)"
LABGRID_UNPROVEN = (
    "a labgrid place cannot prove the register is sacrificial (use a lab inventory entry marked sacrificial)"
)


@dataclass
class DeviceHandle:
    """An open device: ``.kkt`` (the register), ``.lab`` (faults and time), the trace and the link."""

    spec: DeviceSpec
    kkt: Kkt
    lab: Lab
    trace: Trace
    link: Link  # the raw request/answer layer under ``kkt`` (for vendor commands in lab scripts)
    family: families.Family
    model: Model
    emulator: families.Emulated | None = None  # the emulated register, for emulator specs
    bench: Bench | None = None  # the inventory entry, safety policy and scenario-time lens, for lab specs
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    faults: FaultySerial | None = None  # the fault-injecting port (faults=): .schedule, .injected

    def close(self) -> None:
        for closer in reversed(self._closers):
            with contextlib.suppress(Exception):
                closer()
        self._closers.clear()

    def __enter__(self) -> DeviceHandle:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


@contextlib.contextmanager
def open_kkt(
    spec: str | DeviceSpec,
    *,
    timeout_scale: float = 1.0,
    link_timeout: float = DEFAULT_LINK_TIMEOUT,
    inventory: str | Path | None = None,
    allow_destructive: bool = False,
    destructive: bool = False,
    operator: str | None = None,
) -> Iterator[DeviceHandle]:
    """Open one device from a ``--kkt`` spec string; close it (and its emulator) on exit.

    ``with open_kkt("emulator:kf") as h: h.kkt.status()``.  A spec naming several devices
    (``emulator:all``) or a malformed one is a :class:`~harness.errors.UsageError`.  For
    ``lab:<id>``: ``inventory`` (else KKT_HIL_INVENTORY, else ./kkt-hil.toml); destructive
    operations need both ``allow_destructive=True`` and ``destructive=True`` (the script's intent)
    besides a sacrificial entry whose serial matches.  ``labgrid:<place>`` (and an entry on a
    labgrid place) acquires the place and releases it on exit (harness.labgrid).
    """
    if isinstance(spec, str):
        specs = parse_spec(spec)
        if len(specs) != 1:
            names = ", ".join(s.text for s in specs)
            raise UsageError(f"open_kkt opens one device; {spec!r} names {len(specs)}: {names}")
        spec = specs[0]
    options = LabOptions(inventory, allow_destructive=allow_destructive, destructive=destructive, operator=operator)
    handle = open_device(spec, timeout_scale=timeout_scale, link_timeout=link_timeout, lab=options)
    try:
        yield handle
    finally:
        handle.close()


def open_device(
    spec: DeviceSpec,
    *,
    timeout_scale: float = 1.0,
    link_timeout: float = DEFAULT_LINK_TIMEOUT,
    lab: LabOptions | None = None,
) -> DeviceHandle:
    """Connect (incl. "start of work"); raise UsageError/HarnessError/LinkError with one line."""
    if timeout_scale <= 0:
        raise UsageError(f"timeout scale must be positive, not {timeout_scale!r}")
    if spec.kind == "emulator":
        return _open_emulator(spec, timeout_scale=timeout_scale, link_timeout=link_timeout)
    if spec.kind == "url":
        timeout = (lab or LabOptions()).lease_timeout
        return _open_url(spec, timeout_scale=timeout_scale, link_timeout=link_timeout, lease_timeout=timeout)
    if spec.kind == "labgrid":
        return _open_labgrid(spec, timeout_scale=timeout_scale, link_timeout=link_timeout, lab=lab)
    from .labgrid import hold_entries

    options = lab or LabOptions()
    inventory = options.load(spec.text)
    release_places = hold_entries(spec, inventory)  # entries on labgrid places this run does not hold yet
    try:
        kkt, bench_lab, trace, link, family, model, bench, closers = open_lab(
            spec, replace(options, inventory=inventory), timeout_scale=timeout_scale, link_timeout=link_timeout
        )
    except BaseException:
        release_places()
        raise
    closers.insert(0, release_places)  # released last
    if bench.pool is not None:  # the member the pool lent this handle: what it runs on
        spec = replace(spec, kind="lab", text=f"lab:{bench.entry.id}", target=bench.entry.id)
    return DeviceHandle(spec, kkt, bench_lab, trace, link, family, model, None, bench, closers)


def _close_all(closers: list[Callable[[], None]]) -> None:
    for closer in reversed(closers):
        with contextlib.suppress(Exception):
            closer()


def _open_emulator(spec: DeviceSpec, *, timeout_scale: float, link_timeout: float) -> DeviceHandle:
    model = families.model(spec.model)
    family = families.family(model.family)
    try:
        settings = {k: v for k, v in spec.params.items() if k not in HARNESS_PARAMS}
        emulated = family.start_emulator(model.id, settings)
    except ValueError as exc:
        raise UsageError(f"{spec.text}: {exc}") from None
    closers: list[Callable[[], None]] = [emulated.close]
    faults: FaultySerial | None = None
    try:
        url = _serve_emulator(emulated, spec, model.baudrate, closers)
        trace = Trace(family.describe_bytes)
        url = _with_faults(spec, url)
        transport = open_transport(url, baudrate=model.baudrate, timeout=link_timeout, trace=trace, policy=Emulated())
        closers.append(transport.close)
        faults = _watch_faults(transport)
        link = Link(transport, timeout_scale=timeout_scale)
        kkt = family.make_driver(link, model=model.id, host_clock=emulated.now)
        kkt.connect()
    except BaseException as exc:
        _note_faults(exc, faults)
        _close_all(closers)
        raise
    lab = EmulatorLab(emulated.control, description=f"emulator {model.id}")
    return DeviceHandle(spec, kkt, lab, trace, link, family, model, emulated, None, closers, faults)


#: an emulator spec's transport=: what the emulator serves, and how a real ser2net exports that
#: pty (harness.ser2net: rfc2217 or raw TCP), None: the driver opens what the emulator serves
EMULATOR_TRANSPORTS: dict[str, tuple[str, ser2net.Mode | None]] = {
    "pty": ("pty", None),
    "tcp": ("tcp://127.0.0.1:0", None),
    "rfc2217": ("pty", "rfc2217"),
    "ser2net": ("pty", "raw"),
}


def _serve_emulator(
    emulated: families.Emulated, spec: DeviceSpec, baudrate: int, closers: list[Callable[[], None]]
) -> str:
    """Serve the emulator's wire as ``transport=`` says; the URL the driver opens.  A ser2net
    export is one this process keeps (harness.ser2net.lend), given back with the handle
    (``closers``: after the driver's port is closed, before the emulator's pty)."""
    transport = spec.params.get("transport", "pty")
    if transport not in EMULATOR_TRANSPORTS:
        raise UsageError(f"{spec.text}: transport is {', '.join(EMULATOR_TRANSPORTS)}, not {transport!r}")
    listen, export = EMULATOR_TRANSPORTS[transport]
    try:
        url = emulated.serve(listen)
    except ValueError as exc:
        raise UsageError(f"{spec.text}: {exc}") from None
    if export is None:
        return url
    exported = ser2net.lend(url, mode=export, baudrate=baudrate)
    closers.append(exported.release)
    return exported.url


def _open_url(spec: DeviceSpec, *, timeout_scale: float, link_timeout: float, lease_timeout: float) -> DeviceHandle:
    """A register by its URL, leased (harness.leases) when it is a port other processes can
    reach (a tty, a TCP or RFC 2217 endpoint): two runs never drive it at once."""
    check_url(spec.url)
    port = leases.leased_url(spec.url)
    if port is None:
        return _open_port(spec, timeout_scale=timeout_scale, link_timeout=link_timeout)
    lease = leases.acquire(port, f"url:{port}", spec.text, lease_timeout)
    try:
        handle = _open_port(spec, timeout_scale=timeout_scale, link_timeout=link_timeout)
    except BaseException:
        lease.release()
        raise
    handle._closers.insert(0, lease.release)  # released last, after the port is closed
    return handle


def _open_port(spec: DeviceSpec, *, timeout_scale: float, link_timeout: float) -> DeviceHandle:
    model = families.model(spec.model)
    family = families.family(model.family)
    check_url(spec.url)
    closers: list[Callable[[], None]] = []
    lab: Lab
    control = _control_lab(spec, link_timeout, closers)
    if control is not None:
        lab = control
    else:
        lab = UnavailableLab(
            "у этого устройства нет управления стендом (не настроены источник питания, бумага, часы)",
            description="real device, no instruments",
        )
    trace = Trace(family.describe_bytes)
    baud = spec.params.get("baud", str(model.baudrate))
    if not baud.isdigit():
        _close_all(closers)
        raise UsageError(f"{spec.text}: baud must be a number like 57600, not {baud!r}")
    faults: FaultySerial | None = None
    try:
        policy = Unproven(URL_UNPROVEN)
        transport = open_transport(
            _with_faults(spec, spec.url),
            baudrate=int(baud),
            timeout=link_timeout,
            trace=trace,
            policy=policy,
            scanner=family.scan,
        )
        closers.append(transport.close)
        faults = _watch_faults(transport)
        if faults is not None:  # what the faults make of the requests is guarded too (a replayed frame)
            below = Guard(family.scan, policy, where=f"{spec.url} (after fault injection)")
            faults.tx_check = lambda data: below.check(data, trace)
        link = Link(transport, timeout_scale=timeout_scale)
        kkt = family.make_driver(link, model=model.id)
        kkt.connect()
    except BaseException as exc:  # Ctrl-C or a bug while connecting too: the port (its exclusive lock) is closed
        _note_faults(exc, faults)
        _close_all(closers)
        raise
    return DeviceHandle(spec, kkt, lab, trace, link, family, model, None, None, closers, faults)


def _open_labgrid(
    spec: DeviceSpec, *, timeout_scale: float, link_timeout: float, lab: LabOptions | None
) -> DeviceHandle:
    """A register on a labgrid place: the run's place (harness.labgrid.hold_places), else acquired
    now and released with the handle; one test at a time on it (a lease on its URL, as lab: does);
    a remote register nothing proves sacrificial (the guard refuses destructive requests)."""
    from . import labgrid

    place, release = labgrid.open_place(spec, families.model_ids())
    closers: list[Callable[[], None]] = [release]
    try:
        model = families.model(place.model)
        family = families.family(model.family)
        timeout = (lab or LabOptions()).lease_timeout
        closers.append(leases.acquire(place.url, f"labgrid:{place.name}", place.where, timeout).release)
        trace = Trace(family.describe_bytes)
        trace.note(f"{place.where}: {place.url} ({place.protocol}), held by {place.holder}")
        transport = open_transport(
            place.url,
            baudrate=place.speed,
            timeout=link_timeout,
            trace=trace,
            policy=Unproven(LABGRID_UNPROVEN),
            scanner=family.scan,
        )
        closers.append(transport.close)
        link = Link(transport, timeout_scale=timeout_scale)
        kkt = family.make_driver(link, model=model.id)
        kkt.connect()
        place_lab = _control_lab(spec, link_timeout, closers) or labgrid.PlaceLab(place, kkt)
    except BaseException:
        _close_all(closers)
        raise
    opened = replace(spec, model=model.id, url=place.url)
    return DeviceHandle(opened, kkt, place_lab, trace, link, family, model, None, None, closers)


def _control_lab(spec: DeviceSpec, link_timeout: float, closers: list[Callable[[], None]]) -> Lab | None:
    """The lab of ``control=tcp://…`` (an out-of-process emulator's control channel), None without it."""
    control_url = spec.params.get("control")
    if not control_url:
        return None
    try:
        client = ControlClient(control_url, timeout=link_timeout)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{spec.text}: cannot reach the control channel {control_url}: {exc}") from None
    closers.append(client.close)
    return EmulatorLab(client.request, description=f"emulator control {control_url}")


def _with_faults(spec: DeviceSpec, url: str) -> str:
    """``url`` wrapped in ``faulty://`` when the spec has ``faults=`` (harness.faults)."""
    schedule = spec.faults
    return url if schedule is None else faulty_url(url, schedule)


def _note_faults(exc: BaseException, faults: FaultySerial | None) -> None:
    """A connection that failed under fault injection says which faults it met (exception notes)."""
    if faults is not None and faults.injected:
        exc.add_note("faults injected while connecting: " + "; ".join(f.describe() for f in faults.injected))


def _watch_faults(transport: Transport) -> FaultySerial | None:
    """A fault-injecting port under ``transport`` (``faults=`` or a ``faulty://`` URL): its schedule
    and every fault it injects go to the wire trace as notes.  None for any other port."""
    port = transport.port
    if not isinstance(port, FaultySerial):
        return None
    trace = transport.trace
    schedule = port.schedule.text if port.schedule is not None else "?"
    trace.note(f"fault injection on: {schedule} (over {port.inner_url})")
    port.listeners.append(lambda fault: trace.note(f"fault injected: {fault.describe()}"))
    return port
