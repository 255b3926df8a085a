"""The suite catches regressions: run every scenario on the correct Касса Ф emulator and on one
emulator per seeded firmware defect, in one pytest run, and check that each defect is caught by
the scenarios meant to catch it while everything passes on the correct emulator.

Prints the detection matrix (defect × scenario)."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from devices.emulator.defects import DEFECTS

from .scenario_runs import run_scenarios

# defect → scenarios that exist to catch it (each must fail on that defect)
MEANT_TO_CATCH: dict[str, set[str]] = {
    "ignore_24h_rule": {"test_24_hour_boundary", "test_expired_shift_refuses_receipts"},
    "lose_pending_print_on_power_cycle": {"test_pending_print_survives_power_cycle"},
    "reprint_creates_new_document": {"test_paper_out_mid_receipt", "test_pending_print_survives_power_cycle"},
    "accept_unregistered_tax_system": {
        "test_withheld_task_old_regime_stays",
        "test_receipt_on_unregistered_tax_system",
    },
    "report_undelivered_as_sent": {"test_queue_grows_while_ofd_down", "test_printed_is_not_delivered"},
    "return_adds_to_shift_total": {"test_queue_grows_while_ofd_down"},
    "shift_counters_not_reset": {"test_24_hour_boundary", "test_example_2"},
    "no_fn_30_day_warning": {"test_fn_30_day_warning"},
    "x_report_makes_document": {"test_harmless_operations"},
    "queue_counts_receipts_only": {"test_queue_grows_while_ofd_down", "test_thirty_day_block"},
    "shift_number_skips": {"test_shift_open_twice_and_close_twice", "test_24_hour_boundary"},
    "compare_dates_as_text": {"test_year_boundary_is_chronological", "test_example_2"},
    "use_utc_date": {"test_device_local_date_decides"},
    "reregister_inside_open_shift": {
        "test_shift_across_midnight_with_due_task",
        "test_task_arriving_inside_open_shift_waits",
    },
    "skip_due_task_on_open": {"test_example_1", "test_example_2", "test_example_3_round_the_clock"},
    "retry_burns_registration": {"test_paper_out_mid_deferred_reregistration"},
    "compare_firmware_as_text": {"test_firmware_gate"},
    "swap_task_day_month": {"test_example_2"},
    "failed_task_not_retried": {"test_printer_fault_then_retry"},
    "failure_not_reported": {"test_printer_fault_then_retry", "test_registrations_exhausted_task_fails"},
    "implicit_open_skips_task": {"test_example_2"},
}


def split_case(name: str, devices: list[str]) -> tuple[str, str, str]:
    """``test_x[emulator-kf[defects=d]-variant]`` → (``test_x``, the device id, ``variant``)."""
    scenario, _, inside = name.partition("[")
    inside = inside[:-1]
    device = max((d for d in devices if inside == d or inside.startswith(d + "-")), key=len)
    return scenario, device, inside[len(device) + 1 :]


def caught_by(caught: set[str], scenario: str) -> bool:
    """A scenario (any of its variants) fails."""
    return any(name == scenario or name.startswith(scenario + "[") for name in caught)


def test_split_case() -> None:
    devices = ["emulator-kf", "emulator-kf[defects=a]"]
    assert split_case("test_x[emulator-kf]", devices) == ("test_x", "emulator-kf", "")
    assert split_case("test_x[emulator-kf[defects=a]-year]", devices) == ("test_x", "emulator-kf[defects=a]", "year")
    assert split_case("test_x[emulator-kf-day-month]", devices) == ("test_x", "emulator-kf", "day-month")


def test_every_defect_has_catchers() -> None:
    assert set(MEANT_TO_CATCH) == set(DEFECTS)


@pytest.mark.timeout(600)  # the whole suite once per seeded defect (~70 s alone; more under -n 2 on 2 cores)
def test_detection_matrix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = ["emulator:kf"] + [f"emulator:kf?defects={d}" for d in sorted(DEFECTS)]
    messages: dict[str, str] = {}
    runs = run_scenarios(
        ["-o", "junit_family=xunit2", *[f"--kkt={s}" for s in specs]], tmp_path, timeout=600, messages=messages
    )
    # a catch is a scenario failing on what it checks, not the harness crashing on an odd answer
    crashes = {n: m for n, m in messages.items() if re.match(r"(TypeError|KeyError|AttributeError|NameError)\b", m)}
    assert not crashes, f"scenarios crashed instead of failing a check: {crashes}"

    devices = ["emulator-kf"] + [f"emulator-kf[defects={d}]" for d in sorted(DEFECTS)]
    outcome: dict[str, dict[str, str]] = defaultdict(dict)  # device id → scenario → outcome
    for case, result in runs.items():
        scenario, device, variant = split_case(case.split("::", 1)[1], devices)
        outcome[device][scenario if not variant else f"{scenario}[{variant}]"] = result

    baseline = outcome["emulator-kf"]
    scenarios = sorted(baseline)
    assert len(scenarios) >= 20, f"too few scenarios collected: {scenarios}"
    broken = {s: r for s, r in baseline.items() if r == "failed"}
    assert not broken, f"scenarios fail on the correct emulator: {broken}"

    rows = []
    missed: dict[str, set[str]] = {}
    for defect in sorted(DEFECTS):
        results = outcome[f"emulator-kf[defects={defect}]"]
        caught = {s for s, r in results.items() if r == "failed"}
        rows.append((defect, caught))
        escaped = {s for s in MEANT_TO_CATCH[defect] if not caught_by(caught, s)}
        if escaped:
            missed[defect] = escaped
        assert caught, f"defect {defect} is caught by no scenario"

    width = max(len(d) for d in DEFECTS)
    bases = sorted({name.partition("[")[0] for name in scenarios})  # variants collapse to their scenario
    lines = [f"{'detection matrix (X = a variant of the scenario fails on the defect)':{width}}"]
    for scenario in bases:
        marks = "".join(" X" if caught_by(caught, scenario) else " ." for _, caught in rows)
        lines.append(f"{scenario[:width]:{width}} {marks}")
    lines.append("defects, by column: " + ", ".join(f"{i + 1}={d}" for i, (d, _) in enumerate(rows)))
    for defect, caught in rows:
        names = sorted({name.partition("[")[0] for name in caught})
        lines.append(f"{defect:{width}}  caught by {len(caught)} variants of {', '.join(names)}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert not missed, f"defects not caught by the scenarios meant to catch them: {missed}"
