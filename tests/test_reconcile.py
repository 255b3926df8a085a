"""Link faults in the middle of fiscal operations: never two documents for one intent, never a
committed document reported as failed, never a receipt left open (harness/reconcile.py).

Faults are placed exactly, on one chosen request, by a transport wrapper: its answer lost, the
link cut after it, the register unreachable after it, or (Pirit) the request changed on the way
with a valid checksum.  The emulator's own ФН archive is the judge."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from devices.pirit.protocol import encode_request, encode_response
from harness import open_kkt
from harness.connect import DeviceHandle
from harness.device import DocumentKind, FiscalDocument, Item, PaperState, TaxSystem
from harness.errors import (
    DeviceError,
    LinkDisconnected,
    LinkError,
    LinkTimeout,
    MiscommittedDocument,
    NoPaper,
    OutcomeUnknown,
)
from harness.transport import Transport

CLOSE = {"kf": " 31 close document", "atol": ": 4A"}
ITEM = {"kf": " 42 add item", "atol": ": E6"}
OPEN_SHIFT = {"kf": " 23 ", "atol": ": 9A"}
CLOSE_SHIFT = {"kf": " 21 ", "atol": ": 5A"}
REREGISTER = {"kf": " 60 ", "atol": ": A6"}
SALE = [Item("Хлеб", Decimal("45.50")), Item("Молоко", Decimal("89.90"), Decimal(2))]


class FaultyTransport:
    """Delegates to a real transport; after the first request whose decoded text contains
    ``match`` it injects ``fault`` once: ``lose`` (the answer never reaches the driver), ``cut``
    (the link is closed), ``dead`` (nothing gets through until ``revive()``), ``alter`` (the
    request goes out changed by ``alter``, with a valid checksum)."""

    def __init__(self, inner: Transport, match: str, fault: str, alter: Callable[[bytes], bytes] | None = None) -> None:
        self.inner = inner
        self.match = match
        self.fault = fault
        self.alter = alter
        self.armed = True
        self.injected = 0
        self.dead = False
        self._lose_next_read = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, data: bytes) -> None:
        if self.dead:
            raise LinkDisconnected("test: link dead")
        hit = self.armed and self.match in self.inner.trace.decode(data)
        if hit and self.fault == "alter":
            assert self.alter is not None
            self.armed = False
            self.injected += 1
            self.inner.write(self.alter(data))
            return
        self.inner.write(data)
        if hit:
            self.armed = False
            self.injected += 1
            if self.fault == "forge":  # the register's answer replaced by an error answer (a replay's)
                assert self.alter is not None
                self._forged = self.alter(data)
            elif self.fault == "lose":
                self._lose_next_read = True
            elif self.fault == "cut":
                self.inner.close()
            elif self.fault == "dead":
                self.dead = True

    def read(self, deadline: float) -> bytes:
        if self.dead:
            raise LinkDisconnected("test: link dead")
        if getattr(self, "_forged", None):
            forged, self._forged = self._forged, b""
            return forged
        if self._lose_next_read:
            self._lose_next_read = False  # the answer arrives later and is discarded as stale
            raise LinkTimeout("test: answer lost")
        return self.inner.read(deadline)

    def reopen(self, deadline: float) -> None:
        if self.dead:
            raise LinkDisconnected("test: link dead")
        self.inner.reopen(deadline)

    def revive(self) -> None:
        self.dead = False


@pytest.fixture(params=["kf", "atol"])
def handle(request: pytest.FixtureRequest) -> Iterator[DeviceHandle]:
    with open_kkt(f"emulator:{request.param}", timeout_scale=0.05) as opened:
        opened.kkt.operation_timeout = 20.0  # type: ignore[attr-defined]  # 1 s at this scale
        yield opened


def model(handle: DeviceHandle) -> str:
    return "kf" if handle.family.name == "pirit" else "atol"


def inject(
    handle: DeviceHandle, match: str, fault: str, alter: Callable[[bytes], bytes] | None = None
) -> FaultyTransport:
    faulty = FaultyTransport(handle.link.transport, match, fault, alter)
    handle.link.transport = faulty  # type: ignore[assignment]
    return faulty


def documents(handle: DeviceHandle, kind: DocumentKind) -> list[Any]:
    emulator: Any = handle.emulator
    return [d for d in emulator.core.fn.archive if d.kind == kind]


def assert_is_the_last(handle: DeviceHandle, doc: FiscalDocument, kind: DocumentKind) -> None:
    last = documents(handle, kind)[-1]
    assert doc.number == last.number == handle.kkt.fn().last_fd_number
    assert doc.kind == kind
    if kind is DocumentKind.RECEIPT:
        assert last.total == doc.total == sum((i.amount for i in SALE), Decimal(0))
    assert not handle.kkt.status().document_open


@pytest.mark.parametrize("where", ["close", "item"])
@pytest.mark.parametrize("fault", ["lose", "cut"])
def test_a_sale_through_a_fault_is_one_receipt_reported_as_committed(
    handle: DeviceHandle, where: str, fault: str
) -> None:
    handle.kkt.open_shift()
    before = len(documents(handle, DocumentKind.RECEIPT))
    faulty = inject(handle, (CLOSE if where == "close" else ITEM)[model(handle)], fault)
    doc = handle.kkt.sell(SALE)
    assert faulty.injected == 1
    assert len(documents(handle, DocumentKind.RECEIPT)) == before + 1  # one receipt, not zero, not two
    assert_is_the_last(handle, doc, DocumentKind.RECEIPT)
    notes = handle.trace.render()
    if where == "close":
        assert "was committed as FD" in notes
    else:
        assert "nothing committed" in notes  # the half-built receipt was cancelled and the sale retried


@pytest.mark.parametrize(
    ("kind", "match", "call"),
    [
        (DocumentKind.SHIFT_OPEN, OPEN_SHIFT, lambda k: k.open_shift()),
        (DocumentKind.SHIFT_CLOSE, CLOSE_SHIFT, lambda k: k.close_shift()),
        (DocumentKind.REREGISTRATION, REREGISTER, lambda k: k.reregister(TaxSystem.OSN | TaxSystem.USN_INCOME)),
    ],
    ids=["shift-open", "shift-close", "reregistration"],
)
def test_a_lost_answer_to_a_shift_or_registration_is_the_committed_document(
    handle: DeviceHandle, kind: DocumentKind, match: dict[str, str], call: Callable[[Any], FiscalDocument]
) -> None:
    if kind is DocumentKind.SHIFT_CLOSE:
        handle.kkt.open_shift()
    before = len(documents(handle, kind))
    inject(handle, match[model(handle)], "lose")
    doc = call(handle.kkt)
    assert len(documents(handle, kind)) == before + 1
    assert doc.kind == kind and doc.number == documents(handle, kind)[-1].number


def test_an_unreachable_register_is_outcome_unknown_and_a_retry_returns_the_same_receipt(handle: DeviceHandle) -> None:
    handle.kkt.open_shift()
    fd_before = handle.kkt.fn().last_fd_number
    before = len(documents(handle, DocumentKind.RECEIPT))
    faulty = inject(handle, CLOSE[model(handle)], "dead")
    with pytest.raises(OutcomeUnknown) as raised:
        handle.kkt.sell(SALE)
    assert raised.value.fd_before == fd_before and raised.value.fd_after is None
    assert raised.value.evidence
    with pytest.raises(OutcomeUnknown):  # still unreachable: still unknown, nothing new is started
        handle.kkt.sell(SALE)
    faulty.revive()
    again = handle.kkt.sell(SALE)  # the caller retries the same request: it gets the committed one
    assert len(documents(handle, DocumentKind.RECEIPT)) == before + 1
    assert_is_the_last(handle, again, DocumentKind.RECEIPT)
    other = handle.kkt.sell([Item("Соль", Decimal("12.00"))])  # a new request is a new receipt
    assert len(documents(handle, DocumentKind.RECEIPT)) == before + 2 and other.number > again.number


def test_reconcile_settles_an_unknown_outcome(handle: DeviceHandle) -> None:
    handle.kkt.open_shift()
    faulty = inject(handle, CLOSE[model(handle)], "dead")
    with pytest.raises(OutcomeUnknown):
        handle.kkt.sell(SALE)
    faulty.revive()
    settled = handle.kkt.reconcile()
    assert settled is not None and settled.number == documents(handle, DocumentKind.RECEIPT)[-1].number
    assert handle.kkt.reconcile() is None


def test_a_caller_that_retries_on_every_error_never_gets_two_receipts(handle: DeviceHandle) -> None:
    handle.kkt.open_shift()
    before = len(documents(handle, DocumentKind.RECEIPT))
    faulty = inject(handle, CLOSE[model(handle)], "dead")
    results: list[FiscalDocument] = []
    for attempt in range(4):
        if attempt == 2:
            faulty.revive()
        try:
            results.append(handle.kkt.sell(SALE))
            break
        except (OutcomeUnknown, LinkError):
            continue
    assert len(results) == 1
    assert len(documents(handle, DocumentKind.RECEIPT)) == before + 1


def test_a_pirit_item_changed_on_the_way_with_a_valid_checksum_is_not_committed() -> None:
    """Pirit's XOR checksum passes some corruptions; the receipt total read back before the
    commit (0x03/1) catches a changed price: the receipt is cancelled and sold again."""

    def change_price(frame: bytes) -> bytes:
        packet_id = frame[5]
        return encode_request(0x42, ["Хлеб", "", "1", "54.50", 3], packet_id=packet_id)

    with open_kkt("emulator:kf", timeout_scale=0.05) as handle:
        handle.kkt.open_shift()
        faulty = inject(handle, ITEM["kf"], "alter", change_price)
        doc = handle.kkt.sell(SALE)
        assert faulty.injected == 1
        receipts = documents(handle, DocumentKind.RECEIPT)
        assert len(receipts) == 1 and receipts[0].total == doc.total == Decimal("225.30")
        assert "holds a receipt of" in handle.trace.render()


@pytest.mark.parametrize("fault", ["lose", "alter"])
def test_a_read_whose_answer_was_lost_or_garbled_is_asked_again(handle: DeviceHandle, fault: str) -> None:
    """Reads change nothing on the register: a lost or garbled answer is asked for again.  (An
    АТОЛ v3 request with a bad CRC is already recovered by its transport's own resend.)"""
    match = " 00 status" if model(handle) == "kf" else ": 3F"
    faulty = inject(handle, match, fault, lambda frame: frame[:-1] + bytes([frame[-1] ^ 0x01]))  # a bad checksum
    status = handle.kkt.status()
    assert faulty.injected == 1 and status.document_open is False
    if fault == "lose" or model(handle) == "kf":
        assert "changes nothing: asked again after" in handle.trace.render()


def test_a_lost_paper_error_after_the_commit_is_the_same_error(handle: DeviceHandle) -> None:
    """Paper runs out while the Z report prints: the register commits it and answers "no paper".
    With that answer lost, the reconciled close is the same NoPaper, not a silent success."""
    handle.kkt.open_shift()
    fd_before = handle.kkt.fn().last_fd_number
    handle.lab.paper(PaperState.OK, after_lines=2)
    inject(handle, CLOSE_SHIFT[model(handle)], "lose")
    with pytest.raises(NoPaper):
        handle.kkt.close_shift()
    assert handle.kkt.fn().last_fd_number == fd_before + 1
    assert handle.kkt.status().pending_print
    assert len(documents(handle, DocumentKind.SHIFT_CLOSE)) == 1


def _error_answer(frame: bytes) -> bytes:
    """A Pirit error answer (0x02, unknown command) to ``frame``, with its packet id."""
    return encode_response(frame[5], int(frame[6:8].decode(), 16), 0x02)


@pytest.mark.parametrize("where", ["close", "open"])
def test_an_error_answer_that_is_not_the_registers_verdict_is_reconciled(where: str) -> None:
    """A fault can hand the driver an error answer meant for a replayed request while the ФН took
    the intended one: the position decides.  Committed → the document; our receipt left open →
    cancelled, and the error stands."""
    with open_kkt("emulator:kf", timeout_scale=0.05) as handle:
        handle.kkt.open_shift()
        match = CLOSE["kf"] if where == "close" else " 30 open document"
        inject(handle, match, "forge", _error_answer)
        if where == "close":
            doc = handle.kkt.sell(SALE)
            assert_is_the_last(handle, doc, DocumentKind.RECEIPT)
        else:
            with pytest.raises(DeviceError):
                handle.kkt.sell(SALE)
            assert documents(handle, DocumentKind.RECEIPT) == []
            assert not handle.kkt.status().document_open  # not left open for every later sale
            assert "left open; cancelled" in handle.trace.render()
        assert len(documents(handle, DocumentKind.RECEIPT)) <= 1


def test_another_operation_while_an_outcome_is_unknown_was_not_started_and_reconcile_tells(
    handle: DeviceHandle,
) -> None:
    handle.kkt.open_shift()
    faulty = inject(handle, CLOSE[model(handle)], "dead")
    with pytest.raises(OutcomeUnknown) as first:
        handle.kkt.sell(SALE)
    assert first.value.started and "225.30" in first.value.intent
    with pytest.raises(OutcomeUnknown) as second:
        handle.kkt.sell([Item("Соль", Decimal("12.00"))])
    assert not second.value.started and "225.30" in second.value.intent  # about the earlier sale
    faulty.revive()
    handle.kkt.close_shift()  # settles the earlier sale on its way
    settled = handle.kkt.reconcile()
    assert settled is not None and settled.total == Decimal("225.30")
    assert [d.total for d in documents(handle, DocumentKind.RECEIPT)] == [Decimal("225.30")]
    assert handle.kkt.reconcile() is None


def test_a_pirit_receipt_committed_with_another_total_is_miscommitted(monkeypatch: pytest.MonkeyPatch) -> None:
    """After the commit the driver reads the last receipt back (0x03/2): a register that holds
    another total than the sale under the same FD is reported as such, never as the sale."""
    from devices.pirit.emulator.info import InfoQueries

    honest = InfoQueries._receipt_data

    def lying(self: Any, request: Any) -> Any:
        answer = honest(self, request)
        if answer and answer[0] == 2:
            answer[5] = "999.99"  # the total field of 0x03/2
        return answer

    monkeypatch.setattr(InfoQueries, "_receipt_data", lying)
    with open_kkt("emulator:kf", timeout_scale=0.05) as handle:
        handle.kkt.open_shift()
        with pytest.raises(MiscommittedDocument) as raised:
            handle.kkt.sell(SALE)
        held: Any = raised.value.document
        assert held.total == Decimal("999.99") and held.number == handle.kkt.fn().last_fd_number
