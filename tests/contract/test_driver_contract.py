"""Each family's driver against its emulator, through the device interface only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest

from harness import families, open_kkt
from harness.device import (
    Capability,
    DocumentKind,
    FnWarning,
    Item,
    Kkt,
    OfdQueue,
    PaperState,
    Payment,
    PaymentKind,
    ShiftState,
    TaxSystem,
)
from harness.errors import (
    ClockBehindLastDocument,
    CoverOpen,
    DeviceError,
    LinkCorrupted,
    LinkTimeout,
    NoChanges,
    NoPaper,
    OfdTimeout,
    ShiftExpired,
    ShiftOpen,
    TaxSystemNotRegistered,
    UsageError,
)
from harness.families import Family
from harness.link import Link
from harness.trace import Trace
from harness.transport import open_transport

from .conftest import SCALE, START, SUGAR, Rig


def _open_shift(kkt: Kkt) -> None:
    assert kkt.status().shift is ShiftState.CLOSED
    opened = kkt.open_shift()
    assert (opened.kind, opened.number, opened.shift_number) == (DocumentKind.SHIFT_OPEN, 2, 1)


def test_identity_and_state(rig: Rig) -> None:
    kkt, state, model = rig.kkt, rig.state(), rig.handle.model
    info = kkt.info()
    assert (info.model, info.serial, info.model_code, info.ffd) == (
        model.id,
        rig.emulated.serial,
        model.model_code,
        "1.2",
    )
    assert (info.firmware, info.fn_serial) == (state["firmware"], state["fn"]["serial"])
    status = kkt.status()
    assert (status.shift, status.paper, status.initialised) == (ShiftState.CLOSED, PaperState.OK, True)
    assert not status.document_open and not status.pending_print and not status.cover_open
    fn = kkt.fn()
    assert (fn.tax_systems, fn.last_fd_number, fn.last_registration_fd) == (TaxSystem.USN_INCOME, 1, 1)
    assert fn.registrations_done == 1  # the registration at activation
    assert fn.valid_until == date.fromisoformat(state["fn"]["valid_until"])
    assert kkt.clock() == START
    assert kkt.ofd_queue() == OfdQueue(0, None, None, connected=True)  # a shop's register reaches its OFD
    assert {Capability.SET_CLOCK, Capability.REREGISTER, Capability.CONTINUE_PRINT} <= kkt.capabilities
    rendered = rig.handle.trace.render()
    assert " TX " in rendered and " RX " in rendered and "|" in rendered  # decoded by the family


def test_shift_sale_x_report_z_and_the_ofd_queue(rig: Rig) -> None:
    kkt, lab = rig.kkt, rig.lab
    lab.ofd(False)  # the documents wait for the OFD
    _open_shift(kkt)
    receipt = kkt.sell([SUGAR, Item("Соль", Decimal("25.50"), Decimal("2"))])
    assert (receipt.kind, receipt.number, receipt.shift_number) == (DocumentKind.RECEIPT, 3, 1)
    assert (receipt.number_in_shift, receipt.total, receipt.datetime) == (1, Decimal("151.00"), START)
    assert rig.state()["fn"]["documents"][-1]["total"] == "151.00"
    card = kkt.sell([SUGAR], [Payment(Decimal("100.00"), PaymentKind.ELECTRONIC)])
    assert (card.number, card.number_in_shift, card.total) == (4, 2, Decimal("100.00"))
    queue = kkt.ofd_queue()
    assert (queue.count, queue.first_number, queue.first_datetime, queue.connected) == (3, 2, START, False)
    lab.ofd(True)
    assert kkt.ofd_queue() == OfdQueue(0, None, None, connected=True)
    kkt.x_report()
    assert kkt.fn().last_fd_number == 4  # an X report is printed only
    closed = kkt.close_shift()
    assert (closed.kind, closed.number, closed.shift_number) == (DocumentKind.SHIFT_CLOSE, 5, 1)
    assert kkt.status().shift is ShiftState.CLOSED
    assert any("X-ОТЧЁТ" in line for line in lab.tape())


def test_refusals_are_normalized_and_leave_no_document(rig: Rig) -> None:
    kkt, lab = rig.kkt, rig.lab
    _open_shift(kkt)
    refusals: list[DeviceError] = []
    with pytest.raises(ShiftOpen) as again:
        kkt.open_shift()
    refusals.append(again.value)
    with pytest.raises(TaxSystemNotRegistered) as tax:
        kkt.sell([SUGAR], tax_system=TaxSystem.OSN)
    refusals.append(tax.value)
    assert not kkt.status().document_open  # the driver cancelled the refused receipt
    lab.cover(True)
    with pytest.raises(CoverOpen) as cover:
        kkt.sell([SUGAR])
    refusals.append(cover.value)
    lab.cover(False)
    lab.paper(PaperState.OUT)
    assert kkt.status().paper is PaperState.OUT
    with pytest.raises(NoPaper) as paper:
        kkt.sell([SUGAR])
    refusals.append(paper.value)
    with pytest.raises(ShiftOpen) as rereg:
        kkt.reregister(TaxSystem.OSN)
    refusals.append(rereg.value)
    status = kkt.status()
    assert not status.document_open and not status.pending_print
    assert kkt.fn().last_fd_number == 2  # nothing reached the ФН
    for refusal in refusals:  # the vendor's own answer stays on the exception
        assert refusal.vendor == rig.family.name and refusal.code is not None and refusal.command


def test_the_24_hour_rule_and_closing_an_expired_shift(rig: Rig) -> None:
    kkt, lab = rig.kkt, rig.lab
    _open_shift(kkt)
    lab.clock_advance(hours=24, minutes=1)
    assert kkt.status().shift is ShiftState.EXPIRED
    with pytest.raises(ShiftExpired):
        kkt.sell([SUGAR])
    assert kkt.close_shift().number == 3  # closing an expired shift is allowed
    assert kkt.open_shift().shift_number == 2
    assert kkt.sell([SUGAR]).shift_number == 2


def _paper_runs_out_during(rig: Rig, operation: Callable[[Kkt], object]) -> None:
    """A shift opened, paper left for one more line: ``operation`` stops with NoPaper."""
    _open_shift(rig.kkt)
    rig.lab.paper(PaperState.OK, after_lines=1)
    with pytest.raises(NoPaper):
        operation(rig.kkt)


def test_paper_out_mid_receipt_then_continue_print(rig: Rig) -> None:
    kkt, lab = rig.kkt, rig.lab
    lab.ofd(False)  # the documents wait for the OFD
    _paper_runs_out_during(rig, lambda k: k.sell([SUGAR]))
    status = kkt.status()
    assert status.pending_print and not status.document_open and status.paper is PaperState.OUT
    assert kkt.fn().last_fd_number == 3 and kkt.ofd_queue().count == 2  # committed in the ФН
    lab.paper(PaperState.OK)
    doc = kkt.continue_print()
    assert doc is not None and doc.number == 3
    assert kkt.continue_print() is None
    assert kkt.fn().last_fd_number == 3 and not kkt.status().pending_print  # no second document
    assert kkt.sell([SUGAR]).number == 4


def test_paper_out_during_z_then_continue_print(rig: Rig) -> None:
    kkt, lab = rig.kkt, rig.lab
    _paper_runs_out_during(rig, lambda k: k.close_shift())
    assert kkt.status().pending_print and kkt.status().shift is ShiftState.CLOSED
    lab.paper(PaperState.OK)
    doc = kkt.continue_print()
    assert doc is not None and (doc.kind, doc.number) == (DocumentKind.SHIFT_CLOSE, 3)
    assert not kkt.status().pending_print
    assert kkt.open_shift().number == 4


def test_clock_and_reregistration(rig: Rig) -> None:
    kkt = rig.kkt
    with pytest.raises(ClockBehindLastDocument):
        kkt.set_clock(START - timedelta(days=400))
    kkt.set_clock(START + timedelta(days=3))  # > 24 h ahead: the driver repeats to confirm
    assert kkt.clock() == START + timedelta(days=3)
    doc = kkt.reregister(TaxSystem.OSN | TaxSystem.USN_INCOME)
    assert (doc.kind, doc.number) == (DocumentKind.REREGISTRATION, 2)
    assert doc.fiscal_sign == rig.state()["fn"]["documents"][-1]["fiscal_sign"] or doc.fiscal_sign == ""
    fn = kkt.fn()
    assert (fn.tax_systems, fn.last_fd_number, fn.last_registration_fd) == (TaxSystem.OSN | TaxSystem.USN_INCOME, 2, 2)
    assert fn.registrations_done == 2
    with pytest.raises(NoChanges):
        kkt.reregister(TaxSystem.OSN | TaxSystem.USN_INCOME)
    assert kkt.fn().last_fd_number == 2


def test_the_30_day_ofd_block(rig: Rig) -> None:
    kkt, lab = rig.kkt, rig.lab
    lab.ofd(False)
    _open_shift(kkt)
    kkt.close_shift()
    lab.clock_advance(days=30, minutes=1)
    assert FnWarning.OFD_TIMEOUT in kkt.fn().warnings
    with pytest.raises(OfdTimeout):
        kkt.open_shift()
    lab.ofd(True)
    assert FnWarning.OFD_TIMEOUT not in kkt.fn().warnings
    assert kkt.open_shift().shift_number == 2


def test_power_off_is_a_link_timeout_then_reconnect(rig: Rig) -> None:
    kkt, lab = rig.kkt, rig.lab
    _open_shift(kkt)
    lab.power("off")
    with pytest.raises(LinkTimeout):
        kkt.status()
    lab.power("on")
    kkt.connect()
    status = kkt.status()
    assert status.shift is ShiftState.OPEN and status.initialised
    assert kkt.sell([SUGAR]).number == 3


@pytest.mark.parametrize("transport", ["pty", "tcp"])
def test_every_catalogue_model_of_the_family_connects(family: Family, transport: str) -> None:
    for model in family.models:
        with open_kkt(f"emulator:{model.id}?transport={transport}", timeout_scale=SCALE) as handle:
            info = handle.kkt.info()
            assert (info.model, info.model_code) == (model.id, model.model_code)
            assert info.serial.startswith(model.serial_prefix)


def test_a_driver_refuses_another_model(family: Family) -> None:
    if len(family.models) < 2:
        pytest.skip(f"the {family.title} family has one model")
    served, named = family.models[0], family.models[1]
    with open_kkt(f"emulator:{served.id}?transport=tcp", timeout_scale=SCALE) as handle:
        transport = open_transport(handle.link.url, timeout=2.0)
        try:
            with pytest.raises(UsageError, match=rf"does not answer as {named.title} \({named.id}\)"):
                family.make_driver(Link(transport, timeout_scale=SCALE), model=named.id).connect()
        finally:
            transport.close()


@pytest.mark.parametrize("peer", ["garbage_url", "unterminated_url"])
def test_garbage_or_an_unterminated_answer_is_a_corrupted_link(
    family: Family, peer: str, request: pytest.FixtureRequest
) -> None:
    """The register said something that never became a frame (bytes no register sends, or a frame
    that starts and never ends): the lab is broken (LinkCorrupted), which is not the same as a
    register that is off (LinkTimeout)."""
    transport = open_transport(request.getfixturevalue(peer), timeout=1.0)
    try:
        with pytest.raises(LinkCorrupted, match="answered garbage"):
            family.make_driver(Link(transport, timeout_scale=0.1), model=family.models[0].id).connect()
    finally:
        transport.close()


def test_silence_is_a_link_timeout_within_the_scaled_deadline(family: Family, silent_url: str) -> None:
    transport = open_transport(silent_url, timeout=1.0, trace=Trace(family.describe_bytes))
    try:
        with pytest.raises(LinkTimeout, match="no answer"):
            family.make_driver(Link(transport, timeout_scale=0.1), model=family.models[0].id).connect()
        assert " TX " in transport.trace.render()  # the request went out, decoded
    finally:
        transport.close()


def test_detect_tells_the_family_and_the_model(family: Family) -> None:
    model = family.models[0]
    with open_kkt(f"emulator:{model.id}?transport=tcp", timeout_scale=SCALE) as handle:
        url, serial = handle.link.url, handle.emulator.serial if handle.emulator else ""
        for other in families.families().values():
            transport = open_transport(url, timeout=2.0, trace=Trace(other.describe_bytes))
            try:
                found = other.detect_on(Link(transport, timeout_scale=SCALE))
            finally:
                transport.close()
            if other.name == family.name:
                assert found is not None and found.family == family.name and found.serial == serial
                assert model.id in found.candidates and found.firmware
            else:
                assert found is None, f"{other.name} mistook a {family.name} register for its own: {found}"
        assert handle.kkt.status().shift is ShiftState.CLOSED  # detection changed nothing


def test_detect_on_silence_is_none(family: Family, silent_url: str) -> None:
    transport = open_transport(silent_url, timeout=1.0)
    try:
        assert family.detect_on(Link(transport, timeout_scale=0.1)) is None
    finally:
        transport.close()
