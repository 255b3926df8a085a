"""``--state FILE`` in process (devices/emulator/durable.py): the journal's lines (checksum, torn
tail, sequence), replay, compaction and a compaction cut short, every ФН commit on disk before the
core call returns, refusals that leave the user's files as they are.  The command-line side
(SIGKILL, SIGTERM, exit codes) is tests/test_durable_state_cli.py.  No test waits on the clock:
the saver thread runs with an interval far beyond any test, and saves are called directly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import pytest

from devices.emulator.build import Emulator, build_emulator
from devices.emulator.core import CoreError, FiscalCore
from devices.emulator.durable import (
    DurableState,
    StateFileError,
    decode_journal,
    encode_record,
    journal_path,
    load,
)
from harness.device import DocumentKind, PaperState, PaymentKind, ReceiptKind
from harness.errors import ErrorKind

START = datetime(2020, 12, 30, 10, 0, 0)
NEVER = 3600.0  # the saver thread's interval: it never runs by itself within a test


def make(model: str = "kf") -> Emulator:
    emulator = build_emulator(model, {"clock": START.isoformat()})
    emulator.core.initialised = True  # the Pirit "start of work" a driver would send
    return emulator


def sale(core: FiscalCore, amount: str = "100.00") -> int:
    core.open_receipt(ReceiptKind.SALE, None, "Кассир")
    core.add_item("Сахар", Decimal(1), Decimal(amount))
    core.pay(PaymentKind.CASH, Decimal(amount))
    return core.close_receipt().number


KEPT: list[DurableState] = []


@pytest.fixture(autouse=True)
def _abandon_kept() -> Iterator[None]:
    """Every state a test kept stops its saver thread and lets go of its journal afterwards."""
    yield
    while KEPT:
        KEPT.pop().abandon()


def keep(emulator: Emulator, path: Path) -> DurableState:
    state = DurableState(emulator.core, path, interval=NEVER)
    KEPT.append(state)
    state.open()
    emulator.core.initialised = True  # a loaded state is a power-up: start of work again
    return state


def restored(path: Path, model: str = "kf") -> FiscalCore:
    """What a restart after SIGKILL sees: a new emulator loaded from the files as they are."""
    loaded = load(path)
    assert loaded is not None
    emulator = build_emulator(model, {"clock": START.isoformat()})
    emulator.restore(loaded[0])
    return emulator.core


def numbers(core: FiscalCore) -> list[int]:
    return [d.number for d in core.fn.archive]


def records(path: Path) -> list[dict[str, Any]]:
    return decode_journal(journal_path(path).read_bytes())


# ------------------------------------------------------------------------------ journal lines


def test_a_record_round_trips_with_its_checksum() -> None:
    lines = [encode_record({"seq": 0, "kind": "base", "snapshot": "ab"}), encode_record({"seq": 1, "x": "ФН ✂"})]
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in lines)
    assert decode_journal(b"".join(lines)) == [{"seq": 0, "kind": "base", "snapshot": "ab"}, {"seq": 1, "x": "ФН ✂"}]
    assert decode_journal(b"") == []


@pytest.mark.parametrize("cut", [1, 10, 30, -2, -1])
def test_a_torn_last_line_is_left_out(cut: int) -> None:
    good = encode_record({"seq": 0, "kind": "base", "snapshot": "ab"})
    last = encode_record({"seq": 1, "kind": "state", "payload": "x" * 40})
    assert decode_journal(good + last[:cut]) == [{"seq": 0, "kind": "base", "snapshot": "ab"}]


def test_a_complete_last_line_with_a_wrong_checksum_is_a_torn_write() -> None:
    good = encode_record({"seq": 0, "kind": "base", "snapshot": "ab"})
    bad = encode_record({"seq": 1, "n": 5}).replace(b'"n":5', b'"n":6')
    assert decode_journal(good + bad) == [{"seq": 0, "kind": "base", "snapshot": "ab"}]


def test_a_damaged_line_before_a_good_one_is_an_error() -> None:
    lines = [encode_record({"seq": n, "n": n}) for n in range(3)]
    lines[1] = lines[1].replace(b'"n":1', b'"n":7')  # checksum no longer matches
    with pytest.raises(StateFileError, match="line 2 is damaged"):
        decode_journal(b"".join(lines))


def test_a_gap_in_the_sequence_is_an_error() -> None:
    with pytest.raises(StateFileError, match="sequence number 2, expected 1"):
        decode_journal(encode_record({"seq": 0}) + encode_record({"seq": 2}))


# ------------------------------------------------------------------------------ commits are durable


def test_every_commit_is_on_disk_when_the_core_call_returns(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    emulator = make()
    keep(emulator, path)
    core = emulator.core
    opened = core.open_shift("Кассир").number
    assert records(path)[-1]["documents"][0]["number"] == opened  # written before open_shift returned
    sold = [sale(core, f"{n}.00") for n in range(1, 6)]
    last = records(path)[-1]
    assert last["kind"] == "commit" and [d["number"] for d in last["documents"]] == [sold[-1]]
    assert last["documents"][0]["total"] == "5.00" and last["documents"][0]["number_in_shift"] == 5  # complete
    closed = core.close_shift("Кассир").number
    again = restored(path)  # no close(): as after SIGKILL
    assert numbers(again) == numbers(core) and numbers(again)[-1] == closed
    assert [d.fiscal_sign for d in again.fn.archive] == [d.fiscal_sign for d in core.fn.archive]
    assert again.shift.number == 1 and not again.shift.is_open and again.cash == core.cash


def test_a_receipt_whose_printout_ran_out_of_paper_is_durable_too(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    emulator = make()
    keep(emulator, path)
    core = emulator.core
    core.open_shift("Кассир")
    core.set_paper(PaperState.OK, after_lines=2)
    core.open_receipt(ReceiptKind.SALE, None, "Кассир")
    core.add_item("Сахар", Decimal(1), Decimal("10.00"))
    core.pay(PaymentKind.CASH, Decimal("10.00"))
    with pytest.raises(CoreError) as caught:
        core.close_receipt()  # committed in the ФН, then the paper ran out: the answer is an error
    assert caught.value.kind is ErrorKind.NO_PAPER
    again = restored(path)
    assert numbers(again) == numbers(core)
    assert again.pending is not None and again.pending.document == core.fn.archive[-1].number
    assert not again.fn.archive[-1].printed


def test_a_shift_opened_implicitly_is_journaled_by_the_call_that_opened_it(tmp_path: Path) -> None:
    path = tmp_path / "atol.json"
    emulator = make("atol")
    keep(emulator, path)
    core = emulator.core
    core.open_receipt(ReceiptKind.SALE, None, "Кассир")  # АТОЛ: the first receipt opens the shift (R3.8)
    assert [d["kind"] for d in records(path)[-1]["documents"]] == [int(DocumentKind.SHIFT_OPEN)]
    core.add_item("Сахар", Decimal(1), Decimal("10.00"))
    core.pay(PaymentKind.CASH, Decimal("10.00"))
    core.close_receipt()
    assert [d["kind"] for d in records(path)[-1]["documents"]] == [int(DocumentKind.RECEIPT)]
    assert numbers(restored(path, "atol")) == numbers(core)


def test_a_restart_numbers_on_above_every_document_answered(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    first = make()
    keep(first, path)
    first.core.open_shift("Кассир")
    seen = [sale(first.core) for _ in range(3)]
    second = make()
    keep(second, path)  # the restart: loads snapshot + journal, compacts
    assert sale(second.core) == max(seen) + 1


def test_the_rest_of_the_state_is_saved_when_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    emulator = make()
    state = keep(emulator, path)
    before = len(records(path))
    state.save()
    assert len(records(path)) == before  # nothing changed: nothing written
    emulator.core.set_paper(PaperState.OUT)
    emulator.core.set_ofd(False)  # online by default: the OFD link going down is the change
    state.save()
    assert records(path)[-1]["kind"] == "state"
    again = restored(path)
    assert again.printer.paper is PaperState.OUT and not again.ofd_online


def test_delivery_to_the_ofd_after_the_commit_is_restored(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    emulator = make()
    state = keep(emulator, path)
    core = emulator.core
    core.set_ofd(False)  # the documents wait for the OFD
    core.open_shift("Кассир")
    sale(core)
    assert len(restored(path).unsent()) == 2
    core.set_ofd(True)  # the queue drains: a change after the commit
    state.save()
    assert restored(path).unsent() == []


# ------------------------------------------------------------------------------ compaction


def test_compaction_folds_the_journal_into_the_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    emulator = make()
    state = keep(emulator, path)
    emulator.core.open_shift("Кассир")
    sale(emulator.core)
    assert len(records(path)) == 3
    state.compact()
    assert [r["kind"] for r in records(path)] == ["base"]
    snapshot = json.loads(path.read_text("utf-8"))
    assert snapshot == emulator.core.snapshot()  # the state op's layout, unchanged
    assert numbers(restored(path)) == numbers(emulator.core)


def test_a_journal_left_by_a_compaction_cut_short_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    emulator = make()
    state = keep(emulator, path)
    emulator.core.open_shift("Кассир")
    sale(emulator.core)
    old_journal = journal_path(path).read_bytes()
    emulator.core.set_paper(PaperState.OUT)  # newer than anything in the old journal
    state.compact()
    journal_path(path).write_bytes(old_journal)  # as if killed after the new FILE, before the new journal
    again = restored(path)
    assert numbers(again) == numbers(emulator.core)
    assert again.printer.paper is PaperState.OUT  # the old journal did not roll FILE back


def test_close_writes_the_final_snapshot_and_removes_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    emulator = make()
    state = keep(emulator, path)
    emulator.core.open_shift("Кассир")
    emulator.core.lab_clock_advance(90)
    state.close()
    assert not journal_path(path).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kf.json"]
    assert json.loads(path.read_text("utf-8")) == emulator.core.snapshot()
    assert emulator.core.on_commit is None


def test_a_torn_tail_is_dropped_when_the_restart_compacts(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    emulator = make()
    keep(emulator, path)
    emulator.core.open_shift("Кассир")
    with journal_path(path).open("ab") as journal:
        journal.write(b'{"crc":"0000')  # the write a SIGKILL cut
    second = make()
    keep(second, path)
    assert numbers(second.core) == numbers(emulator.core)
    assert [r["kind"] for r in records(path)] == ["base"]
    assert sale(second.core) == numbers(emulator.core)[-1] + 1
    assert records(path)[-1]["documents"][0]["number"] == numbers(second.core)[-1]


# ------------------------------------------------------------------------------ refusals


def test_a_damaged_journal_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "kf.json"
    emulator = make()
    keep(emulator, path)
    emulator.core.open_shift("Кассир")
    sale(emulator.core)
    journal = journal_path(path)
    lines = journal.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"seq":1', b'"seq":9')
    journal.write_bytes(b"\n".join(lines))
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(StateFileError, match=r"kf\.json\.journal is damaged: line 2"):
        keep(make(), path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "bad JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"model": "atol"}', "for model 'atol'"),
        (b'{"model": "kf"}', "incomplete"),
    ],
)
def test_a_state_file_that_is_not_a_register_state_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "kf.json"
    path.write_bytes(content)
    with pytest.raises(StateFileError, match=message):
        keep(make(), path)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kf.json"]


def test_paths_that_cannot_be_written_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StateFileError, match="does not exist"):
        keep(make(), tmp_path / "missing" / "kf.json")
    with pytest.raises(StateFileError, match="is a directory"):
        keep(make(), tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(StateFileError, match="is not a directory"):
        keep(make(), tmp_path / "file" / "kf.json")


def test_a_failed_write_while_serving_stops_before_the_answer(tmp_path: Path, monkeypatch) -> None:
    class Stopped(Exception):
        pass

    def stop(message: str) -> NoReturn:
        raise Stopped(message)

    emulator = make()
    state = DurableState(emulator.core, tmp_path / "kf.json", interval=NEVER, on_failure=stop)
    KEPT.append(state)
    state.open()

    def full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("devices.emulator.durable.os.fdatasync", full)
    with pytest.raises(Stopped, match="cannot journal FD 2: No space left on device"):
        emulator.core.open_shift("Кассир")
