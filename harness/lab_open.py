"""Open a ``lab:<id>`` register: the inventory entry, its port, the guard, its instruments.

The order matters for safety: the transport is guarded from the first byte by a
:class:`~harness.safety.Sacrificial` policy that refuses every destructive request until the
factory serial read from the register matches the inventory; only then is the identity marked
proven and the registrations left read for the floor.  A register that fails identification is
closed with one line, nothing destructive having been sent.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from . import families, leases
from .bench import DEFAULT_REAL_TIME_BUDGET, BenchLab, wait_for_power_up
from .errors import HarnessError, LinkError, SafetyRefusal, UsageError
from .fiscal import registrations_left
from .inventory import Inventory, LabDevice, inventory_path, load_inventory
from .lab import HubLab
from .link import Link
from .operator import make_operator
from .safety import Destructive, Sacrificial
from .spec import DeviceSpec
from .timelens import LensedKkt, ScenarioTime
from .trace import Trace
from .transport import open_transport

LEASE_TIMEOUT = 1800.0  # seconds: a test on a lab register seldom takes longer
LAB_KINDS = ("lab", "pool")  # specs of inventory registers: one entry, or a pool of them


@dataclass
class LabOptions:
    """What a run (or a lab script) says about lab registers."""

    inventory: str | Path | Inventory | None = None  # --inventory / KKT_HIL_INVENTORY / ./kkt-hil.toml
    allow_destructive: bool = False  # --allow-destructive
    destructive: bool = False  # the scenario (or script) asks for destructive operations
    operator: str | None = None  # --operator: overrides the entry's
    real_time_budget: float = DEFAULT_REAL_TIME_BUDGET
    lease_timeout: float = LEASE_TIMEOUT  # waiting for another test or run to let the register go

    def load(self, spec_text: str) -> Inventory:
        if isinstance(self.inventory, Inventory):
            return self.inventory
        path = inventory_path(str(self.inventory) if self.inventory else None)
        if path is None:
            raise UsageError(
                f"{spec_text}: needs a lab inventory: --inventory FILE, KKT_HIL_INVENTORY, or ./kkt-hil.toml"
            )
        return load_inventory(path)


@dataclass
class Bench:
    """The lab side of an open lab register, for the plugin: the entry, the policy, the lens."""

    entry: LabDevice
    policy: Sacrificial
    lens: ScenarioTime
    lab: BenchLab
    hub: HubLab | None = None  # the Кабинет side, when the entry names the harness hub it polls
    pool: str | None = None  # "pool:NAME" when the entry was leased from a pool for this test


class DeviceClock:
    """The register's clock as the lab knows it: real time plus the skew the lab's clock moves
    left on it.  A Pirit after power-up needs "start of work" with a time not before its last
    document, so the skew is kept next to the inventory (``<inventory>.clock.json``) for the
    next run as well."""

    def __init__(self, inventory: Inventory, device_id: str) -> None:
        self._path = inventory.path.with_suffix(".clock.json")
        self._id = device_id
        self.skew = timedelta(seconds=float(self._load().get(device_id, 0.0)))

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))} if isinstance(data, dict) else {}

    def now(self) -> datetime:
        """Rounded up to the second: the skew was taken from a clock that shows whole seconds, so
        the register's own time is never later than this (a "start of work" that sends a time
        before its last document, made in this very second, is refused)."""
        moment = datetime.now() + self.skew
        return moment.replace(microsecond=0) + timedelta(seconds=1 if moment.microsecond else 0)

    def observe(self, device_time: datetime) -> None:
        """The register showed ``device_time`` just now (or was just set to it)."""
        self.skew = device_time - datetime.now()
        data = self._load()
        data[self._id] = round(self.skew.total_seconds(), 1)
        temporary = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
        try:
            temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
            os.replace(temporary, self._path)
        except OSError:
            pass  # a read-only lab directory: the skew lives as long as this run


def _registrations_left(kkt: Any, entry: LabDevice) -> int | None:
    fn = kkt.fn()
    return registrations_left(fn.registrations_left, fn.registrations_done, entry.fn_registration_limit)


def _unknown_registrations(entry: LabDevice, where: str) -> str:
    if entry.fn_registration_limit is None:
        return (
            f"the registrations left on the ФН are not known: the register may count only those done; "
            f"set fn_registration_limit in {where} to the ФН's limit"
        )
    return "the registrations left on the ФН could not be read"


Opened = tuple[Any, BenchLab, Trace, Link, families.Family, Any, Bench, list[Callable[[], None]]]


def lab_entries(inventory: Inventory, spec: DeviceSpec) -> list[LabDevice]:
    """The inventory entries a ``lab:<id>`` (one) or ``pool:<name>`` (its members) spec names."""
    return inventory.pool(spec.target) if spec.kind == "pool" else [inventory.device(spec.target)]


def open_lab(spec: DeviceSpec, options: LabOptions, *, timeout_scale: float, link_timeout: float) -> Opened:
    """(scenario-facing kkt, lab, trace, link, family, model, bench, closers) of ``lab:<id>``, or
    of the member of ``pool:<name>`` that was free first (every member tried without waiting,
    then any of them waited for up to the lease timeout)."""
    inventory = options.load(spec.text)
    members = [(entry, entry.resolve_url()) for entry in lab_entries(inventory, spec)]
    candidates = [leases.Candidate(url, f"lab:{e.id}", f"lab:{e.id} ({e.source})") for e, url in members]
    pool = spec.text.partition("?")[0] if spec.kind == "pool" else None
    lease = leases.acquire_any(candidates, options.lease_timeout, name=pool or "")
    entry, url = members[candidates.index(lease.candidate)]
    try:
        return _open_entry(inventory, entry, url, options, [lease.release], pool, timeout_scale, link_timeout)
    except BaseException:
        lease.release()
        raise


def _open_entry(
    inventory: Inventory,
    entry: LabDevice,
    url: str,
    options: LabOptions,
    closers: list[Callable[[], None]],
    pool: str | None,
    timeout_scale: float,
    link_timeout: float,
) -> Opened:
    """The leased register ``entry`` at ``url``; ``closers`` (the lease's release) run on failure."""
    where = f"lab:{entry.id} ({entry.source})"
    model = families.model(entry.model)
    family = families.family(model.family)
    policy = Sacrificial(
        entry=where,
        sacrificial=entry.sacrificial,
        allow_destructive=options.allow_destructive,
        rereg_floor=entry.rereg_floor,
        test_destructive=options.destructive,
        identity="the register's factory serial is not verified yet",
        registrations_unknown=_unknown_registrations(entry, where),
    )
    try:
        trace = Trace(family.describe_bytes)
        if pool is not None:
            trace.note(f"{pool}: leased lab:{entry.id} ({url})")
        transport = open_transport(
            url,
            baudrate=entry.baud or model.baudrate,
            timeout=link_timeout,
            trace=trace,
            policy=policy,
            scanner=family.scan,
        )
        closers.append(transport.close)
        link = Link(transport, timeout_scale=timeout_scale)
        clock = DeviceClock(inventory, entry.id)
        kkt = family.make_driver(link, model=model.id, host_clock=clock.now)
        supply = _open_supply(entry, where, closers)
        if supply is not None and not supply.output_state():  # a run that died with the power off
            trace.note("the bench supply's output was off: switched on")
            supply.output(True)
            wait_for_power_up(kkt)
        else:
            kkt.connect()
        clock.observe(kkt.clock())
        serial = kkt.info().serial
        if serial != entry.serial:
            raise UsageError(
                f"{where}: the register at {url} reports factory serial {serial}, the inventory says {entry.serial}"
            )
        policy.identity = None
        policy.registrations_left = _registrations_left(kkt, entry)
        proxy = _open_proxy(entry, where, closers)
        lens = ScenarioTime()
        hub = _hub_of(entry, model, serial, lens, policy, trace, options.real_time_budget, closers)
        if hub is not None:
            hub.check()  # a hub that is down: one line now, not a broken teardown later
        bench_lab = BenchLab(
            kkt,
            entry=where,
            operator=make_operator(options.operator or entry.operator),
            lens=lens,
            supply=supply,
            proxy=proxy,
            budget=options.real_time_budget,
            on_fn_changed=lambda: setattr(policy, "registrations_left", _registrations_left(kkt, entry)),
            on_clock_set=clock.observe,
            hub=hub,
            registration_limit=entry.fn_registration_limit,
            sacrificial=entry.sacrificial,
        )
    except BaseException:
        for closer in reversed(closers[1:]):  # the lease goes last, in open_lab
            with contextlib.suppress(Exception):
                closer()
        raise
    bench = Bench(entry, policy, lens, bench_lab, hub, pool)
    return LensedKkt(kkt, lens), bench_lab, trace, link, family, model, bench, closers


def _hub_of(
    entry: LabDevice,
    model: Any,
    serial: str,
    lens: ScenarioTime,
    policy: Sacrificial,
    trace: Trace,
    budget: float,
    closers: list[Callable[[], None]],
) -> HubLab | None:
    """The Кабинет of a lab register; scheduling a task is a re-registration the register will do
    by itself, so the safety policy is asked first, as for a 0x60 on the wire.  Its client's
    connection is closed with the register (``closers``)."""
    cloud = families.cloud_of(model.id)
    if not entry.hub or cloud is None:
        return None
    operation = "re-registration (Кабинет task)"

    def guard() -> None:
        reason = policy.refusal(Destructive(operation))
        if reason is not None:
            trace.note(f"refused before scheduling: {operation} ({reason})")
            raise SafetyRefusal(f"{operation} refused on lab:{entry.id}: {reason} (no task was scheduled)")

    admin = cloud.admin(entry.hub)
    close = getattr(admin, "close", None)  # its kept connection to the hub
    if callable(close):
        closers.append(close)
    return HubLab(
        admin,
        serial,
        url=entry.hub,
        lens=lens,
        poll_wait=entry.hub_poll_seconds,
        budget=budget,
        guard=guard,
    )


def _open_supply(entry: LabDevice, where: str, closers: list[Callable[[], None]]) -> Any:
    if entry.supply is None and entry.labgrid is not None:  # its labgrid place's power resource, if any
        from .labgrid import entry_supply

        return entry_supply(entry)
    if entry.supply is None:
        return None
    from .instruments.supply import BenchSupply  # pyvisa: imported only for a lab with a supply

    supply = BenchSupply(entry.supply.resource, channel=entry.supply.channel)
    closers.append(supply.close)
    try:
        supply.identify()
        if entry.supply.voltage is not None:
            supply.set_voltage(entry.supply.voltage)
        if entry.supply.current_limit is not None:
            supply.set_current_limit(entry.supply.current_limit)
    except LinkError as exc:
        raise HarnessError(f"{where}: {exc}") from None
    return supply


def _open_proxy(entry: LabDevice, where: str, closers: list[Callable[[], None]]) -> Any:
    if entry.ofd is None:
        return None
    from .ofd.proxy import OfdProxy

    try:
        proxy = OfdProxy(entry.ofd.listen, entry.ofd.upstream, allow_lan=True)  # addresses the inventory names
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{where}: cannot start the OFD proxy on {entry.ofd.listen}: {exc}") from None
    closers.append(proxy.close)
    problem = proxy.check_upstream(2.0)
    if problem:
        raise HarnessError(f"{where}: the OFD upstream {entry.ofd.upstream} is down: {problem}")
    proxy.set_mode("block")  # each test starts, as on an emulator, with the OFD out of reach
    return proxy
