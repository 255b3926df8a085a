"""Bad lab input gives one clear line and exit 2 before any test runs, and nothing is sent to a
register that failed identification."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from harness.inventory import LabDevice, OfdLink, Supply, entry_toml, write_inventory
from harness.standin import StandIn, free_port, start_standin

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    started = start_standin("kf", device_id="bench", sacrificial=True)
    try:
        yield started
    finally:
        started.close()


def _run(inventory: Path, tmp_path: Path, spec: str = "lab:bench", *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "--kkt",
            spec,
            "--inventory",
            str(inventory),
            "--results",
            str(tmp_path / "res"),
            "--report",
            str(tmp_path / "rep"),
            str(ROOT / "scenarios" / "test_no_paper.py"),
            "-k",
            "idle",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def _inventory(tmp_path: Path, entry: LabDevice) -> Path:
    path = tmp_path / "lab.toml"
    write_inventory(path, [entry_toml(entry)])
    return path


def _one_error_line(proc: subprocess.CompletedProcess[str], needle: str) -> None:
    assert proc.returncode == 2, proc.stdout[-1500:] + proc.stderr[-1500:]
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if needle in line]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    assert "report:" not in proc.stdout  # no report for a run that never started


READ_ONLY_EVENTS = {"start of work"}  # what a register's journal may show after a refused run

BROKEN = {
    "serial mismatch": (lambda e: dataclasses.replace(e, serial="0497000001"), "reports factory serial 0497123456"),
    "bench supply that does not answer": (
        lambda e: dataclasses.replace(e, supply=Supply(resource=f"TCPIP::127.0.0.1::{free_port()}::SOCKET")),
        "bench supply TCPIP::127.0.0.1",
    ),
    "OFD upstream down": (
        lambda e: dataclasses.replace(
            e, ofd=OfdLink(listen=f"tcp://127.0.0.1:{free_port()}", upstream=f"tcp://127.0.0.1:{free_port()}")
        ),
        "is down",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_lab_is_one_line_and_exit_2(standin: StandIn, tmp_path: Path, case: str) -> None:
    change, needle = BROKEN[case]
    assert standin.emulated is not None
    journal_before = len(standin.emulated.control({"op": "journal"})["journal"])
    _one_error_line(_run(_inventory(tmp_path, change(standin.entry)), tmp_path), needle)
    journal = standin.emulated.control({"op": "journal"})["journal"][journal_before:]
    assert {e["event"] for e in journal} <= READ_ONLY_EVENTS, journal  # identification only read


def test_a_busy_port_is_one_line(standin: StandIn, tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, standin.entry)
    assert standin.entry.url is not None
    with serial.serial_for_url(standin.entry.url, exclusive=True):  # someone else holds the register
        _one_error_line(_run(inventory, tmp_path), "cannot open")


def test_an_unknown_id_and_a_malformed_inventory_are_one_line(standin: StandIn, tmp_path: Path) -> None:
    inventory = _inventory(tmp_path, standin.entry)
    _one_error_line(_run(inventory, tmp_path, "lab:nosuch"), "no device 'nosuch'")
    inventory.write_text(inventory.read_text() + 'bogus = "x"\n')
    _one_error_line(_run(inventory, tmp_path), "unknown key")


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("--real-time-budget", "nan", "--real-time-budget must be a number of seconds >= 0"),
        ("--real-time-budget", "inf", "--real-time-budget must be a number of seconds >= 0"),
        ("--device-timeout-scale", "nan", "--device-timeout-scale must be"),
        ("--operator", "robot", "operator must be tty, none or tcp://127.0.0.1:PORT, not 'robot'"),
        ("--operator", "tcp://10.0.0.1:7000", "only loopback addresses are allowed"),
    ],
)
def test_bad_lab_options_are_one_line(standin: StandIn, tmp_path: Path, option: str, value: str, needle: str) -> None:
    _one_error_line(_run(_inventory(tmp_path, standin.entry), tmp_path, "lab:bench", f"{option}={value}"), needle)
