"""The suite catches regressions: run every scenario on the correct Касса Ф emulator and on one
emulator per seeded firmware defect, in one pytest run, and check that each defect is caught by
the scenarios meant to catch it while everything passes on the correct emulator.

Prints the detection matrix (defect × scenario)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from devices.emulator.defects import DEFECTS

from .scenario_runs import run_scenarios

# defect → scenarios that exist to catch it (each must fail on that defect)
MEANT_TO_CATCH: dict[str, set[str]] = {
    "ignore_24h_rule": {"test_24_hour_boundary"},
    "lose_pending_print_on_power_cycle": {"test_pending_print_survives_power_cycle"},
    "reprint_creates_new_document": {"test_paper_out_mid_receipt"},
    "accept_unregistered_tax_system": {"test_withheld_task_old_regime_stays"},
    "report_undelivered_as_sent": {"test_queue_grows_while_ofd_down", "test_printed_is_not_delivered"},
    "compare_dates_as_text": {"test_year_boundary_is_chronological", "test_example_2"},
    "use_utc_date": {"test_device_local_date_decides"},
    "reregister_inside_open_shift": {
        "test_shift_across_midnight_with_due_task",
        "test_task_arriving_inside_open_shift_waits",
    },
    "skip_due_task_on_open": {"test_example_1", "test_example_2", "test_example_3_round_the_clock"},
    "retry_burns_registration": {"test_paper_out_mid_deferred_reregistration"},
}


def test_every_defect_has_catchers() -> None:
    assert set(MEANT_TO_CATCH) == set(DEFECTS)


@pytest.mark.timeout(300)  # the whole suite once per seeded defect (~40 s alone; more under -n 2 on 2 cores)
def test_detection_matrix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = ["emulator:kf"] + [f"emulator:kf?defects={d}" for d in sorted(DEFECTS)]
    runs = run_scenarios(["-o", "junit_family=xunit2", *[f"--kkt={s}" for s in specs]], tmp_path, timeout=600)

    outcome: dict[str, dict[str, str]] = defaultdict(dict)  # device id → scenario → outcome
    for case, result in runs.items():
        scenario, _, device = case.split("::", 1)[1].partition("[")
        outcome[device[:-1]][scenario] = result

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
        if not MEANT_TO_CATCH[defect] <= caught:
            missed[defect] = MEANT_TO_CATCH[defect] - caught
        assert caught, f"defect {defect} is caught by no scenario"

    width = max(len(d) for d in DEFECTS)
    lines = [f"{'detection matrix (X = scenario fails on the defect)':{width}}"]
    for scenario in scenarios:
        marks = "".join(" X" if scenario in caught else " ." for _, caught in rows)
        lines.append(f"{scenario[:width]:{width}} {marks}")
    lines.append("defects, by column: " + ", ".join(f"{i + 1}={d}" for i, (d, _) in enumerate(rows)))
    lines += [f"{d:{width}}  caught by {len(c)}: {', '.join(sorted(c))}" for d, c in rows]
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert not missed, f"defects not caught by the scenarios meant to catch them: {missed}"
