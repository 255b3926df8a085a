"""Safety on a lab register: no destructive request reaches it unless all four conditions hold,
through any path; and when they all hold, it does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import open_kkt
from harness.device import TaxSystem
from harness.errors import SafetyRefusal, UsageError
from harness.inventory import entry_toml, write_inventory
from harness.standin import StandIn, start_standin

from .refusal_matrix import CONDITIONS, PATHS, run_matrix_on_own_standin


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    started = start_standin("kf", device_id="bench", sacrificial=True)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def inventory(standin: StandIn, tmp_path: Path) -> Path:
    path = tmp_path / "lab.toml"
    write_inventory(path, [entry_toml(standin.entry)])
    return path


@pytest.mark.parametrize("model", ["kf", "atol"])
def test_the_refusal_matrix_is_all_refused_and_the_control_row_gets_through(model: str, tmp_path: Path) -> None:
    matrix = run_matrix_on_own_standin(model, tmp_path)
    paths = PATHS[matrix.family]
    assert len(matrix.cells) == (len(CONDITIONS) + 1) * len(paths)
    assert not matrix.reached(), matrix.reached()
    assert len(matrix.tried()) >= 4 * len(paths)
    assert set(matrix.control()) == set(paths)
    assert set(matrix.control().values()) == {"REACHED"}, matrix.control()  # each path really is a path


def test_with_all_four_conditions_a_reregistration_goes_through(standin: StandIn, inventory: Path) -> None:
    with open_kkt("lab:bench", inventory=inventory, allow_destructive=True, destructive=True) as handle:
        before = handle.kkt.fn()
        target = TaxSystem.USN_INCOME if TaxSystem.OSN in before.tax_systems else TaxSystem.OSN
        document = handle.kkt.reregister(target)
        after = handle.kkt.fn()
    assert after.tax_systems == target and after.last_registration_fd == document.number
    assert before.registrations_done is not None and after.registrations_done == before.registrations_done + 1


def test_a_refusal_names_the_failing_condition(standin: StandIn, inventory: Path) -> None:
    with open_kkt("lab:bench", inventory=inventory, allow_destructive=True) as handle:
        with pytest.raises(SafetyRefusal, match=r"the scenario is not marked destructive.*nothing was sent"):
            handle.kkt.reregister(TaxSystem.OSN | TaxSystem.PATENT)
        assert "refused before sending" in handle.trace.render()


def test_a_serial_mismatch_stops_at_identification(standin: StandIn, tmp_path: Path) -> None:
    import dataclasses

    path = tmp_path / "wrong.toml"
    write_inventory(path, [entry_toml(dataclasses.replace(standin.entry, serial="0497999999"))])
    with pytest.raises(UsageError, match=r"reports factory serial 0497123456, the inventory says 0497999999"):
        with open_kkt("lab:bench", inventory=path, allow_destructive=True, destructive=True):
            pass


def test_an_unknown_lab_id_is_one_line(inventory: Path) -> None:
    with pytest.raises(UsageError, match=r"no device 'nosuch' in the inventory \(known: bench\)"):
        with open_kkt("lab:nosuch", inventory=inventory):
            pass


def test_a_lab_spec_without_an_inventory_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KKT_HIL_INVENTORY", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="needs a lab inventory: --inventory FILE"):
        with open_kkt("lab:bench"):
            pass


def test_a_pirit_entry_without_the_fn_registration_limit_refuses_registrations(
    standin: StandIn, tmp_path: Path
) -> None:
    import dataclasses

    path = tmp_path / "nolimit.toml"
    write_inventory(path, [entry_toml(dataclasses.replace(standin.entry, fn_registration_limit=None))])
    with open_kkt("lab:bench", inventory=path, allow_destructive=True, destructive=True) as handle:
        done = handle.kkt.fn().registrations_done
        with pytest.raises(SafetyRefusal, match=r"registrations left on the ФН are not known.*fn_registration_limit"):
            handle.kkt.reregister(TaxSystem.OSN | TaxSystem.PATENT)
        assert handle.kkt.fn().registrations_done == done


def test_a_register_left_powered_off_is_powered_on_when_opened(standin: StandIn, inventory: Path) -> None:
    from harness.instruments.supply import BenchSupply

    assert standin.entry.supply is not None
    supply = BenchSupply(standin.entry.supply.resource)
    try:
        supply.output(False)  # a run that died between power("off") and power("on")
        with open_kkt("lab:bench", inventory=inventory) as handle:
            assert supply.output_state() is True
            assert handle.kkt.status().initialised
            assert "output was off: switched on" in handle.trace.render()
    finally:
        supply.output(True)
        supply.close()


def test_a_lab_register_is_leased_to_one_handle_at_a_time(standin: StandIn, inventory: Path) -> None:
    """Two workers (or runs) on one register: the second waits for the lease and says so, or
    fails naming the lease; a nested open in one process fails at once (it would wait for itself)."""
    import hashlib
    import subprocess
    import sys

    from harness.connect import open_device
    from harness.errors import HarnessError
    from harness.lab_open import LabOptions
    from harness.leases import lease_dir
    from harness.spec import parse_spec

    (spec,) = parse_spec("lab:bench")
    with open_kkt("lab:bench", inventory=inventory):
        with pytest.raises(HarnessError, match=r"is already open in this process"):
            open_device(spec, lab=LabOptions(inventory))
    assert standin.entry.url is not None
    lock = lease_dir() / f"{hashlib.sha256(standin.entry.url.encode()).hexdigest()[:16]}.lock"
    holder = subprocess.Popen(  # another run holding the register until told to stop
        [
            sys.executable,
            "-c",
            f"import sys, filelock; l = filelock.FileLock({str(lock)!r}); l.acquire(); "
            "print('held', flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(
            HarnessError, match=r"is in use by another test or run \(.*; lease .*\) for more than 0.2 s"
        ):
            open_device(spec, lab=LabOptions(inventory, lease_timeout=0.2))
    finally:
        holder.communicate("\n", timeout=10)
    open_device(spec, lab=LabOptions(inventory, lease_timeout=0.2)).close()  # released when it is gone
