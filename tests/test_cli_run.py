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
