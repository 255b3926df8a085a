"""The stand-in lab register end to end, as a lab engineer would use it: ``kkt-hil standin``
writes its inventory entry, ``kkt-hil devices`` finds and identifies it, and the whole scenario
suite runs on it through ``lab:<id>`` — power through pyvisa and the simulated supply, the OFD
through the harness proxy, paper and the ФН by the scripted operator, never the control channel."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.inventory import load_inventory

from .cli_helpers import Proc
from .scenario_runs import run_scenarios

# what a register reached only by its port cannot do, and says so (real time, the safety floor)
INHERENT_SKIPS = {  # a lab register's time passes for real, its zone and RTC are its own
    "test_thirty_day_block",
    "test_24_hour_boundary",
    "test_shift_across_midnight_with_due_task",
    "test_registrations_exhausted",
    "test_device_local_date_decides",
    "test_expired_shift_refuses_receipts",
    "test_idle_hour_is_harmless",
    "test_rtc_jump_is_judged_by_the_fn_timer",
}


def _standin(spawn: Callable[..., Proc], inventory: Path) -> Proc:
    proc = spawn("standin", "kf", "--inventory", str(inventory), "--id", "bench")
    assert proc.readline() == f"inventory {inventory}"
    assert proc.readline() == "device bench"
    return proc


def test_devices_finds_and_identifies_the_standin(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    inventory = tmp_path / "lab.toml"
    proc = _standin(spawn, inventory)
    entry = load_inventory(inventory).device("bench")
    assert (
        entry.sacrificial and entry.supply is not None and entry.ofd is not None and entry.operator.startswith("tcp://")
    )
    line = next(line for line in _devices(inventory).splitlines() if line.startswith(str(entry.url)))
    assert f"pirit: kf  serial {entry.serial}  firmware 2.26.0" in line and line.endswith("= lab:bench"), line
    assert proc.terminate() == 0
    assert not inventory.exists()  # its entry goes with it: no stale /dev/pts entry is left behind


@pytest.mark.timeout(900)  # the whole suite, twice, on a register that spends real seconds
def test_the_suite_runs_on_the_standin_through_its_port(spawn: Callable[..., Proc], tmp_path: Path) -> None:
    inventory = tmp_path / "lab.toml"
    _standin(spawn, inventory)
    args = ["--kkt", "lab:bench", "--inventory", str(inventory), "--allow-destructive"]
    outcomes = run_scenarios(args, tmp_path, timeout=900)
    again = run_scenarios(args, tmp_path, timeout=900)
    assert again == outcomes  # runs against the same register are repeatable: teardown left it as found
    assert not [name for name, outcome in outcomes.items() if outcome == "failed"], outcomes
    by_name: dict[str, set[str]] = {}  # a scenario → the outcomes of its variants
    for name, outcome in outcomes.items():
        by_name.setdefault(name.rsplit("::", 1)[1].split("[")[0], set()).add(outcome)
    passed = sorted(name for name, seen in by_name.items() if "passed" in seen)
    assert len(by_name) == 55
    assert len(passed) >= 45, by_name
    assert {name for name, seen in by_name.items() if seen == {"skipped"}} <= INHERENT_SKIPS, by_name
    # power loss mid-receipt through pyvisa and the supply; unsent documents through the OFD proxy
    for name in (
        "test_pending_print_survives_power_cycle",
        "test_queue_grows_while_ofd_down",
        "test_printed_is_not_delivered",
    ):
        assert "passed" in by_name[name], name


def _devices(inventory: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", "devices", "--inventory", str(inventory)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_devices_starts_a_register_the_lab_moved_forward_with_the_lab_clock(tmp_path: Path) -> None:
    """After the lab moved a Pirit's clock forward and it was powered off, its start of work must
    carry the lab's clock (the skew kept next to the inventory), not the host's: a time before its
    last document is refused (0x0C) and the register stays unidentified."""
    from datetime import timedelta

    from harness import open_kkt
    from harness.instruments.supply import BenchSupply
    from harness.inventory import entry_toml, write_inventory
    from harness.standin import start_standin

    standin = start_standin("kf", device_id="bench", sacrificial=True)
    try:
        inventory = tmp_path / "lab.toml"
        write_inventory(inventory, [entry_toml(standin.entry)])
        with open_kkt("lab:bench", inventory=inventory, allow_destructive=True, destructive=True) as handle:
            handle.lab.clock_set(handle.kkt.clock() + timedelta(days=10))
            handle.kkt.open_shift()  # a document 10 days ahead of the host
            handle.kkt.close_shift()
            handle.lab.power("off")
        assert standin.entry.supply is not None
        with BenchSupply(standin.entry.supply.resource) as supply:
            supply.output(True)  # powered up again: it waits for its start of work
            line = next(x for x in _devices(inventory).splitlines() if x.startswith(str(standin.entry.url)))
            assert f"serial {standin.entry.serial}" in line and line.endswith("= lab:bench"), line
            inventory.with_suffix(".clock.json").unlink()  # the lab's clock forgotten: host time
            supply.output(False)
            supply.output(True)
            line = next(x for x in _devices(inventory).splitlines() if x.startswith(str(standin.entry.url)))
            assert "waiting for start of work" in line and "before its last document" in line, line
    finally:
        standin.close()
