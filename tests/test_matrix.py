"""harness.report.matrix and ``kkt-hil matrix``: the release matrix page over synthetic results."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from harness.cli import main
from harness.report.matrix import render_matrix
from harness.report.results import load_run

from .results_fixtures import ANCHOR_A, report_id, write_manifest, write_result


class _Page(HTMLParser):
    """Ids, links, and the cells (class, title, text) of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.cells: list[tuple[str, str, str]] = []
        self.tags: set[str] = set()
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a":
            self.hrefs.append(a.get("href", ""))
        if tag == "td" and "cell" in a.get("class", "").split():
            self._cell = [a["class"], a.get("title", ""), ""]

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell[2] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append((self._cell[0], self._cell[1], self._cell[2]))
            self._cell = None


def _page(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _two_models(results: Path) -> dict[str, str]:
    uuids = {
        "kf-pass": write_result(results, "test_idle_refusal"),
        "kf-skip": write_result(results, "test_cover", status="skipped", message="Skipped: нет оператора <tty>"),
        "atol-fail": write_result(
            results, "test_idle_refusal", model="atol", model_title="АТОЛ 30Ф", firmware="5.8.0", status="failed"
        ),
        "atol-broken": write_result(
            results,
            "test_queue",
            module="scenarios.test_unsent_documents",
            feature="B. Неотправленные документы",
            anchor=None,
            model="atol",
            model_title="АТОЛ 30Ф",
            firmware="5.8.0",
            status="broken",
            latency={"A6h register": [40.0, 50.0, 60.0]},
        ),
    }
    return uuids


def test_sections_carry_the_anchors_of_the_results_links(tmp_path: Path) -> None:
    _two_models(tmp_path / "r")
    page = _page(render_matrix([load_run(tmp_path / "r")]))
    assert ANCHOR_A in page.ids
    assert "b-неотправленные-документы" in page.ids  # no «Матрица сценариев» link: a slug of the feature
    assert len(page.ids) == len(set(page.ids))


def test_cells_marks_tooltips_and_totals(tmp_path: Path) -> None:
    _two_models(tmp_path / "r")
    text = render_matrix([load_run(tmp_path / "r")])
    page = _page(text)
    body = page.cells[: 3 * 2]  # three scenarios × two columns (Касса Ф 2.26.0, АТОЛ 30Ф 5.8.0)
    marks = [(cls.split()[1], mark) for cls, _, mark in body]
    assert ("passed", "✓") in marks and ("failed", "✗") in marks and ("broken", "!") in marks
    assert ("skipped", "–") in marks and ("none", "·") in marks
    skipped = next(title for cls, title, _ in body if "skipped" in cls)
    assert skipped == "пропущен: Skipped: нет оператора <tty>"  # unescaped by the parser: it was escaped
    assert "нет оператора &lt;tty&gt;" in text
    totals = page.cells[3 * 2 :]
    assert [int(mark) for _, _, mark in totals] == [
        1,
        0,
        0,
        1,
        0,
        1,
        1,
        0,
    ]  # per status, per column (kf, then atol: the catalogue order)
    assert "Матрица выпуска" in text and "Сценарий" in text and "пропущен" in text and "сломан" in text


def test_cells_link_into_the_report_relative_to_the_page(tmp_path: Path) -> None:
    results, report = tmp_path / "r", tmp_path / "report" / "index.html"
    uuids = _two_models(results)
    write_manifest(results, report)
    text = render_matrix([load_run(results)], output=tmp_path / "report" / "matrix.html")
    hrefs = set(_page(text).hrefs)
    assert {f"index.html#/{report_id(u)}" for u in uuids.values()} <= hrefs
    elsewhere = render_matrix([load_run(results)], output=tmp_path / "release" / "matrix.html")
    assert f"../report/index.html#/{report_id(uuids['kf-pass'])}" in _page(elsewhere).hrefs
    without = render_matrix([load_run(results)], output=tmp_path / "x.html")
    assert without.count("#/") == len(uuids)
    (results / "run.json").unlink()
    assert "#/" not in render_matrix([load_run(results)])  # no manifest: no report to link to


def test_latency_per_column(tmp_path: Path) -> None:
    _two_models(tmp_path / "r")
    text = render_matrix([load_run(tmp_path / "r")])
    assert "Время ответа ККТ" in text
    row = re.search(r"<td>A6h register</td>(.*?)</tr>", text)
    assert row is not None
    assert re.findall(r">([\d.]+)</td>", row.group(1)) == ["3", "50.0", "60.0"]


def test_columns_of_several_runs_are_told_apart(tmp_path: Path) -> None:
    for name, spec in (("one", "emulator:kf"), ("two", "emulator:kf?defects=ignore_24h_rule")):
        write_result(tmp_path / name, spec=spec)
    write_result(tmp_path / "three", spec="emulator:kf")
    runs = [load_run(tmp_path / n) for n in ("one", "two", "three")]
    heads = re.findall(r"<th>(Касса Ф 2\.26\.0[^<]*(?:<br>[^<]*)*)</th>", render_matrix(runs))
    assert heads == [
        "Касса Ф 2.26.0<br>emulator:kf<br>one",
        "Касса Ф 2.26.0<br>emulator:kf?defects=ignore_24h_rule",
        "Касса Ф 2.26.0<br>emulator:kf<br>three",
    ]


def test_everything_is_escaped_and_self_contained(tmp_path: Path) -> None:
    write_result(
        tmp_path / "r",
        scenario='<img src=x onerror="alert(1)">',
        feature="<b>F</b>",
        anchor='x" onmouseover="y',
        model_title="<i>M</i>",
        status="failed",
        message="<script>boom</script>",
    )
    text = render_matrix([load_run(tmp_path / "r")])
    page = _page(text)
    assert page.tags <= {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "table", "thead"} | {
        "tbody",
        "tfoot",
        "tr",
        "th",
        "td",
        "span",
        "br",
        "a",
    }
    assert 'x" onmouseover="y' in page.ids
    assert "<script" not in text and "http://" not in text and "https://" not in text


def test_cli_writes_the_page(tmp_path: Path, capsys) -> None:
    _two_models(tmp_path / "r")
    out = tmp_path / "deep" / "m.html"
    assert main(["matrix", str(tmp_path / "r"), "--output", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"matrix: {out}"]
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert main(["matrix", str(tmp_path / "nothing"), "--output", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"kkt-hil: no results directory {tmp_path / 'nothing'}"


def test_cli_help_names_the_default_output(capsys) -> None:
    try:
        main(["matrix", "--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "reports/allure-report/matrix.html" in capsys.readouterr().out
