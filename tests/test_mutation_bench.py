"""benchmarks/mutation.py: reading mutmut's verdicts and the score arithmetic, on synthetic input (no mutmut run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import mutation as bench  # benchmarks/ is no package: its scripts import each other by bare name

F = "devices.dreamkas.fisgo.xǁFisGoǁ_receive__mutmut_"


def test_status_of_follows_mutmut_exit_codes():
    assert bench.status_of(1) == "killed"
    assert bench.status_of(3) == "killed"
    assert bench.status_of(0) == "survived"
    assert bench.status_of(33) == "no tests"
    assert bench.status_of(-24) == "timeout"
    assert bench.status_of(36) == "timeout"
    assert bench.status_of(None) == "not checked"
    assert bench.status_of(99) == "suspicious"  # mutmut's default for an unknown code


def test_mutmut_table_matches_the_pinned_mutmut():
    stats = pytest.importorskip("mutmut.stats")
    for code, status in bench.STATUS_BY_EXIT_CODE.items():
        assert stats.status_by_exit_code[code] == status


def test_tally_counts_and_score():
    codes = {F + "1": 1, F + "2": 1, F + "3": 0, F + "4": -24, F + "5": 33, F + "6": 35, F + "7": None, F + "8": 0}
    t = bench.tally(codes)
    assert t.counts == {
        "killed": 2,
        "survived": 2,
        "timeout": 1,
        "no tests": 1,
        "suspicious": 1,
        "not checked": 1,
        "other": 0,
    }
    assert t.total == 8
    assert t.score == pytest.approx(25.0)
    assert t.detected == pytest.approx(37.5)  # the timeout counts as caught
    assert t.survivors == [F + "3", F + "8"]


def test_equivalent_mutants_leave_the_denominator():
    codes = {F + "1": 1, F + "2": 0, F + "3": 0, F + "4": 1}
    t = bench.tally(codes, equivalent={F + "3", F + "4", "devices.other.x_f__mutmut_1"})
    assert t.equivalent == 2
    assert t.total == 4
    assert t.score == pytest.approx(50.0)  # 1 killed of 4 - 2 listed
    assert t.survivors == [F + "2"]
    assert t.equivalent_killed == [F + "4"]  # the listing is wrong: a scenario tells it apart


def test_empty_and_all_equivalent_have_no_score():
    assert bench.tally({}).score is None
    assert bench.tally({F + "1": 0}, equivalent=[F + "1"]).score is None


def test_tallies_add_up_per_group():
    a = bench.tally({F + "1": 1, F + "2": 0})
    b = bench.tally({F + "3": 1, F + "4": 1, F + "5": 36})
    total = bench.Tally()
    total.add(a)
    total.add(b)
    assert (total.counts["killed"], total.counts["survived"], total.counts["timeout"], total.total) == (3, 1, 1, 5)
    assert total.score == pytest.approx(60.0)


def test_parse_equivalent():
    text = "# header\n\n" + F + "3  # only the log text differs\n  " + F + "9 # same value #2\n"
    assert bench.parse_equivalent(text) == {F + "3": "only the log text differs", F + "9": "same value #2"}
    with pytest.raises(ValueError, match="line 1"):
        bench.parse_equivalent(F + "3\n")  # a reason is required
    with pytest.raises(ValueError, match="line 2"):
        bench.parse_equivalent("# ok\nname with spaces # why\n")


def test_modules_and_globs_as_mutmut_names_them():
    assert bench.module_of("devices/dreamkas/fisgo.py") == "devices.dreamkas.fisgo"
    assert bench.module_of("devices/atol/emulator/__init__.py") == "devices.atol.emulator"
    assert bench.file_glob("devices/emulator/core.py") == "devices.emulator.core.x*"
    assert bench.group_files("fisgo") == ["devices/dreamkas/fisgo.py"]
    assert "devices/emulator/ofd_link.py" not in bench.group_files("core")  # transport: tests/test_ofd_link.py
    assert bench.suite_env(["core", "fisgo"])["PYTEST_ADDOPTS"].split() == [
        "--kkt=emulator:kf",
    ]
    assert "devices/atol/emulator/__init__.py" in bench.group_files("atol")
    with pytest.raises(ValueError):
        bench.group_files("nope")


def test_read_meta_and_collect(tmp_path):
    meta = tmp_path / "devices" / "dreamkas" / "fisgo.py.meta"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"exit_code_by_key": {F + "1": 1, F + "2": 0}, "durations_by_key": {}}))
    assert bench.read_meta("devices/dreamkas/fisgo.py", tmp_path) == {F + "1": 1, F + "2": 0}
    assert bench.read_meta("devices/emulator/core.py", tmp_path) == {}  # never generated
    results = bench.collect(["fisgo"], {}, tmp_path)
    t = results["fisgo"]["devices/dreamkas/fisgo.py"]
    assert (t.counts["killed"], t.survivors, t.score) == (1, [F + "2"], 50.0)
    lines = bench.report_lines(results)
    assert any(line.startswith("== fisgo") and line.rstrip().endswith("50.0%") for line in lines)
    assert "survivors in devices/dreamkas/fisgo.py (1):" in lines
    assert f"    {F}2" in lines


def test_probe_problems(tmp_path):
    mutants = tmp_path / "mutants"
    good = mutants / "devices" / "dreamkas" / "fisgo.py"
    good.parent.mkdir(parents=True)
    good.write_text("x = 1  # type: ignore # mutmut generated\n")
    plain = tmp_path / "devices" / "emulator" / "core.py"
    plain.parent.mkdir(parents=True)
    plain.write_text("x = 1\n")
    unmutated_copy = mutants / "devices" / "emulator" / "clock.py"
    unmutated_copy.parent.mkdir(parents=True)
    unmutated_copy.write_text("x = 1\n")
    imported = {
        "devices.dreamkas.fisgo": str(good),
        "devices.emulator.core": str(plain),
        "devices.emulator.clock": str(unmutated_copy),
    }
    paths = ["devices/dreamkas/fisgo.py", "devices/emulator/core.py", "devices/emulator/clock.py"]
    problems = bench.probe_problems(imported, [*paths, "devices/emulator/rules.py"], mutants)
    assert len(problems) == 3
    assert "not from" in problems[0] and "devices.emulator.core" in problems[0]
    assert "no mutmut trampolines" in problems[1]
    assert "not imported" in problems[2]
    assert bench.probe_problems(imported, paths[:1], mutants) == []


def test_diff_summary():
    diff = (
        "--- devices/dreamkas/fisgo.py\n+++ devices/dreamkas/fisgo.py\n@@ -1,3 +1,3 @@\n"
        '     if x:\n-        log("hub", msg)\n+        log(None, msg)\n'
    )
    assert bench.diff_summary(diff) == 'log("hub", msg)  →  log(None, msg)'
    assert len(bench.diff_summary(diff, limit=10)) == 10


def test_log_tail_drops_the_spinner():
    text = "⠋ Generating mutants\r⠙ Generating mutants\n    done\nFAILED: Unable to force test failures\n"
    assert bench.log_tail(text) == "    done\nFAILED: Unable to force test failures"


DECORATED = """
def locked(f):
    return f


def handles(code):
    return lambda f: f


class Core:
    @locked
    def total(self, a, b):
        return a + b

    @handles(0x10)
    def start(self):
        return 1

    @property
    def kept(self):
        return 2 + 3
"""


def test_patched_mutmut_mutates_locked_and_handles_only(monkeypatch):
    fm = pytest.importorskip("mutmut.mutation.file_mutation")
    monkeypatch.setattr(fm.MutationVisitor, "_skip_node_and_children", fm.MutationVisitor._skip_node_and_children)
    monkeypatch.setattr(fm, "function_trampoline_arrangement", fm.function_trampoline_arrangement)

    def methods(names):
        return {n.split("__mutmut_")[0] for n in names if "Core" in n}

    assert methods(fm.mutate_file_contents("core.py", DECORATED, None, None).mutant_names) == set()  # mutmut alone
    bench.patch_mutmut()
    mutated = fm.mutate_file_contents("core.py", DECORATED, None, None)
    assert methods(mutated.mutant_names) == {"xǁCoreǁtotal", "xǁCoreǁstart"}  # @property stays unmutated
    code = mutated.code
    assert code.count("@locked") == 1 and code.count("@handles(0x10)") == 1  # on the trampolines only
    assert "@locked\n    @_mutmut_mutated(" in code
    assert "@handles(0x10)\n    @_mutmut_mutated(" in code
