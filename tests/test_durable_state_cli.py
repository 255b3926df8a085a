"""``kkt-hil emulate kf --state FILE`` as a subprocess, reached through the real Pirit driver
(``open_kkt`` with a ``url:`` spec and ``control=``): SIGKILL while receipts are being sold, SIGKILL
right after SIGTERM, a clean SIGTERM, and the refusals at start (one line, exit 2, nothing listens,
the user's file left as it is).  Readiness is the process's stdout lines; the seller thread is
waited for on a condition with a deadline; nothing sleeps.  Loopback only (tests/cli_helpers.py).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from harness import open_kkt
from harness.connect import DeviceHandle
from harness.device import FiscalDocument, Item
from harness.errors import KktError

from .cli_helpers import CONTROL_TCP, LINE_TIMEOUT, LISTEN_TCP, START_CLOCK, Proc, assert_clean_failure, run_cli

Seen = dict[int, tuple[int, str, str | None]]  # FD number -> (kind, fiscal sign, total) as the driver saw it


@contextmanager
def driver(port: int, control_port: int) -> Iterator[DeviceHandle]:
    with open_kkt(f"url:socket://127.0.0.1:{port}#model=kf&control=tcp://127.0.0.1:{control_port}") as handle:
        yield handle


def start(spawn: Callable[..., Proc], state: Path, ports: tuple[int, int] | None = None) -> tuple[Proc, int, int]:
    """``kkt-hil emulate kf --state FILE``; the first start (no ``ports``) sets the frozen clock and
    picks free ports, a restart takes everything from FILE and listens where the first one did."""
    port, control = ports or (0, 0)
    clock = ["--clock", START_CLOCK] if ports is None else []
    proc = spawn(
        "emulate", "kf", "--frozen-clock", *clock, "--state", str(state),
        "--listen", f"tcp://127.0.0.1:{port}", "--control", f"tcp://127.0.0.1:{control}",
    )  # fmt: skip
    wire, ctl = LISTEN_TCP.match(proc.readline()), CONTROL_TCP.match(proc.readline())
    assert wire and ctl
    return proc, int(wire.group(1)), int(ctl.group(1))


def note(seen: Seen, doc: FiscalDocument) -> None:
    assert doc.number not in seen, f"FD {doc.number} answered twice"
    seen[doc.number] = (int(doc.kind), doc.fiscal_sign, None if doc.total is None else str(doc.total))


def same(restored: dict[str, Any], kind: int, sign: str, total: str | None) -> bool:
    """The restored document is the one the driver saw (Pirit answers a shift report without its sign)."""
    return restored["kind"] == kind and sign in ("", restored["fiscal_sign"]) and total in (None, restored["total"])


def archive(handle: DeviceHandle) -> dict[int, dict[str, Any]]:
    documents = handle.lab.state()["fn"]["documents"]
    assert len({d["number"] for d in documents}) == len(documents)
    return {d["number"]: d for d in documents}


def check_restored(handle: DeviceHandle, seen: Seen) -> None:
    """Every document the driver saw answered is in the restored ФН, the same document; the next
    FD number is above all of them."""
    restored = archive(handle)
    lost = sorted(n for n in seen if n not in restored)
    assert not lost, f"committed documents lost: {lost}"
    changed = [n for n, seen_as in seen.items() if not same(restored[n], *seen_as)]
    assert not changed, f"FD numbers now naming other documents: {changed}"
    if not handle.lab.state()["shift"]["is_open"]:
        note(seen, handle.kkt.open_shift())
    doc = handle.kkt.sell([Item("Соль", Decimal("7.00"))])
    assert doc.number > max(seen)
    note(seen, doc)


class Seller(threading.Thread):
    """Sells receipts through one driver until the register dies under it (or ``stop``)."""

    def __init__(self, handle: DeviceHandle, seen: Seen) -> None:
        super().__init__(name="seller")
        self.handle, self.seen = handle, seen
        self.ready = threading.Condition()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        price = 100 + len(self.seen)
        try:
            while not self.stop.is_set():
                price += 1  # every receipt its own total: a number reused for another one would show
                doc = self.handle.kkt.sell([Item("Сахар", Decimal(price) / 100)])
                with self.ready:
                    note(self.seen, doc)
                    self.ready.notify_all()
        except KktError as exc:  # the restarted register wants its start of work: the driver gives up
            self.error = exc
        finally:
            with self.ready:
                self.ready.notify_all()

    def wait_for(self, count: int) -> None:
        with self.ready:
            assert self.ready.wait_for(lambda: len(self.seen) >= count or not self.is_alive(), LINE_TIMEOUT)
        assert self.error is None, self.error


def test_sigkill_while_selling_loses_no_receipt_the_driver_saw(spawn, tmp_path: Path) -> None:
    state = tmp_path / "kf.json"
    seen: Seen = {}
    proc, port, control_port = start(spawn, state)
    for round_ in range(3):
        with driver(port, control_port) as handle:
            if round_:
                check_restored(handle, seen)
            if not handle.lab.state()["shift"]["is_open"]:
                note(seen, handle.kkt.open_shift())
            seller = Seller(handle, seen)
            seller.start()
            seller.wait_for(len(seen) + 5 + 3 * round_)
            proc.popen.send_signal(signal.SIGKILL)  # while the seller is in the middle of a sale
            proc.popen.wait(LINE_TIMEOUT)
            # on the same ports: the driver, reconnecting, meets the restored register
            proc, port, control_port = start(spawn, state, (port, control_port))
            seller.stop.set()
            seller.join(LINE_TIMEOUT)
            assert not seller.is_alive()
    with driver(port, control_port) as handle:
        check_restored(handle, seen)
    assert proc.terminate() == 0


@pytest.mark.parametrize("kill", [True, False], ids=["sigkill-right-after-sigterm", "sigterm-only"])
def test_sigterm_saves_the_state_and_a_sigkill_after_it_loses_nothing(spawn, tmp_path: Path, kill: bool) -> None:
    state = tmp_path / "kf.json"
    seen: Seen = {}
    proc, port, control_port = start(spawn, state)
    with driver(port, control_port) as handle:
        note(seen, handle.kkt.open_shift())
        for price in range(101, 111):
            note(seen, handle.kkt.sell([Item("Сахар", Decimal(price) / 100)]))
        handle.lab.paper("near_end")  # not fiscal: saved on SIGTERM, before the servers close
    proc.wait_signal_ready()
    proc.popen.send_signal(signal.SIGTERM)
    if kill:
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(LINE_TIMEOUT)
    else:
        assert proc.popen.wait(LINE_TIMEOUT) == 0
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("kf.json")) == ["kf.json"]
        assert len(json.loads(state.read_text("utf-8"))["fn"]["documents"]) == len(seen) + 1  # + registration
        assert state.with_name("kf.json.journal").exists() is False
    proc, port, control_port = start(spawn, state, (0, 0))
    with driver(port, control_port) as handle:
        check_restored(handle, seen)
        if not kill:
            assert handle.lab.state()["printer"]["paper"] == "near_end"
    assert proc.terminate() == 0


# ------------------------------------------------------------------------------ refusals at start


def refused(tmp_path: Path, state: Path | str) -> str:
    result = run_cli("emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--state", str(state), cwd=tmp_path)
    line = assert_clean_failure(result, 2)
    assert result.stdout == ""  # nothing listened
    assert line.startswith(f"kkt-hil: --state {state}: "), line
    return line


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    assert "does not exist" in refused(tmp_path, tmp_path / "missing" / "kf.json")
    assert not (tmp_path / "missing").exists()


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert "is a directory" in refused(tmp_path, tmp_path)


def test_a_path_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere the mode says; sysfs refuses new files to everyone
        refused(tmp_path, "/sys/kkt-hil-state.json")
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert "not writable" in refused(tmp_path, locked / "kf.json")
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("content", [b'{\n  "model": "kf",\n  "serial": ', b"\x00\x01garbage", b'{"model": "kf"}'])
def test_a_corrupt_state_file_is_refused_and_left_as_it_is(tmp_path: Path, content: bytes) -> None:
    state = tmp_path / "kf.json"
    state.write_bytes(content)
    refused(tmp_path, state)
    assert state.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("kf.json")) == ["kf.json"]


def test_a_damaged_journal_is_refused_and_left_as_it_is(spawn, tmp_path: Path) -> None:
    state = tmp_path / "kf.json"
    proc, port, control_port = start(spawn, state)
    with driver(port, control_port) as handle:
        handle.kkt.open_shift()
        handle.kkt.sell([Item("Сахар", Decimal("1.00"))])
    proc.popen.send_signal(signal.SIGKILL)
    proc.popen.wait(LINE_TIMEOUT)
    journal = state.with_name("kf.json.journal")
    lines = journal.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"\xd0\xa1", b"\xd0\xa2", 1)  # one letter of a good line: its checksum fails
    journal.write_bytes(b"\n".join(lines))
    before = (state.read_bytes(), journal.read_bytes())
    assert "kf.json.journal is damaged: line 2" in refused(tmp_path, state)
    assert (state.read_bytes(), journal.read_bytes()) == before
