"""``kkt-hil run``: the report is built from the results this run wrote, wherever pytest was told
to write them (``--results DIR`` or pytest's own ``--alluredir DIR``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .cli_helpers import run_cli

SCENARIO = "test_idle_refusal"


def _result_names(results: Path) -> list[str]:
    return [json.loads(p.read_text(encoding="utf-8"))["fullName"] for p in results.glob("*-result.json")]


@pytest.mark.parametrize("form", ["--results", "--alluredir", "--alluredir="])
def test_run_builds_the_report_from_the_results_it_wrote(tmp_path: Path, form: str) -> None:
    results, html = tmp_path / "res", tmp_path / "html"
    where = [f"{form}{results}"] if form.endswith("=") else [form, str(results)]
    args = ["run", "--kkt", "emulator:kf", "--report", str(html), *where, "-q", "-k", SCENARIO]
    result = run_cli(*args, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    names = _result_names(results)
    assert len(names) == 1 and SCENARIO in names[0], names
    assert not (tmp_path / "reports").exists()  # nothing went to the default directory
    assert result.stdout.splitlines()[-1] == "report: html/index.html"  # under the current directory: relative
    assert (html / "index.html").is_file()


def test_alluredir_without_a_directory_is_one_line(tmp_path: Path) -> None:
    result = run_cli("run", "--kkt", "emulator:kf", "--alluredir", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["kkt-hil: --alluredir needs a directory"], result.stderr


def test_a_results_directory_holding_other_files_is_refused_and_kept(tmp_path: Path) -> None:
    """The run empties its results directory first: `--results .` or `--results /tmp` must not
    delete a user's files."""
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    (tmp_path / "project").mkdir()
    result = run_cli("run", "--kkt", "emulator:kf", "--results", str(tmp_path), "-k", SCENARIO, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds other files than Allure results (notes.txt, project)" in lines[0], lines
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine" and (tmp_path / "project").is_dir()


def test_old_results_are_replaced(tmp_path: Path) -> None:
    results = tmp_path / "res"
    results.mkdir()
    (results / "0000-result.json").write_text("{}", encoding="utf-8")
    (results / "environment.properties").write_text("a=b\n", encoding="utf-8")
    result = run_cli(
        "run",
        "--kkt",
        "emulator:kf",
        "--results",
        str(results),
        "--report",
        str(tmp_path / "html"),
        "-q",
        "-k",
        SCENARIO,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not (results / "0000-result.json").exists() and len(_result_names(results)) == 1


@pytest.mark.parametrize("clock", ["0001-01-01T00:00:00", "2100-01-01T00:00:00", "2021-01-01T00:00:00+03:00"])
def test_an_emulator_clock_the_wire_cannot_carry_is_one_line(tmp_path: Path, clock: str) -> None:
    result = run_cli("emulate", "kf", "--clock", clock, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "in 2000..2099" in lines[0], lines


@pytest.mark.parametrize(
    ("extra", "left_out"),
    [
        ([], True),  # the shipped scenarios: the hypothesis plugin costs every pytest process, and is unused
        (["scenarios/test_no_paper.py"], True),
        (["--hypothesis-seed=1"], False),  # the user asked for it
        (["mine/test_x.py"], False),  # the user's own tests may use it
    ],
)
def test_run_leaves_the_hypothesis_plugin_out_of_the_shipped_scenarios(
    tmp_path: Path, extra: list[str], left_out: bool
) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "test_x.py").write_text("def test_x():\n    pass\n", encoding="utf-8")
    scenarios = Path(__file__).resolve().parents[1] / "scenarios"
    (tmp_path / "scenarios").symlink_to(scenarios)  # a path among the shipped scenarios
    result = run_cli("run", "--kkt", "bogus", "--results", str(tmp_path / "r"), *extra, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr  # the bad spec: no test ran
    first = result.stdout.splitlines()[0]
    assert first.startswith("run: pytest "), first
    assert (" -p no:hypothesispytest " in first) is left_out, first
