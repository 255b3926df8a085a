"""The end of ``kkt-hil run`` / ``kkt-hil report``: the terminal summary (scenario × register), then
``matrix: PATH`` and, last, ``report: PATH``; ``run.json`` in the results, ``matrix.html`` beside
``index.html``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report import find_allure_cli
from harness.report.results import load_run, read_manifest
from harness.report.summary import display_path, render_summary

from .cli_helpers import run_cli
from .results_fixtures import write_result

LONG = "Очень длинное название сценария, которое никак не помещается в одну строку терминала шириной сто"


def _results(path: Path) -> Path:
    write_result(path, "test_idle_refusal", scenario="Без бумаги чек не открывается")
    write_result(path, "test_long", scenario=LONG, status="failed")
    write_result(path, "test_cover", scenario="Крышка открыта", status="skipped")
    write_result(
        path,
        "test_idle_refusal",
        scenario="Без бумаги чек не открывается",
        model="atol",
        model_title="АТОЛ 30Ф",
        start=5_000,
    )
    write_result(
        path,
        "test_cover",
        scenario="Крышка открыта",
        model="atol",
        model_title="АТОЛ 30Ф",
        status="broken",
        start=6_000,
    )
    return path


def test_the_grid_has_one_row_per_scenario_and_one_column_per_register(tmp_path: Path) -> None:
    lines = render_summary(load_run(_results(tmp_path)))
    assert lines[0].split() == ["scenario", "kf", "atol"]  # the catalogue order
    rows = {line.split("  ")[0]: line.split()[-2:] for line in lines[1:4]}
    assert rows["Без бумаги чек не открывается"] == ["✓", "✓"]
    assert rows["Крышка открыта"] == ["–", "!"]
    long_row = next(line for line in lines if line.startswith("Очень"))
    assert long_row.split()[-2:] == ["✗", "·"]  # not run on АТОЛ
    assert "…" in long_row and LONG not in long_row
    assert all(len(line) <= 100 for line in lines[:4]), [len(line) for line in lines]
    assert lines[-3:-1] == ["kf   = Касса Ф 2.26.0 (emulator:kf)", "atol = АТОЛ 30Ф 2.26.0 (emulator:atol)"]
    assert lines[-1] == "passed 2, failed 1, broken 1, skipped 1 (5 results)"


def test_two_firmwares_of_one_model_get_two_columns(tmp_path: Path) -> None:
    write_result(tmp_path, spec="emulator:kf")
    write_result(tmp_path, spec="emulator:kf?firmware=2.27.0", firmware="2.27.0", status="failed")
    lines = render_summary(load_run(tmp_path))
    assert lines[0].split() == ["scenario", "kf@2.26.0", "kf@2.27.0"]
    assert lines[1].split()[-2:] == ["✓", "✗"]


def test_display_path_is_relative_under_the_current_directory(tmp_path: Path) -> None:
    assert display_path(tmp_path / "r" / "index.html", cwd=tmp_path) == "r/index.html"
    assert display_path(tmp_path / "index.html", cwd=tmp_path / "elsewhere") == str(tmp_path / "index.html")


@pytest.mark.skipif(find_allure_cli() is None, reason="Allure CLI not installed (make setup)")
def test_report_writes_the_manifest_and_the_matrix_and_ends_with_the_report_line(tmp_path: Path) -> None:
    _results(tmp_path / "res")
    (tmp_path / "res" / "junk-result.json").write_text("{", encoding="utf-8")
    proc = run_cli("report", "res", "--output", str(tmp_path / "html"), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["matrix: html/matrix.html", "report: html/index.html"]
    assert proc.stderr.count("junk-result.json") == 1 and "Traceback" not in proc.stderr
    manifest = read_manifest(tmp_path / "res")
    assert manifest.report == (tmp_path / "html" / "index.html").resolve()
    assert json.loads((tmp_path / "res" / "run.json").read_text())["specs"] == ["emulator:kf", "emulator:atol"]
    page = (tmp_path / "html" / "matrix.html").read_text(encoding="utf-8")
    run = load_run(tmp_path / "res")
    assert all(f'href="index.html#/{o.report_id}"' in page for o in run.outcomes.values())
    # the report embeds the same test result ids the links name (Allure 3: md5 of the uuid)
    index = (tmp_path / "html" / "index.html").read_text(encoding="utf-8", errors="replace")
    assert all(o.report_id in index for o in run.outcomes.values())
    # a report rebuilt from results that hold run.json: Allure ignores it, the manifest moves on
    proc = run_cli("report", "res", "--output", str(tmp_path / "html2"), cwd=tmp_path, timeout=120)
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "report: html2/index.html", proc.stderr
    assert read_manifest(tmp_path / "res").report == (tmp_path / "html2" / "index.html").resolve()
