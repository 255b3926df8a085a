"""``kkt-hil emulate kf --state FILE`` killed under load: what the driver saw against what comes back.

A Pirit driver (``open_kkt`` with a ``url:`` spec and ``control=``) sells receipts, and now and
then closes and opens the shift, while this script SIGKILLs the emulator at seeded random
moments; the emulator is restarted on the same state file and the same ports (the driver,
reconnecting, meets the restored register), a new driver connects, and the restored ФН archive
is checked against every document the driver saw answered:

    lost     a document the driver saw that is not in the restored archive
    re-used  an FD number answered for two different documents (the restored archive, or a later
             answer, names another document under a number the driver saw)

then the same for SIGTERM followed by SIGKILL 0–30 ms later, and the cost: receipts per second
through the driver with and without ``--state`` (two emulators, batches interleaved), and of the
core alone in process (journal only).  Target: 0 lost, 0 re-used.

    .venv/bin/python benchmarks/sigkill_state.py [--kills 100] [--sigterm-runs 25] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import random
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devices.emulator.build import build_emulator  # noqa: E402
from devices.emulator.durable import DurableState  # noqa: E402
from harness import open_kkt  # noqa: E402
from harness.connect import DeviceHandle  # noqa: E402
from harness.device import FiscalDocument, Item, PaymentKind, ReceiptKind  # noqa: E402
from harness.errors import KktError  # noqa: E402

LINE_TIMEOUT = 20.0
CLOCK = "2020-12-30T10:00:00"
Key = tuple[int, str, str | None]  # kind, fiscal sign ("" when the answer has none), total


def kkt_hil() -> list[str]:
    script = Path(sys.executable).parent / "kkt-hil"
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness.cli"]


class Emulator:
    """One ``kkt-hil emulate kf`` process; ready when its two stdout lines are read."""

    def __init__(self, workdir: Path, state: Path | None, ports: tuple[int, int] = (0, 0), *, first: bool) -> None:
        args = ["emulate", "kf", "--frozen-clock", "--listen", f"tcp://127.0.0.1:{ports[0]}"]
        args += ["--control", f"tcp://127.0.0.1:{ports[1]}"]
        args += ["--clock", CLOCK] if first else []
        args += ["--state", str(state)] if state else []
        self.stderr = (workdir / "emulator-stderr.txt").open("ab")
        self.popen = subprocess.Popen([*kkt_hil(), *args], stdout=subprocess.PIPE, stderr=self.stderr, cwd=workdir)
        lines = self._lines(2)
        self.port = int(lines[0].rsplit(":", 1)[1])
        self.control = int(lines[1].rsplit(":", 1)[1])

    def _lines(self, count: int) -> list[str]:
        assert self.popen.stdout is not None
        deadline = time.monotonic() + LINE_TIMEOUT
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.popen.stdout, selectors.EVENT_READ)
            while buffer.count(b"\n") < count:
                remaining = deadline - time.monotonic()
                chunk = os.read(self.popen.stdout.fileno(), 4096) if selector.select(max(0.0, remaining)) else None
                if remaining <= 0 or chunk == b"":  # no line in time, or the process closed its stdout
                    raise RuntimeError(f"emulator not ready (exit {self.popen.poll()}); see {self.stderr.name}")
                buffer += chunk or b""
        return buffer.decode().splitlines()[:count]

    @property
    def ports(self) -> tuple[int, int]:
        return self.port, self.control

    def spec(self) -> str:
        return f"url:socket://127.0.0.1:{self.port}#model=kf&control=tcp://127.0.0.1:{self.control}"

    def kill(self, sig: int = signal.SIGKILL) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        code = self.popen.wait(LINE_TIMEOUT)
        self.stderr.close()
        if self.popen.stdout:
            self.popen.stdout.close()
        return code


@dataclass
class Ledger:
    """Every document the driver saw answered, and what went wrong with them."""

    seen: dict[int, Key] = field(default_factory=dict)
    lost: set[int] = field(default_factory=set)
    reused: set[int] = field(default_factory=set)
    restarts_losing: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, doc: FiscalDocument) -> None:
        key = (int(doc.kind), doc.fiscal_sign, None if doc.total is None else str(doc.total))
        with self.lock:
            old = self.seen.get(doc.number)
            if old is not None and not _same(old, key):
                self.reused.add(doc.number)
            self.seen.setdefault(doc.number, key)

    def check(self, handle: DeviceHandle) -> dict[str, Any]:
        """The restored register against everything seen so far; the register's state."""
        state: dict[str, Any] = handle.lab.state()
        archive = {d["number"]: d for d in state["fn"]["documents"]}
        lost = {n for n in self.seen if n not in archive}
        changed = {n for n, key in self.seen.items() if n in archive and not _same(key, _key(archive[n]))}
        if lost - self.lost:
            self.restarts_losing += 1
        self.lost |= lost
        self.reused |= changed
        return state


def _key(doc: dict[str, Any]) -> Key:
    return doc["kind"], doc["fiscal_sign"], doc["total"]


def _same(a: Key, b: Key) -> bool:
    """Pirit answers a shift report without its fiscal sign: compare what both sides have."""
    return a[0] == b[0] and (not a[1] or not b[1] or a[1] == b[1]) and (a[2] is None or b[2] is None or a[2] == b[2])


class Seller(threading.Thread):
    """Sells (and closes/opens shifts) until the register dies under the driver, or ``stop``."""

    def __init__(self, handle: DeviceHandle, ledger: Ledger, rng: random.Random) -> None:
        super().__init__(name="seller", daemon=True)
        self.handle, self.ledger, self.rng = handle, ledger, rng
        self.stop = threading.Event()
        self.sold = 0

    def run(self) -> None:
        kkt = self.handle.kkt
        try:
            while not self.stop.is_set():
                if self.rng.random() < 0.04:
                    self.ledger.note(kkt.close_shift())
                    self.ledger.note(kkt.open_shift())
                else:  # each receipt its own total: a number re-used for another receipt shows
                    price = Decimal(self.rng.randint(100, 999_999)) / 100
                    self.ledger.note(kkt.sell([Item("Сахар", price)]))
                    self.sold += 1
        except KktError:
            pass  # the link died, or the restarted register wants its start of work


def prepare(handle: DeviceHandle, ledger: Ledger, state: dict[str, Any]) -> None:
    if state["document"] is not None:
        handle.kkt.cancel_document()  # a receipt half built when the emulator died
    if not state["shift"]["is_open"]:
        ledger.note(handle.kkt.open_shift())


def run_kills(workdir: Path, runs: int, rng: random.Random, *, sigterm_first: bool) -> tuple[Ledger, int, float]:
    """``runs`` kills; the ledger, how many SIGTERMs finished before their SIGKILL, seconds."""
    t0 = time.monotonic()
    state_file = workdir / ("sigterm.json" if sigterm_first else "sigkill.json")
    ledger = Ledger()
    emulator = Emulator(workdir, state_file, first=True)
    clean = 0
    for _ in range(runs):
        with open_kkt(emulator.spec()) as handle:
            prepare(handle, ledger, ledger.check(handle))
            seller = Seller(handle, ledger, random.Random(rng.random()))
            seller.start()
            time.sleep(rng.uniform(0.0, 0.25))  # a seeded random moment of the selling
            if sigterm_first:
                emulator.popen.send_signal(signal.SIGTERM)
                time.sleep(rng.uniform(0.0, 0.030))
            code = emulator.kill()
            clean += code == 0
            emulator = Emulator(workdir, state_file, emulator.ports, first=False)  # the same ports
            seller.stop.set()
            seller.join(LINE_TIMEOUT * 3)
            if seller.is_alive():
                raise RuntimeError("the seller did not stop after the restart")
    with open_kkt(emulator.spec()) as handle:
        ledger.check(handle)
    emulator.kill(signal.SIGTERM)
    return ledger, clean, time.monotonic() - t0


def throughput(workdir: Path, receipts: int, batches: int = 5) -> tuple[float, float]:
    """Receipts per second through the driver, with and without --state, batches interleaved."""
    spent = {True: 0.0, False: 0.0}
    emulators = {True: Emulator(workdir, workdir / "cost.json", first=True), False: Emulator(workdir, None, first=True)}
    try:
        handles = {kept: open_kkt(e.spec()).__enter__() for kept, e in emulators.items()}
        for handle in handles.values():
            handle.kkt.open_shift()
            handle.kkt.sell([Item("Сахар", Decimal("1.00"))])  # warm-up
        for _ in range(batches):
            for kept, handle in handles.items():
                t0 = time.perf_counter()
                for _ in range(receipts // batches):
                    handle.kkt.sell([Item("Сахар", Decimal("1.00"))])
                spent[kept] += time.perf_counter() - t0
        for handle in handles.values():
            handle.close()
    finally:
        for emulator in emulators.values():
            emulator.kill(signal.SIGTERM)
    done = receipts // batches * batches
    return done / spent[True], done / spent[False]


def core_throughput(workdir: Path, receipts: int) -> tuple[float, float]:
    """Receipts per second of the fiscal core in process, with the journal and without."""
    rates = []
    for kept in (True, False):
        emulator = build_emulator("kf", {"clock": CLOCK})
        state = DurableState(emulator.core, workdir / "core.json", interval=3600) if kept else None
        if state:
            state.open()
        core = emulator.core
        core.initialised = True
        core.open_shift("Кассир")
        t0 = time.perf_counter()
        for _ in range(receipts):
            core.open_receipt(ReceiptKind.SALE, None, "Кассир")
            core.add_item("Сахар", Decimal(1), Decimal("1.00"))
            core.pay(PaymentKind.CASH, Decimal("1.00"))
            core.close_receipt()
        rates.append(receipts / (time.perf_counter() - t0))
        if state:
            state.close()
    return rates[0], rates[1]


def fdatasync_ms(workdir: Path, rounds: int = 200) -> float:
    """Median milliseconds of one append + fdatasync of a journal-sized line on this disk, now."""
    samples = []
    fd = os.open(workdir / "sync-probe", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            os.write(fd, b"x" * 3000 + b"\n")
            os.fdatasync(fd)
            samples.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
    return sorted(samples)[len(samples) // 2] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs under load (default 100)")
    parser.add_argument("--sigterm-runs", type=int, default=25, help="SIGTERM then SIGKILL 0-30 ms later (default 25)")
    parser.add_argument("--receipts", type=int, default=500, help="receipts per side for the cost (default 500)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kkt-hil-sigkill-") as tmp:
        workdir = Path(tmp)
        for name, runs, sigterm_first in (
            ("sigkill", args.kills, False),
            ("sigterm+sigkill<=30ms", args.sigterm_runs, True),
        ):
            ledger, clean, seconds = run_kills(workdir, runs, rng, sigterm_first=sigterm_first)
            extra = f", {clean} exited 0 before the SIGKILL" if sigterm_first else ""
            print(
                f"{name}: {runs} restarts{extra}, {len(ledger.seen)} documents answered, "
                f"{len(ledger.lost)} lost ({ledger.restarts_losing} restarts lost any), "
                f"{len(ledger.reused)} FD numbers re-used  [{seconds:.0f} s, seed {args.seed}]",
                flush=True,
            )
        with_state, without = throughput(workdir, args.receipts)
        print(
            f"cost, driver over TCP: {with_state:.1f} receipts/s with --state, {without:.1f} without "
            f"({(with_state / without - 1) * 100:+.1f} %)",
            flush=True,
        )
        core_with, core_without = core_throughput(workdir, args.receipts * 2)
        print(
            f"cost, fiscal core in process: {core_with:.0f} receipts/s with the journal, {core_without:.0f} without "
            f"({(1 / core_with - 1 / core_without) * 1e6:.0f} µs per receipt; one append + fdatasync on this disk "
            f"now: median {fdatasync_ms(workdir):.2f} ms)",
            flush=True,
        )


if __name__ == "__main__":
    main()
