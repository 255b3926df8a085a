"""A pool of equivalent lab registers (``pool = "NAME"`` in the inventory, ``--kkt pool:NAME``):
each test leases whichever member is free.  The proof: two concurrent ``pytest scenarios -n 2``
runs on a pool of two registers never drive one register twice — seen from the registers' side,
where every connection is a session and no session sends a byte once another has started — and
a run SIGKILLed midway leaves no lease behind: the other run finishes, ``devices --leases`` shows
them free.

The registers are emulators served in this process on loopback TCP (as a register behind ser2net
would be) and reached only through the inventory, the lab path: lease, port, identity against the
inventory, a scripted operator for paper and power.
"""

from __future__ import annotations

import json
import os
import signal
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from devices.emulator.build import Emulator, build_emulator
from devices.emulator.serve import TcpServer
from devices.pirit.emulator import PiritFrontEnd
from harness import leases, open_kkt
from harness.errors import HarnessError, UsageError
from harness.inventory import InventoryError, LabDevice, entry_toml, load_inventory, parse_text, write_inventory
from harness.spec import parse_spec
from harness.standin import ScriptedOperator

from .cli_helpers import run_cli
from .plugin_helpers import AllureResults
from .scenario_runs import scenarios_command

ROOT = Path(__file__).resolve().parents[1]
SUBSET = "idle_refusal or near_end or z_report or power_cycle or (queue_grows and receipts)"  # 4 pass, 1 skips after connecting
RUN_TIMEOUT = 120.0


# ------------------------------------------------------------------------------------------ the registers


@dataclass
class SessionLog:
    """What a register's port saw: one session per connection, and the session of every chunk of
    bytes a host sent, in the order the register got them."""

    chunks: list[int] = field(default_factory=list)
    sessions: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def frontend(self, emulator: Emulator) -> Any:
        with self.lock:
            self.sessions += 1
            session = self.sessions
        inner = PiritFrontEnd(emulator.core)
        log = self

        class Logged:
            def feed(self, data: bytes) -> bytes:
                with log.lock:
                    log.chunks.append(session)
                return inner.feed(data)

            def pending(self) -> bool:
                return inner.pending()

            def reset(self) -> None:
                inner.reset()

        return Logged()

    def resumed(self) -> list[int]:
        """Sessions that sent again after another session had started: two hosts at once."""
        seen: set[int] = set()
        last, resumed = 0, []
        with self.lock:
            for session in self.chunks:
                if session != last:
                    if session in seen:
                        resumed.append(session)
                    seen.add(session)
                    last = session
        return resumed


class _Lines(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        request = json.loads(self.rfile.readline(1 << 16).decode("utf-8"))
        self.wfile.write((json.dumps(server.operator.handle(request)) + "\n").encode("utf-8"))


@dataclass
class Register:
    entry: LabDevice
    log: SessionLog


@pytest.fixture
def pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, list[Register]]]:
    """Two Касса Ф registers in the pool kf-lab, each with a scripted operator; the inventory."""
    monkeypatch.setenv(leases.LEASE_DIR_ENV, str(tmp_path / "leases"))
    closers: list[Any] = []
    registers = []
    try:
        for number, name in enumerate(("a", "b"), start=1):
            emulator = build_emulator("kf", {"serial": f"049700000{number}"}, flowing_clock=True)
            closers.append(emulator.close)
            log = SessionLog()
            server = TcpServer(partial(log.frontend, emulator), "tcp://127.0.0.1:0")
            closers.append(server.close)
            operator = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Lines)
            operator.daemon_threads = True
            operator.operator = ScriptedOperator(emulator.handler.handle)  # type: ignore[attr-defined]
            threading.Thread(target=operator.serve_forever, daemon=True).start()
            closers.extend([operator.server_close, operator.shutdown])
            entry = LabDevice(
                id=name,
                model="kf",
                url=server.url,
                usb_serial=None,
                port=None,
                serial=emulator.serial,
                fn="fn36",
                sacrificial=False,
                rereg_floor=2,
                fn_registration_limit=30,
                utc_offset=timedelta(hours=3),
                operator=f"tcp://127.0.0.1:{operator.server_address[1]}",
                hub=None,
                hub_poll_seconds=None,
                baud=None,
                supply=None,
                ofd=None,
                source="pool",
                pool="kf-lab",
            )
            registers.append(Register(entry, log))
        inventory = tmp_path / "lab.toml"
        write_inventory(inventory, [entry_toml(r.entry) for r in registers])
        yield inventory, registers
    finally:
        for close in reversed(closers):
            close()


# ------------------------------------------------------------------------------------------ the spec, the inventory


def test_the_pool_spec_and_its_inventory_key(tmp_path: Path) -> None:
    (spec,) = parse_spec("pool:kf-lab")
    assert (spec.kind, spec.target, spec.id) == ("pool", "kf-lab", "pool-kf-lab")
    for bad, why in [
        ("pool:KF", "name the pool"),
        ("pool:kf-lab?faults=seed:1", "faults= works with emulator: and url: specs, not pool:"),
    ]:
        with pytest.raises(UsageError, match=why):
            parse_spec(bad)
    block = '[[device]]\nid = "{id}"\nmodel = "{model}"\nurl = "socket://127.0.0.1:{port}"\nserial = "{serial}"\n'
    block += 'fn = "fn36"\nsacrificial = false\noperator = "none"\npool = "{pool}"\n'
    one = block.format(id="a", model="kf", port=1, serial="0497000001", pool="kf-lab")
    other = block.format(id="b", model="atol", port=2, serial="0055000002", pool="kf-lab")
    with pytest.raises(
        InventoryError, match=r"lab.toml:18: pool 'kf-lab' holds kf registers \(a, .*lab.toml:1\), not atol"
    ):
        parse_text(one + other, tmp_path / "lab.toml")
    with pytest.raises(InventoryError, match=r"lab.toml:9: pool 'Kf' must be lower-case"):
        parse_text(one.replace('"kf-lab"', '"Kf"'), tmp_path / "lab.toml")
    path = tmp_path / "lab.toml"
    path.write_text(
        one + block.format(id="b", model="kf", port=2, serial="0497000002", pool="kf-lab"), encoding="utf-8"
    )
    inventory = load_inventory(path)
    assert [d.id for d in inventory.pool("kf-lab")] == ["a", "b"]
    assert entry_toml(inventory.device("a")).rstrip().endswith('pool = "kf-lab"')  # round trip
    with pytest.raises(UsageError, match=r"no pool 'nosuch' in the inventory \(pools: kf-lab;"):
        inventory.pool("nosuch")


def test_a_pool_lends_its_free_members_in_turn(pool: tuple[Path, list[Register]]) -> None:
    inventory, registers = pool
    with open_kkt("pool:kf-lab", inventory=inventory) as first:
        assert first.spec.text == "lab:a" and first.bench is not None and first.bench.pool == "pool:kf-lab"
        assert "pool:kf-lab: leased lab:a" in first.trace.render()
        with open_kkt("pool:kf-lab", inventory=inventory) as second:
            assert second.spec.text == "lab:b" and second.kkt.info().serial == registers[1].entry.serial
            with pytest.raises(HarnessError, match=r"pool:kf-lab: every register of the pool is already open"):
                with open_kkt("pool:kf-lab", inventory=inventory):
                    pass
        with open_kkt("pool:kf-lab", inventory=inventory) as third:
            assert third.spec.text == "lab:b"


# ------------------------------------------------------------------------------------------ two runs, one pool


def _run(inventory: Path, results: Path) -> subprocess.Popen[str]:
    command = scenarios_command(
        "-p", "no:cacheprovider", "-n", "2", "-k", SUBSET, "--kkt", "pool:kf-lab", "--inventory", str(inventory),
        f"--alluredir={results}",
    )  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: the run with its xdist workers
    )


def _members(results: Path) -> dict[str, str]:
    """test name → the member its «Устройство» names."""
    found = {}
    for result in AllureResults.load(results).results:
        device = next(p["value"] for p in result["parameters"] if p["name"] == "Устройство")
        found[AllureResults.testname(result)] = device
    return found


def _states(tmp_path: Path) -> list[str]:
    out = run_cli("devices", "--leases", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    return [lease["state"] for lease in json.loads(out.stdout)["leases"]]


@pytest.mark.timeout(240)
def test_two_runs_share_a_pool_and_a_killed_run_leaves_no_lease(
    pool: tuple[Path, list[Register]], tmp_path: Path
) -> None:
    inventory, registers = pool
    runs = [_run(inventory, tmp_path / f"results-{n}") for n in (1, 2)]
    outputs = [run.communicate(timeout=RUN_TIMEOUT)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
        assert "4 passed, 1 skipped" in output, output[-3000:]
    used = set()
    for n in (1, 2):
        members = _members(tmp_path / f"results-{n}")
        assert len(members) == 5 and all("[pool-kf-lab" in name for name in members), members
        assert set(members.values()) <= {"lab:a (pool:kf-lab)", "lab:b (pool:kf-lab)"}, members
        used |= set(members.values())
    assert len(used) == 2  # both members lent
    for register in registers:  # each register: a session per open (tests and preflights), never two at once
        assert register.log.sessions >= 2 and register.log.resumed() == [], register.log.chunks
    assert sum(r.log.sessions for r in registers) == 2 * 5 + 2
    assert set(_states(tmp_path)) <= {"free"}

    before = [r.log.sessions for r in registers]
    killed, survivor = _run(inventory, tmp_path / "results-3"), _run(inventory, tmp_path / "results-4")
    deadline = time.monotonic() + 60
    while not any(  # the killed run's workers are on the registers
        s.state == "held" and s.holder is not None and _group(s.holder.pid) == killed.pid for s in leases.list_leases()
    ):
        assert time.monotonic() < deadline and killed.poll() is None, "the first run never leased a register"
        time.sleep(0.05)  # polling with a deadline
    os.killpg(killed.pid, signal.SIGKILL)
    killed.communicate(timeout=30)
    output = survivor.communicate(timeout=RUN_TIMEOUT)[0]
    assert survivor.returncode == 0 and "4 passed, 1 skipped" in output, output[-3000:]
    assert set(_states(tmp_path)) <= {"free"}  # the killed run's leases went with it
    for register, old in zip(registers, before, strict=True):
        assert register.log.resumed() == [], register.log.chunks
        assert register.log.sessions > old


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
