"""The full-state oracle (harness/oracle.py): what it observes, how it judges a step, and that it
catches what a step did not announce — on the emulators of both families."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from harness.connect import DeviceHandle, open_device
from harness.device import Item, PaperState, ReceiptKind, ShiftState
from harness.errors import NoPaper
from harness.oracle import Computed, Oracle, Printout, changed, delta, observe, printouts
from harness.spec import DeviceSpec

SUGAR = Item("Сахар", Decimal("100.00"))


@pytest.fixture(params=["kf", "atol"])
def handle(request: pytest.FixtureRequest) -> Iterator[DeviceHandle]:
    model = request.param
    opened = open_device(DeviceSpec("emulator", model, f"emulator:{model}"), timeout_scale=0.5)
    try:
        yield opened
    finally:
        opened.close()


def oracle_of(handle: DeviceHandle) -> Oracle:
    return Oracle(handle.kkt, handle.lab)


def test_printouts_split_the_tape_at_cuts() -> None:
    cut = "-" * 32 + " ✂"
    tape = ["ККТ", "ФД 5  ФП 123", cut, "X-ОТЧЁТ", cut, "КОПИЯ", "ФД 5  ФП 123", cut, "ФД 6  ФП 9"]
    assert printouts(tape) == [Printout(5, False), Printout(None, False), Printout(5, True)]  # the last: no cut yet


def test_observe_reads_every_area(handle: DeviceHandle) -> None:
    snap, unseen = observe(handle.kkt, handle.lab)
    for key in ("shift", "fd", "tax_systems", "queue", "sales", "cash", "_tape", "valid_until"):
        assert key in snap, key
    assert snap["shift"] is ShiftState.CLOSED and unseen == []


def test_announced_sale_passes_and_records_the_transition(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    handle.kkt.open_shift()
    with oracle.step("sale", **oracle.sale(SUGAR.amount)) as step:
        oracle.saw(handle.kkt.sell([SUGAR]))
    assert step.after["fd"] == step.before["fd"] + 1
    assert step.after["printed"] == (step.after["fd"],)
    assert step.after["sales_total"] == step.before["sales_total"] + SUGAR.amount
    assert step.failures == {}


def test_unannounced_change_fails_the_step_with_the_diff(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    handle.kkt.open_shift()
    with pytest.raises(AssertionError, match=r"Последний ФД: \d+ → \d+.*Чеков прихода за смену: 0 → 1"):
        with oracle.step("a receipt nobody announced"):
            handle.kkt.sell([SUGAR])
    assert {"fd", "sales", "sales_total"} <= set(oracle.steps[-1].failures)


def test_wrong_expectation_fails(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    handle.kkt.open_shift()
    with pytest.raises(AssertionError, match="Сумма прихода за смену"):
        with oracle.step("sale", **{**oracle.sale(SUGAR.amount), "sales_total": delta(Decimal("1.00"))}):
            handle.kkt.sell([SUGAR])


def test_return_is_not_a_sale(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    handle.kkt.open_shift()
    handle.kkt.sell([SUGAR])
    with oracle.step("return", **oracle.refund(SUGAR.amount)):
        handle.kkt.sell([SUGAR], kind=ReceiptKind.SALE_RETURN)
    with pytest.raises(AssertionError):  # announced as a sale, it is a return
        with oracle.step("return as sale", **oracle.sale(SUGAR.amount)):
            handle.kkt.sell([SUGAR], kind=ReceiptKind.SALE_RETURN)


def test_document_printed_twice_as_original_fails(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    handle.kkt.open_shift()
    with oracle.step("sale", **oracle.sale(SUGAR.amount)):
        handle.kkt.sell([SUGAR])
    number = oracle.steps[-1].after["fd"]
    emulator: Any = handle.emulator
    tape = emulator.core.tape
    with pytest.raises(AssertionError, match="второй раз"):
        with oracle.step("the same FD again", printed=(number,)):
            tape.extend([f"ФД {number}  ФП 1", tape[-1]])  # a firmware printing the original once more


def test_refusal_leaves_no_trace_but_the_paper(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    handle.kkt.open_shift()
    with oracle.step("paper out", paper=PaperState.OUT):
        handle.lab.paper(PaperState.OUT)
    with oracle.step("refused sale"), pytest.raises(NoPaper):
        handle.kkt.sell([SUGAR])


def test_returned_document_of_another_shift_fails(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    handle.kkt.open_shift()
    opened = handle.kkt.close_shift()
    handle.kkt.open_shift()
    with pytest.raises(AssertionError, match="смена"):
        with oracle.step("a stale document", **oracle.sale(SUGAR.amount)):
            handle.kkt.sell([SUGAR])
            oracle.saw(opened)  # a document of the previous shift reported by this step


def test_computed_and_unknown_keys(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    with pytest.raises(ValueError, match="unknown keys"):
        with oracle.step("typo", fdd=1):
            pass
    handle.kkt.open_shift()
    with oracle.step("sale", **{**oracle.sale(SUGAR.amount), "fd": Computed(lambda b: b["fd"] + 1, "next")}):
        handle.kkt.sell([SUGAR])


class SlowOfd:
    """A register whose queue empties only after two more reads (a real OFD link)."""

    def __init__(self, kkt: Any) -> None:
        self._kkt = kkt
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kkt, name)

    def ofd_queue(self) -> Any:
        self.reads += 1
        queue = self._kkt.ofd_queue()
        return queue if self.reads > 3 else type(queue)(1, 1, queue.first_datetime, queue.connected)


def test_settle_waits_for_a_real_register_to_deliver(handle: DeviceHandle) -> None:
    slow = SlowOfd(handle.kkt)
    waited: list[float] = []
    oracle = Oracle(slow, handle.lab, settle=5.0, sleep=waited.append)
    with oracle.step("delivered", queue=0, queue_first=changed(), queue_first_at=changed()):
        pass
    assert waited == [0.5, 0.5] and oracle.steps[-1].after["queue"] == 0
    impatient = Oracle(SlowOfd(handle.kkt), handle.lab, settle=0.0, sleep=waited.append)
    with pytest.raises(AssertionError, match="Неотправлено в ОФД"):
        with impatient.step("not yet", queue=0, queue_first=changed(), queue_first_at=changed()):
            pass
