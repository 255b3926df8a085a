"""The full-state oracle (harness/oracle.py): what it observes, how it judges a step, and that it
catches what a step did not announce — on the emulators of both families."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from harness.connect import DeviceHandle, open_device
from harness.device import Item, PaperState, ReceiptKind, ShiftState
from harness.errors import DeviceError, NoPaper
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
    with pytest.raises(AssertionError, match="номер вне созданных шагом"):
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


def test_before_state_is_reused_only_while_nothing_ran(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    handle.kkt.open_shift()
    with oracle.step("nothing"):
        pass
    with oracle.step("nothing again") as step:
        pass
    assert step.before["_clock"] == oracle.steps[-2].after["_clock"]  # reused, not read again
    handle.lab.paper(PaperState.OUT)  # behind the oracle's back: the reused state is the old one
    with pytest.raises(AssertionError, match="Бумага"):
        with oracle.step("nothing, but the paper changed before it"):
            pass
    handle.lab.paper(PaperState.OK)
    oracle.touched()  # what the step proxies of kkt, lab and hub say before every call
    with oracle.step("nothing, read afresh"):
        pass


class CountersGone:
    """A register whose counters stop answering (a key read before the step, not after)."""

    def __init__(self, kkt: Any) -> None:
        self._kkt = kkt
        self.broken = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kkt, name)

    def counters(self) -> Any:
        if self.broken:
            raise DeviceError("no counters")
        return self._kkt.counters()


def test_a_key_read_on_one_side_only_fails(handle: DeviceHandle) -> None:
    flaky = CountersGone(handle.kkt)
    oracle = Oracle(flaky, handle.lab)
    with pytest.raises(AssertionError, match="прочитано только до шага"):
        with oracle.step("counters vanish"):
            flaky.broken = True


def test_shift_open_time_must_be_inside_the_step(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    with oracle.step("open", **oracle.shift_opened()) as step:
        handle.kkt.open_shift()
    if handle.model.family == "pirit":
        assert step.after["shift_opened_at"] is not None
    else:  # АТОЛ's protocol has no shift-open time: nothing to check, and nothing pretended
        assert step.after["shift_opened_at"] is None and not step.after["_open_time_shown"]


def test_first_unsent_is_the_first_new_document(handle: DeviceHandle) -> None:
    oracle = oracle_of(handle)
    handle.lab.ofd(False)
    handle.kkt.open_shift()
    handle.lab.ofd(True)  # the queue drains: empty
    handle.lab.ofd(False)
    with oracle.step("sale offline", **oracle.sale(SUGAR.amount, online=False)) as step:
        handle.kkt.sell([SUGAR])
    assert step.after["queue_first"] == step.after["fd"] and step.after["queue"] == 1


def test_real_register_queue_may_drain_between_steps(handle: DeviceHandle) -> None:
    handle.lab.ofd(False)
    handle.kkt.open_shift()
    strict, lenient = Oracle(handle.kkt, handle.lab), Oracle(handle.kkt, handle.lab, settle=0.01)
    with pytest.raises(AssertionError, match="Неотправлено в ОФД"):
        with strict.step("the OFD delivers unannounced"):
            handle.lab.ofd(True)
    handle.lab.ofd(False)
    handle.kkt.sell([SUGAR])
    with lenient.step("the OFD delivers on its own (a real register)"):
        handle.lab.ofd(True)
