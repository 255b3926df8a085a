"""The emulated OFD is online by default: a shop's register reaches its OFD, so a POS developer's
documents leave, on every model, through ``build_emulator`` (``kkt-hil emulate``), ``emulator:``
specs (the scenario suite) and a bare :class:`FiscalCore`.  Offline is a fault switched on: the
lab's ``ofd`` op, or the start-up setting ``ofd=offline`` (``--set ofd=offline``), which an
explicit command line also applies over a loaded ``--state`` file.

In process, no network, no sleeping: the in-process OFD delivers inside the commit; the CLI part
uses the frozen-clock subprocess helpers of tests/cli_helpers.py (loopback only, deadlines).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from devices.emulator.build import build_emulator
from devices.emulator.core import FiscalCore
from devices.emulator.profiles import PROFILES, profile
from harness import open_kkt
from harness.device import Item, PaymentKind, ReceiptKind

from .cli_helpers import Control, start_emulator

CLOCK = "2021-03-01T10:00:00"


def started(model: str = "kf", **settings: str) -> FiscalCore:
    core = build_emulator(model, {"clock": CLOCK, **settings}).core
    if not core.initialised:
        core.start_work(core.now())
    return core


def sale(core: FiscalCore) -> int:
    core.open_receipt(ReceiptKind.SALE, None, "Кассир")
    core.add_item("Сахар", Decimal(1), Decimal("100.00"))
    core.pay(PaymentKind.CASH, Decimal("100.00"))
    return core.close_receipt().number


def unsent(core: FiscalCore) -> list[int]:
    return [d.number for d in core.unsent()]


# ------------------------------------------------------------------ the default


@pytest.mark.parametrize("model", sorted(PROFILES))
def test_every_emulator_starts_online_and_its_documents_leave(model: str) -> None:
    core = started(model)
    assert core.ofd_online is True and core.snapshot()["ofd_online"] is True
    opened = core.open_shift("Кассир").number
    number = sale(core)
    assert unsent(core) == []
    assert core.document_by_number(opened).delivered and core.document_by_number(number).delivered
    assert [e.detail for e in core.journal if e.event == "OFD receipt"][-2:] == [
        f"FD {opened} delivered",
        f"FD {number} delivered",
    ]


def test_a_bare_core_is_online_unless_built_offline() -> None:
    online = FiscalCore(profile("kf"))
    assert (online.ofd_online, online.ofd_allowed) == (True, True)
    offline = FiscalCore(profile("kf"), ofd_online=False)
    assert (offline.ofd_online, offline.ofd_allowed) == (False, False)


def test_going_offline_is_a_fault_switched_on_and_off() -> None:
    core = started()
    core.set_ofd(False)
    opened = core.open_shift("Кассир").number
    number = sale(core)
    assert unsent(core) == [opened, number]
    core.set_ofd(True)
    assert unsent(core) == [] and core.ofd_online


@pytest.mark.parametrize("model", ["kf", "atol"])
def test_an_emulator_spec_is_online_and_the_driver_sees_the_link_up(model: str) -> None:
    with open_kkt(f"emulator:{model}?clock={CLOCK}") as h:
        h.kkt.open_shift("Кассир")
        h.kkt.sell([Item("Молоко", Decimal("80.00"))])
        queue = h.kkt.ofd_queue()
        assert queue.count == 0
        assert queue.connected is True  # Pirit 0x78/7 bit 0, ATOL "transport connected"


# ------------------------------------------------------------------ ofd=offline


@pytest.mark.parametrize("value", ["offline", "OFFLINE", " offline "])
def test_ofd_offline_starts_the_link_down_until_the_lab_brings_it_up(value: str) -> None:
    emulator = build_emulator("kf", {"clock": CLOCK, "ofd": value})
    core = emulator.core
    core.start_work(core.now())
    assert (core.ofd_online, core.ofd_allowed, emulator.ofd_link) == (False, False, None)
    opened = core.open_shift("Кассир").number
    assert unsent(core) == [opened]
    assert emulator.control({"op": "ofd", "online": True}) == {"ok": True, "online": True, "unsent": 0}


def test_ofd_online_is_the_default_spelled_out() -> None:
    core = started(ofd="online")
    assert core.ofd_online and core.ofd_allowed
    core.open_shift("Кассир")
    assert unsent(core) == []


def test_an_emulator_spec_can_start_offline() -> None:
    with open_kkt(f"emulator:kf?ofd=offline&clock={CLOCK}") as h:
        h.kkt.open_shift("Кассир")
        h.kkt.sell([Item("Молоко", Decimal("80.00"))])
        queue = h.kkt.ofd_queue()
        assert (queue.count, queue.connected) == (2, False)
        h.lab.ofd(True)
        assert h.kkt.ofd_queue().count == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ofd": "bogus"}, "ofd takes online, offline or tcp://127.0.0.1:PORT"),
        ({"ofd": ""}, "ofd takes online, offline"),
        ({"ofd": "offline", "ofd_retry": "1"}, "ofd_retry goes with ofd=tcp://"),
        ({"ofd": "online", "ofd_timeout": "1"}, "ofd_timeout goes with ofd=tcp://"),
        ({"ofd": "tcp://10.1.2.3:21101"}, "ofd: only loopback"),
    ],
)
def test_bad_ofd_values_name_what_is_allowed(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_emulator("kf", settings)


# ------------------------------------------------------------------ kkt-hil emulate


def test_emulate_starts_online_and_set_ofd_offline_starts_it_down(spawn) -> None:
    proc, _, control_port = start_emulator(spawn)
    assert control_port is not None
    control = Control(control_port)
    try:
        assert control.state()["ofd_online"] is True
    finally:
        control.close()
    assert proc.terminate() == 0

    proc, _, control_port = start_emulator(spawn, "--set", "ofd=offline")
    assert control_port is not None
    control = Control(control_port)
    try:
        assert control.state()["ofd_online"] is False
        assert control.ok({"op": "ofd", "online": True})["online"] is True
    finally:
        control.close()
    assert proc.terminate() == 0


def test_set_ofd_on_the_command_line_wins_over_a_loaded_state(spawn, tmp_path: Path) -> None:
    state = tmp_path / "kf.json"
    proc, _, _ = start_emulator(spawn, "--state", str(state), control=False)
    assert proc.terminate() == 0
    assert '"ofd_online": true' in state.read_text("utf-8")

    proc, _, control_port = start_emulator(spawn, "--state", str(state), "--set", "ofd=offline", clock=None)
    assert control_port is not None
    control = Control(control_port)
    try:
        assert control.state()["ofd_online"] is False
    finally:
        control.close()
    assert proc.terminate() == 0

    # without the setting, the saved state says how the link was: down
    proc, _, control_port = start_emulator(spawn, "--state", str(state), clock=None)
    assert control_port is not None
    control = Control(control_port)
    try:
        assert control.state()["ofd_online"] is False
    finally:
        control.close()
    assert proc.terminate() == 0
