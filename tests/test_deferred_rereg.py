"""Dreamkas deferred re-registration end to end: the Pirit driver on the wire, fisGo in the
emulator, the hub over real HTTP on loopback.  Worked examples from the Dreamkas partner material."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import pytest

from devices.dreamkas.fisgo import FisGo, attach_fisgo
from devices.dreamkas.hub import Hub, serve
from devices.dreamkas.hub_client import AdminClient
from devices.emulator.build import Emulator
from devices.emulator.core import FiscalCore
from harness.connect import DeviceHandle, open_device
from harness.device import DocumentKind, Item, PaperState, TaxSystem
from harness.errors import NoPaper
from harness.spec import DeviceSpec

DREAMKAS = ["kf", "dkf", "start"]
SUGAR = Item("Сахар", Decimal("100.00"))


@dataclass
class Rig:
    handle: DeviceHandle
    admin: AdminClient
    fisgo: FisGo

    @property
    def kkt(self):
        return self.handle.kkt

    @property
    def core(self) -> FiscalCore:
        emulated = self.handle.emulator
        assert isinstance(emulated, Emulator)
        return emulated.core

    def at(self, when: str) -> None:
        self.core.lab_clock_set(datetime.fromisoformat(when))

    def schedule(self, target: TaxSystem, when: date) -> int:
        task = self.admin.schedule(self.core.serial, target.names, when.isoformat())
        self.fisgo.poll()
        return task

    def status(self) -> dict:
        return self.admin.device(self.core.serial)

    def documents(self) -> list[tuple[int, DocumentKind]]:
        return [(d.number, DocumentKind(d.kind)) for d in self.core.fn.archive]


def make_rig(model: str, clock: str, **settings: str) -> Iterator[Rig]:
    server = serve(Hub())
    spec = DeviceSpec("emulator", model, f"emulator:{model}", params={"clock": clock, **settings})
    handle = open_device(spec, timeout_scale=0.5)
    try:
        handle.lab.ofd(True)  # a normal shop: documents reach the OFD (scenario B covers the rest)
        fisgo = attach_fisgo(handle.emulator, server.url)
        yield Rig(handle, AdminClient(server.url, timeout=5), fisgo)
    finally:
        handle.close()
        server.close()


@pytest.fixture(params=DREAMKAS)
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    yield from make_rig(request.param, "2020-12-31T08:00:00")


def assert_reregistered_before_open(rig: Rig, opened_number: int, target: TaxSystem) -> None:
    docs = dict(rig.documents())
    assert docs[opened_number] is DocumentKind.SHIFT_OPEN
    assert docs[opened_number - 1] is DocumentKind.REREGISTRATION, rig.documents()
    assert rig.kkt.fn().tax_systems == target  # read back with 0x02/23
    status = rig.status()
    assert status["updated"] and status["task_received"] and status["reregistered"], status


def test_example_1_scheduled_31_12_applied_before_the_next_open(rig: Rig) -> None:
    rig.kkt.open_shift()  # 31.12 08:00: the day's shift is already open when the task arrives
    rig.schedule(TaxSystem.OSN, date(2020, 12, 31))
    assert rig.status()["task_received"] and not rig.status()["reregistered"]
    rig.kkt.sell([SUGAR])
    rig.at("2020-12-31T20:00:00")
    rig.kkt.close_shift()
    assert DocumentKind.REREGISTRATION not in dict(rig.documents()).values()  # never inside the shift
    rig.at("2021-01-01T12:00:00")
    opened = rig.kkt.open_shift()
    assert_reregistered_before_open(rig, opened.number, TaxSystem.OSN)


def test_example_1_variant_opening_on_31_12_also_reregisters(rig: Rig) -> None:
    rig.schedule(TaxSystem.OSN, date(2020, 12, 31))
    rig.at("2020-12-31T21:00:00")
    assert_reregistered_before_open(rig, rig.kkt.open_shift().number, TaxSystem.OSN)


def test_example_2_scheduled_01_01_not_on_31_12(rig: Rig) -> None:
    rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
    rig.kkt.open_shift()
    rig.at("2020-12-31T20:00:00")
    rig.kkt.close_shift()
    rig.at("2020-12-31T21:00:00")
    rig.kkt.open_shift()  # still 31.12 in device time: nothing happens
    assert rig.kkt.fn().tax_systems == TaxSystem.USN_INCOME
    rig.kkt.close_shift()
    rig.at("2021-01-01T12:00:00")
    assert_reregistered_before_open(rig, rig.kkt.open_shift().number, TaxSystem.OSN)


def test_example_3_24_hour_shop_midnight(rig: Rig) -> None:
    rig.schedule(TaxSystem.PATENT, date(2021, 1, 1))
    rig.at("2020-12-31T00:15:00")
    rig.kkt.open_shift()
    rig.at("2020-12-31T23:50:00")
    rig.kkt.close_shift()
    rig.at("2021-01-01T00:10:00")
    assert_reregistered_before_open(rig, rig.kkt.open_shift().number, TaxSystem.PATENT)


@pytest.mark.parametrize(("model", "old"), [("kf", "2.25.9"), ("dkf", "1.11.0"), ("start", "10.50.0")])
def test_firmware_below_threshold_never_receives_the_task(model: str, old: str) -> None:
    for rig in make_rig(model, "2021-01-01T09:00:00", firmware=old):
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        opened = rig.kkt.open_shift()
        assert dict(rig.documents())[opened.number - 1] is not DocumentKind.REREGISTRATION
        status = rig.status()
        assert status["firmware"] == old
        assert not status["updated"] and not status["task_received"] and not status["reregistered"]
        # the firmware update, then a second contact: now the task arrives and applies at the next open
        rig.kkt.close_shift()
        gate = rig.core.profile.rereg_min_firmware
        assert gate is not None
        rig.core.set_firmware(gate)
        rig.fisgo.poll()
        assert rig.status()["updated"] and rig.status()["task_received"]
        assert_reregistered_before_open(rig, rig.kkt.open_shift().number, TaxSystem.OSN)


def test_withheld_task_is_never_applied() -> None:
    for rig in make_rig("kf", "2020-12-31T09:00:00"):
        rig.admin.withhold(rig.core.serial, True)
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        rig.at("2021-01-01T09:00:00")
        opened = rig.kkt.open_shift()
        assert dict(rig.documents())[opened.number - 1] is not DocumentKind.REREGISTRATION
        assert rig.kkt.fn().tax_systems == TaxSystem.USN_INCOME
        status = rig.status()
        assert status["task_received"] is False and status["reregistered"] is False


@pytest.mark.parametrize(
    ("utc_offset", "local", "due"),
    [
        (10, "2021-01-01T01:00:00", True),  # МСК+7: 18:00 МСК on 31.12 is already 01.01 here
        (2, "2020-12-31T23:30:00", False),  # МСК−1 (Калининград): 00:30 МСК on 01.01 is still 31.12 here
    ],
)
def test_device_local_date_decides_not_the_hub_zone(utc_offset: int, local: str, due: bool) -> None:
    for rig in make_rig("kf", "2020-12-30T09:00:00", utc_offset_hours=str(utc_offset)):
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        rig.at(local)
        opened = rig.kkt.open_shift()
        applied = dict(rig.documents())[opened.number - 1] is DocumentKind.REREGISTRATION
        assert applied is due
        assert rig.status()["local_date"] == local[:10]


def test_retry_after_paper_comes_back() -> None:
    for rig in make_rig("dkf", "2021-01-01T09:00:00"):
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        done = rig.core.fn.registrations_done
        rig.handle.lab.paper(PaperState.OUT)
        with pytest.raises(NoPaper):
            rig.kkt.open_shift()
        assert rig.core.fn.registrations_done == done
        status = rig.status()
        assert status["task_received"] and not status["reregistered"] and status["last_error"]
        rig.handle.lab.paper(PaperState.OK)
        assert_reregistered_before_open(rig, rig.kkt.open_shift().number, TaxSystem.OSN)
        assert rig.core.fn.registrations_done == done + 1


def test_late_task_after_manual_reregistration_is_a_noop() -> None:
    for rig in make_rig("start", "2021-01-02T09:00:00"):
        rig.kkt.reregister(TaxSystem.OSN)  # the manual fallback
        done = rig.core.fn.registrations_done
        last = rig.kkt.fn().last_fd_number
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))  # arrives late
        opened = rig.kkt.open_shift()
        assert opened.number == last + 1  # no second form-11 document
        assert rig.core.fn.registrations_done == done
        assert rig.status()["reregistered"] is True


def test_power_loss_between_reregistration_and_shift_open() -> None:
    for rig in make_rig("kf", "2021-01-01T09:00:00"):
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        done = rig.core.fn.registrations_done
        rig.handle.lab.paper(PaperState.OK, after_lines=2)  # paper ends printing the form-11 report
        with pytest.raises(NoPaper):
            rig.kkt.open_shift()
        assert rig.core.fn.registrations_done == done + 1
        rig.handle.lab.power("cycle")
        rig.handle.lab.paper(PaperState.OK)
        rig.kkt.connect()
        opened = rig.kkt.open_shift()
        kinds = [k for _, k in rig.documents()]
        assert kinds.count(DocumentKind.REREGISTRATION) == 1
        assert dict(rig.documents())[opened.number] is DocumentKind.SHIFT_OPEN
        assert rig.core.fn.registrations_done == done + 1
        assert rig.status()["reregistered"] is True


@pytest.mark.parametrize(
    ("defect", "symptom"),
    [
        (
            "compare_dates_as_text",
            "applied on 31.12 for a 01.01.2021 task? no: applied a 01.12.2021 task on 31.12.2020",
        ),
        ("skip_due_task_on_open", "the shift opens on the old regime"),
    ],
)
def test_seeded_defects_change_the_outcome(defect: str, symptom: str) -> None:
    for rig in make_rig("kf", "2020-12-31T09:00:00", defects=defect):
        when = date(2021, 12, 1) if defect == "compare_dates_as_text" else date(2020, 12, 31)
        rig.schedule(TaxSystem.OSN, when)
        opened = rig.kkt.open_shift()
        applied = dict(rig.documents())[opened.number - 1] is DocumentKind.REREGISTRATION
        # correct firmware: a 01.12.2021 task is not due on 31.12.2020 ("31.12.2020" > "01.12.2021" as text)
        assert applied is (defect == "compare_dates_as_text"), symptom


def test_hub_fixture_skips_for_models_without_the_cloud(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_cloud(kkt, hub):
            hub.schedule(["osn"], "2021-01-01")
        """
    )
    from harness.families import model_ids

    if "atol" not in model_ids():
        pytest.skip("АТОЛ emulator not available in this build")
    result = pytester.runpytest("--kkt", "emulator:atol", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED *Устройство не умеет: у АТОЛ 30Ф нет облака Dreamkas (Кабинета)*"])


pytest_plugins = ["pytester"]


def test_a_refused_report_never_blocks_polling() -> None:
    for rig in make_rig("kf", "2021-01-01T09:00:00"):
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        rig.admin.reset()  # the hub forgets the task: the coming report will be refused (4xx)
        rig.kkt.open_shift()  # re-registers, report refused
        rig.kkt.close_shift()
        rig.schedule(TaxSystem.PATENT, date(2021, 1, 1))  # the reset hub reuses id 1: the register ignores a done id
        second = rig.schedule(TaxSystem.PATENT, date(2021, 1, 1))
        assert second in rig.fisgo.tasks  # the link still works
        assert_reregistered_before_open(rig, rig.kkt.open_shift().number, TaxSystem.PATENT)


def test_printout_of_a_deferred_reregistration_is_never_lost() -> None:
    for rig in make_rig("kf", "2021-01-01T09:00:00", paper_check_before_commit="0"):
        rig.schedule(TaxSystem.OSN, date(2021, 1, 1))
        rig.handle.lab.paper(PaperState.OK, after_lines=3)
        with pytest.raises(NoPaper):
            rig.kkt.open_shift()  # form 11 committed, its printout pending: the shift must not open
        assert rig.core.pending is not None and rig.core.pending.kind == DocumentKind.REREGISTRATION
        assert not rig.core.shift.is_open
