"""Allure results of several runs or hosts merged into one report: ``kkt-hil report --results A
--results B``.  Every result names its host («Хост», from ``$KKT_HIL_HOST`` here) and register;
no result is lost or counted twice; the release matrix and each run's ``run.json`` know the
merged report; the old one-directory usage works as before."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.report.results import load_run, read_manifest

from .cli_helpers import assert_clean_failure, run_cli
from .scenario_runs import scenarios_command

ROOT = Path(__file__).resolve().parents[1]
SUBSET = "idle_refusal or near_end"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same scenarios on the same emulator, run on two (named) hosts."""
    found = {}
    for host in ("host-a", "host-b"):
        results = tmp_path_factory.mktemp(host)
        subprocess.run(
            scenarios_command("-p", "no:cacheprovider", "-k", SUBSET, "--kkt", "emulator:kf", f"--alluredir={results}"),
            cwd=ROOT,
            env={**os.environ, "KKT_HIL_HOST": host},
            capture_output=True,
            timeout=180,
            check=True,
        )
        found[host] = results
    return found


def _uuids(results: Path) -> set[str]:
    return {json.loads(p.read_text(encoding="utf-8"))["uuid"] for p in results.glob("*-result.json")}


def _report_data(index: Path) -> dict[str, Any]:
    """The data the single-file report embeds: ``d("path", "<base64 JSON>")``."""
    text = index.read_text(encoding="utf-8")
    found = re.findall(r'd\("((?:data|widgets)/[^"]+\.json)","([^"]*)"\)', text)  # not the attachments
    return {name: json.loads(base64.b64decode(b64)) for name, b64 in found}


def _host(result: dict[str, Any]) -> str:
    return next(p["value"] for p in result["parameters"] if p["name"] == "Хост")


def test_results_name_their_host(runs: dict[str, Path]) -> None:
    for host, results in runs.items():
        run = load_run(results)
        assert run.hosts == (host,) and len(run.outcomes) == 2
        for path in results.glob("*-result.json"):
            data = json.loads(path.read_text(encoding="utf-8"))
            assert {"name": "Хост", "value": host, "excluded": True} in data["parameters"]


def test_two_hosts_merge_into_one_report(runs: dict[str, Path], tmp_path: Path) -> None:
    a, b = runs["host-a"], runs["host-b"]
    out = run_cli(
        "report", "--results", str(a), "--results", str(b), "--report", str(tmp_path / "merged"), cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    index = tmp_path / "merged" / "index.html"
    assert out.stdout.splitlines()[-1] == "report: merged/index.html"  # as seen from the working directory
    data = _report_data(index)
    results = [v for k, v in data.items() if k.startswith("data/test-results/")]
    uuids = _uuids(a) | _uuids(b)
    assert len(uuids) == 4  # two scenarios on two hosts
    expected = {hashlib.md5(u.encode(), usedforsecurity=False).hexdigest() for u in uuids}
    assert sorted(r["id"] for r in results) == sorted(expected)  # none lost, none twice
    assert sorted(_host(r) for r in results) == ["host-a", "host-a", "host-b", "host-b"]
    assert not any(r.get("isRetry") for r in results)  # one scenario on two hosts: two results, not a retry
    for result in results:
        devices = {p["name"]: p["value"] for p in result["parameters"]}
        assert devices["Устройство"] == "emulator:kf" and devices["ККТ"].startswith("Касса Ф ")
    environment = data["widgets/allure_environment.json"]
    assert "host-a" in json.dumps(environment, ensure_ascii=False) and "host-b" in json.dumps(environment)
    # each run knows the merged report, and the other run in it
    assert read_manifest(a).report == index.resolve() and read_manifest(a).merged_with == (b.resolve(),)
    assert read_manifest(b).merged_with == (a.resolve(),)
    matrix = (tmp_path / "merged" / "matrix.html").read_text(encoding="utf-8")
    assert "<br>host-a</th>" in matrix and "<br>host-b</th>" in matrix  # two columns, told apart by host


def test_the_old_usage_and_a_result_given_twice(runs: dict[str, Path], tmp_path: Path) -> None:
    a = runs["host-a"]
    out = run_cli("report", str(a), "--output", str(tmp_path / "one"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    results = [
        v for k, v in _report_data(tmp_path / "one" / "index.html").items() if k.startswith("data/test-results/")
    ]
    assert len(results) == 2 and {_host(r) for r in results} == {"host-a"}
    assert read_manifest(a).merged_with == ()
    twice = run_cli("report", str(a), "--results", str(a), "--output", str(tmp_path / "x"), cwd=tmp_path)
    assert "is given twice" in assert_clean_failure(twice, 2)
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    copied = run_cli(
        "report", "--results", str(a), "--results", str(copy), "--report", str(tmp_path / "y"), cwd=tmp_path
    )
    assert "the same run given twice, or a copy of it" in assert_clean_failure(copied, 2)


def test_two_runs_of_one_host_stay_two_runs(runs: dict[str, Path], tmp_path: Path) -> None:
    """Firmware A and B on one lab host: merged, each result keeps its run (the directory) in «Хост»,
    which counts in the history id, so Allure never files one run's result as a retry of the other."""
    from harness.report.merge import merge_results

    second = tmp_path / "run-b"
    second.mkdir()
    for path in runs["host-b"].glob("*-result.json"):  # the other run, as if host-a had run it
        data = json.loads(path.read_text(encoding="utf-8"))
        data["uuid"] = "b" + data["uuid"][1:]
        for item in data["parameters"]:
            if item["name"] == "Хост":
                item["value"] = "host-a"
        (second / f"{data['uuid']}-result.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    merged = merge_results([runs["host-a"], second], tmp_path / "staged")
    assert merged.results == 4 and merged.hosts == ("host-a",)
    staged = [json.loads(p.read_text(encoding="utf-8")) for p in (tmp_path / "staged").glob("*-result.json")]
    labels = sorted(_host(r) for r in staged)
    assert labels == sorted([f"host-a ({runs['host-a'].name})"] * 2 + ["host-a (run-b)"] * 2), labels
    for result in staged:
        (host,) = [p for p in result["parameters"] if p["name"] == "Хост"]
        assert not host.get("excluded"), host  # counts in the history id of the merged report
