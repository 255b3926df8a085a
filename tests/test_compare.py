"""``kkt-hil compare`` and harness.report.compare on synthetic results dirs, and once end to end: the
real suite on the correct Касса Ф emulator and on one with a seeded defect."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from harness.report.compare import compare
from harness.report.results import load_run

from .cli_helpers import run_cli
from .results_fixtures import report_id, step, write_manifest, write_result


def _steps(*, last: str = "Напечатать чек", status: str = "passed") -> list[dict[str, object]]:
    return [step("Подготовка", "passed", step("Запросить статус ККТ")), step("Открыть смену"), step(last, status)]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["compare", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def _changed(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.startswith(("compare:", "html:"))]


def test_status_change_is_a_regression_with_the_first_differing_step(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a, "test_idle_refusal", steps=_steps())
    write_result(a, "test_near_end", steps=_steps())
    write_result(b, "test_idle_refusal", steps=_steps(status="failed"), status="failed", firmware="2.27.0")
    write_result(b, "test_near_end", steps=_steps(), firmware="2.27.0")
    code, lines, err = _cli(capsys, str(a), str(b))
    assert code == 1 and err == ""
    (line,) = _changed(lines)
    assert line.startswith("REGRESSION passed→failed")
    assert "Сценарий test_idle_refusal [Касса Ф 2.26.0 → Касса Ф 2.27.0]" in line
    assert "step 4: A «Напечатать чек» passed / B «Напечатать чек» failed" in line
    assert lines[-1].startswith(
        "compare: regressions 1, fixed 0, changed 0, behaviour 0, only in A 0, only in B 0, unchanged 1;"
    )


def test_same_status_other_steps_is_a_behaviour_change(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a, steps=_steps())
    write_result(b, steps=_steps(last="Напечатать X-отчёт"))
    result = compare(load_run(a), load_run(b))
    (change,) = result.changes
    assert change.kind == "behaviour" and not result.regressed
    assert change.step == 3 and change.step_a is not None and change.step_b is not None
    assert (change.step_a.name, change.step_b.name) == ("Напечатать чек", "Напечатать X-отчёт")


def test_other_steps_while_failing_in_b_is_a_regression(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a, status="failed", steps=_steps(status="failed"))
    write_result(b, status="failed", steps=[*_steps(), step("Закрыть смену", "failed")])
    result = compare(load_run(a), load_run(b))
    (change,) = result.changes
    assert change.kind == "regression" and result.regressed
    assert change.step == 3  # B has a step more, but the first difference is earlier


def test_loopback_ports_and_ptys_in_step_names_are_not_a_change(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_result(a, steps=[step("Отказ: the hub at http://127.0.0.1:39145 failed"), step("открыт /dev/pts/3")])
    write_result(b, steps=[step("Отказ: the hub at http://127.0.0.1:40007 failed"), step("открыт /dev/pts/12")])
    write_result(c, steps=[step("Отказ: the hub at http://10.0.0.1:40007 failed"), step("открыт /dev/pts/12")])
    assert compare(load_run(a), load_run(b)).changes == ()
    (change,) = compare(load_run(a), load_run(c)).changes
    assert change.kind == "behaviour" and change.step == 0


def test_a_step_missing_at_the_end_is_shown_as_no_step(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a, steps=_steps())
    write_result(b, steps=_steps()[:2])
    code, lines, _ = _cli(capsys, str(a), str(b))
    assert code == 0
    assert "step 4: A «Напечатать чек» passed / B (no step)" in _changed(lines)[0]


def test_fixed_changed_and_only_in_one_run_are_listed_but_not_regressions(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a, "test_fixed", status="failed")
    write_result(b, "test_fixed", status="passed")
    write_result(a, "test_now_runs", status="skipped", message="Skipped: нет оператора")
    write_result(b, "test_now_runs", status="passed")
    write_result(a, "test_gone")
    write_result(b, "test_new")
    write_result(a, "test_same")
    write_result(b, "test_same")
    code, lines, _ = _cli(capsys, str(a), str(b))
    assert code == 0
    tags = sorted(line.split()[0] for line in _changed(lines))
    assert tags == ["CHANGED", "FIXED", "ONLY-A", "ONLY-B"]
    assert "unchanged 1;" in lines[-1] and "test_same" not in "\n".join(lines)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("passed", "failed"),
        ("passed", "broken"),
        ("skipped", "failed"),  # a product defect new in B
        ("broken", "failed"),  # the lab was broken; now the register is at fault
        ("passed", "skipped"),  # no longer tested
        (None, "failed"),  # a scenario new in B that fails
    ],
)
def test_a_gate_stops_on_every_new_failure(tmp_path: Path, capsys, before: str | None, after: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a, "test_same")
    if before is not None:
        write_result(a, "test_x", status=before, message="" if before == "passed" else f"{before}: x")
    write_result(b, "test_same")
    write_result(b, "test_x", status=after, message="" if after == "passed" else f"{after}: y")
    code, lines, _ = _cli(capsys, str(a), str(b))
    assert code == 1, lines
    assert len(_changed(lines)) == 1


def test_emulator_runs_match_across_specs_and_firmwares(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a, spec="emulator:kf")
    write_result(b, spec="emulator:kf?firmware=2.27.0&defects=ignore_24h_rule", firmware="2.27.0")
    write_result(b, model="atol", model_title="АТОЛ 30Ф", spec="emulator:atol")
    result = compare(load_run(a), load_run(b))
    assert [c.kind for c in result.changes] == ["only_b"]
    assert result.changes[0].outcome.model == "atol" and result.unchanged == 1


def test_two_firmwares_of_one_model_in_one_run_stay_apart(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for results, second in ((a, "failed"), (b, "passed")):
        write_result(results, spec="emulator:kf")
        write_result(results, spec="emulator:kf?firmware=2.27.0", firmware="2.27.0", status=second)
    run_a = load_run(a)
    assert len(run_a.outcomes) == 2 and all(key[3] for key in run_a.outcomes)
    result = compare(run_a, load_run(b))
    (change,) = result.changes
    assert change.kind == "fixed" and change.outcome.spec == "emulator:kf?firmware=2.27.0"
    # a run of the model on one device only: compared with the one on the same spec, else firmware
    c = tmp_path / "c"
    write_result(c, spec="emulator:kf", status="failed")
    (change,) = (ch for ch in compare(load_run(c), load_run(b)).changes if ch.kind != "only_b")
    assert change.kind == "fixed" and change.b is not None and change.b.spec == "emulator:kf"
    d = tmp_path / "d"
    write_result(d, spec="lab:bench1", firmware="2.27.0", status="failed")
    (change,) = (ch for ch in compare(load_run(d), load_run(b)).changes if ch.kind != "only_b")
    assert change.kind == "fixed" and change.b is not None and change.b.firmware == "2.27.0"


def test_a_rerun_keeps_the_latest_result(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a, status="failed", start=1_000, stop=2_000)
    write_result(a, status="passed", start=3_000, stop=4_000)
    write_result(b, status="passed")
    run_a = load_run(a)
    assert [o.status for o in run_a.outcomes.values()] == ["passed"]
    assert compare(run_a, load_run(b)).changes == ()


def test_malformed_result_files_are_one_warning_each(tmp_path: Path, capsys) -> None:
    a = tmp_path / "a"
    write_result(a)
    (a / "broken-result.json").write_text('{"name": ', encoding="utf-8")
    (a / "latin-result.json").write_bytes(b"\xff\xfe\x00garbage")
    (a / "list-result.json").write_text("[1, 2]", encoding="utf-8")
    (a / "deep-result.json").write_text("[" * 100_000, encoding="utf-8")
    code, lines, err = _cli(capsys, str(a), str(a))
    assert code == 0 and "Traceback" not in err
    warnings = err.splitlines()
    assert len(warnings) == 2 * 4  # each run reads the dir once
    for name in ("broken-result.json", "latin-result.json", "list-result.json", "deep-result.json"):
        assert sum(name in w for w in warnings) == 2, warnings
    assert "unchanged 1;" in lines[-1]


@pytest.mark.parametrize("case", ["missing", "empty", "only-garbage"])
def test_a_dir_without_results_is_a_usage_error(tmp_path: Path, capsys, case: str) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a)
    if case != "missing":
        b.mkdir()
    if case == "only-garbage":
        (b / "x-result.json").write_text("nope", encoding="utf-8")
    code, lines, err = _cli(capsys, str(a), str(b))
    assert code == 2 and lines == []
    last = err.splitlines()[-1]
    assert last.startswith("kkt-hil: no ") and str(b) in last and "Traceback" not in err


@pytest.mark.parametrize("args", [["--latency-threshold", "lots"], ["--latency-min-ms", "-1"], ["only-one"]])
def test_bad_arguments_are_one_usage_line(tmp_path: Path, capsys, args: list[str]) -> None:
    write_result(tmp_path / "a")
    code = main(["compare", *([str(tmp_path / "a"), str(tmp_path / "a")] if args[0] != "only-one" else []), *args])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _latency_runs(tmp_path: Path, a_ms: list[float], b_ms: list[float]) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a, "t1", latency={"0x23 open shift": a_ms[:2], "0x00 status": [1.0]})
    write_result(a, "t2", latency={"0x23 open shift": a_ms[2:]})
    write_result(b, "t1", latency={"0x23 open shift": b_ms[:2], "0x00 status": [1.0]})
    write_result(b, "t2", latency={"0x23 open shift": b_ms[2:]})
    return a, b


def test_a_slower_command_is_a_regression(tmp_path: Path, capsys) -> None:
    a, b = _latency_runs(tmp_path, [10.0, 12.0, 11.0, 10.5, 11.5, 11.0], [30.0, 31.0, 29.0, 30.5, 29.5, 30.0])
    code, lines, _ = _cli(capsys, str(a), str(b))
    assert code == 1
    (line,) = _changed(lines)
    assert line.startswith("SLOWER") and "0x23 open shift: median 11.0 → 30.0 ms (+173 %, 6/6 samples)" in line
    assert lines[-1].endswith("latency slower 1, faster 0")


def test_a_faster_command_is_noted_only(tmp_path: Path, capsys) -> None:
    a, b = _latency_runs(tmp_path, [30.0, 31.0, 29.0, 30.5, 29.5, 30.0], [10.0, 12.0, 11.0, 10.5, 11.5, 11.0])
    code, lines, _ = _cli(capsys, str(a), str(b))
    assert code == 0 and _changed(lines)[0].startswith("FASTER")


def test_latency_noise_below_the_floor_or_threshold_is_not_flagged(tmp_path: Path, capsys) -> None:
    a, b = _latency_runs(tmp_path, [1.0, 1.2, 1.1, 1.0, 1.2, 1.1], [3.0, 3.1, 2.9, 3.0, 3.1, 2.9])  # +170 %, but 1.9 ms
    code, lines, _ = _cli(capsys, str(a), str(b))
    assert code == 0 and _changed(lines) == []
    code, lines, _ = _cli(capsys, str(a), str(b), "--latency-min-ms", "1")
    assert code == 1 and _changed(lines)[0].startswith("SLOWER")
    code, lines, _ = _cli(capsys, str(a), str(b), "--latency-min-ms", "1", "--latency-threshold", "200%")
    assert code == 0 and _changed(lines) == []


def test_links_point_into_both_reports_and_the_html_is_escaped(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    evil = 'Чек <script>alert("x")</script> & «кавычки»'
    ua = write_result(a, scenario=evil, steps=_steps())
    ub = write_result(b, scenario=evil, steps=_steps(last="<b>шаг</b>", status="broken"), status="broken")
    write_manifest(a, tmp_path / "ra" / "index.html")
    write_manifest(b, tmp_path / "rb" / "index.html")
    page = tmp_path / "out" / "compare.html"
    code, lines, _ = _cli(capsys, str(a), str(b), "--html", str(page))
    assert code == 1
    line = _changed(lines)[0]
    assert f"A {(tmp_path / 'ra' / 'index.html').resolve().as_uri()}#/{report_id(ua)}" in line
    assert f"B {(tmp_path / 'rb' / 'index.html').resolve().as_uri()}#/{report_id(ub)}" in line
    text = page.read_text(encoding="utf-8")
    assert "<script>" not in text and "<b>шаг</b>" not in text
    assert "Чек &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; «кавычки»" in text
    assert f'href="{(tmp_path / "rb" / "index.html").resolve().as_uri()}#/{report_id(ub)}"' in text
    assert "регрессия" in text and "сломан" in text


def test_legacy_results_without_scenario_and_model_title_labels(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write_result(a, scenario="Старый заголовок", legacy=True)
    write_result(b, scenario="Старый заголовок", legacy=True, status="failed")
    code, lines, _ = _cli(capsys, str(a), str(b))
    assert code == 1 and "Старый заголовок [kf 2.26.0]" in _changed(lines)[0]


# ------------------------------------------------------------------------------------ end to end

SELECTION = "test_idle_refusal or test_24_hour_boundary"
DEFECT = "ignore_24h_rule"  # makes test_24_hour_boundary fail (tests/test_detection_matrix.py)


def _statuses(results: Path) -> dict[tuple[str, str], tuple[str, str]]:
    """(fullName, model) → (scenario title, status), read straight from the result files."""
    found = {}
    for path in results.glob("*-result.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        labels = {label["name"]: label["value"] for label in data["labels"]}
        found[(data["fullName"], labels["model"])] = (labels.get("scenario", data["name"]), data["status"])
    return found


def test_end_to_end_a_seeded_defect_is_listed_and_a_run_equals_itself(tmp_path: Path) -> None:
    runs = {}
    for name, spec in (("a", "emulator:kf"), ("b", f"emulator:kf?defects={DEFECT}")):
        results, report = tmp_path / name, tmp_path / f"{name}-report"
        args = ["run", "--kkt", spec, "--results", str(results), "--report", str(report), "-q", "-p", "no:randomly"]
        proc = run_cli(*args, "-k", SELECTION, cwd=tmp_path, timeout=120)
        assert proc.returncode in (0, 1), proc.stdout + proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[-2:] == [f"matrix: {name}-report/matrix.html", f"report: {name}-report/index.html"], lines
        assert (report / "matrix.html").is_file() and json.loads((results / "run.json").read_text())["report"]
        runs[name] = _statuses(results)
    changed = {runs["a"][k][0] for k in runs["a"].keys() | runs["b"].keys() if runs["a"].get(k) != runs["b"].get(k)}
    assert changed, runs

    proc = run_cli("compare", "a", "b", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # response times on a busy host are noise: only the scenario lines are checked here
    listed = [line for line in _changed(proc.stdout.splitlines()) if not line.startswith(("SLOWER", "FASTER"))]
    titles = {title for title, _ in runs["a"].values()}
    assert {t for t in titles if any(f" {t} [" in line for line in listed)} == changed
    assert len(listed) == len(changed) and all(line.startswith("REGRESSION") for line in listed)
    assert all(re.search(r"A file://\S+#/[0-9a-f]{32}  B file://\S+#/[0-9a-f]{32}$", line) for line in listed)

    proc = run_cli("compare", "a", "a", cwd=tmp_path)
    assert proc.returncode == 0 and _changed(proc.stdout.splitlines()) == [], proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("compare: regressions 0,")


def test_load_run_warns_on_the_given_stream(tmp_path: Path) -> None:
    write_result(tmp_path)
    (tmp_path / "bad-result.json").write_text("{", encoding="utf-8")
    stream = io.StringIO()
    run = load_run(tmp_path, stream=stream)
    assert len(run.outcomes) == 1 and stream.getvalue().count("\n") == 1 and "bad-result.json" in stream.getvalue()


def test_latency_over_too_few_answers_is_not_flagged(tmp_path: Path, capsys) -> None:
    a, b = _latency_runs(tmp_path, [10.0, 12.0, 11.0], [30.0, 31.0, 29.0])  # 3 answers a run: noise
    code, lines, _ = _cli(capsys, str(a), str(b))
    assert code == 0 and not any(line.startswith(("SLOWER", "FASTER")) for line in lines)
    code, lines, _ = _cli(capsys, str(a), str(b), "--latency-min-samples", "3")
    assert code == 1 and any(line.startswith("SLOWER") for line in lines)


def test_latency_compares_only_scenarios_both_runs_ran(tmp_path: Path, capsys) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    fast, slow = [1.0, 1.1, 0.9, 1.0, 1.2, 1.0], [30.0, 31.0, 29.0, 30.0, 30.5, 29.5]
    write_result(a, "t1", latency={"0x23 open shift": fast})
    write_result(b, "t1", latency={"0x23 open shift": fast})
    write_result(b, "t_only_in_b", latency={"0x23 open shift": slow})  # another scenario: not a firmware's speed
    code, lines, _ = _cli(capsys, str(a), str(b))
    assert not any(line.startswith(("SLOWER", "FASTER")) for line in lines), lines
    assert code == 0
