"""The release matrix: one self-contained HTML page over one or more runs of the suite.

Rows are the scenarios, grouped by feature (each feature's section carries the anchor that the
results' «Матрица сценариев» link points at, else a slug of the feature title); columns are the
registers the runs tested (model, firmware and, where two columns would read the same, the device
spec or the results directory).  A cell is the scenario's outcome there, linked to its page in
the run's Allure report when the run's ``run.json`` names one.  Below: per column, how fast the
register answered each command.  No script, no network: the page opens from disk or a CI
artifact.
"""

from __future__ import annotations

import html
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from harness import families
from harness.errors import HarnessError

from .results import STATUS_MARK, STATUS_WORD, STATUSES, Outcome, Run, slug

__all__ = ["MATRIX_FILE", "Column", "Grid", "columns", "grid", "render_matrix", "report_base", "write_matrix"]

MATRIX_FILE = "matrix.html"
_TOOLTIP_CHARS = 300

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
th{background:#f3f3f3;text-align:left}
thead th{text-align:center}
tr.feature th{background:#e8eef7;font-size:1.05em}
td.cell{text-align:center;font-weight:bold;min-width:4em}
td.cell a{text-decoration:none;color:inherit;display:block}
.passed{background:#e3f6e3;color:#1a7f37}.failed{background:#fde2e2;color:#cf222e}
.broken{background:#fff1c2;color:#9a6700}.skipped{background:#f1f1f1;color:#666}
.none{color:#bbb}.muted{color:#777;font-weight:normal;font-size:.9em}
td.num{text-align:right}
.latency{display:flex;flex-wrap:wrap;gap:0 2em;align-items:flex-start}
"""


@dataclass(frozen=True, order=True)
class Column:
    """One register in one run."""

    run: int  # index into the runs
    model_title: str
    firmware: str
    spec: str
    model: str


@dataclass(frozen=True)
class Grid:
    """Scenarios × columns: the cells, the feature sections in order, the column labels."""

    columns: tuple[Column, ...]
    labels: dict[Column, tuple[str, ...]]  # header lines of each column
    sections: tuple[tuple[str, str, tuple[str, ...]], ...]  # (feature, anchor, row full names)
    titles: dict[str, str]  # row full name → scenario title
    cells: dict[tuple[str, Column], Outcome]


def _column(index: int, outcome: Outcome) -> Column:
    return Column(index, outcome.model_title, outcome.firmware, outcome.spec, outcome.model)


def _catalogue_order(column: Column) -> tuple[int, int, str, str, str]:
    """Runs in the order given; inside a run, the models as the catalogue lists them (kf, dkf,
    start, atol …), then firmware and spec."""
    try:
        order = families.model_ids()
    except HarnessError:  # a broken family entry point: the page is still built, alphabetically
        order = ()
    index = order.index(column.model) if column.model in order else len(order)
    return (column.run, index, column.model_title, column.firmware, column.spec)


def columns(runs: Sequence[Run]) -> dict[Column, tuple[str, ...]]:
    """Every column of ``runs`` with its header lines: the register, then the spec, the host and the
    results directory only where two columns would otherwise read the same."""
    found = sorted({_column(i, o) for i, run in enumerate(runs) for o in run.outcomes.values()}, key=_catalogue_order)
    labels: dict[Column, tuple[str, ...]] = {}
    for column in found:
        device = " ".join(p for p in (column.model_title, column.firmware) if p) or "?"
        labels[column] = (device,)
    for step in range(3):  # then the spec, the host (where it tells them apart), the results directory
        groups: dict[tuple[str, ...], list[Column]] = {}
        for column, label in labels.items():
            groups.setdefault(label, []).append(column)
        for label, same in groups.items():
            if len(same) < 2:
                continue
            extras = [_extra(step, column, runs[column.run]) for column in same]
            if step == 1 and len(set(extras)) == 1:
                continue  # one host: it says nothing here
            for column, extra in zip(same, extras, strict=True):
                labels[column] = (*label, extra)
    return labels


def _extra(step: int, column: Column, run: Run) -> str:
    if step == 0:
        return column.spec
    return ", ".join(run.hosts) if step == 1 else run.path.name or str(column.run + 1)


def grid(runs: Sequence[Run]) -> Grid:
    labels = columns(runs)
    cells: dict[tuple[str, Column], Outcome] = {}
    titles: dict[str, str] = {}
    features: dict[str, tuple[str, set[str]]] = {}
    for index, run in enumerate(runs):
        for outcome in run.outcomes.values():
            row = outcome.full_name
            titles.setdefault(row, outcome.scenario)
            anchor, rows = features.setdefault(outcome.feature, (outcome.feature_anchor, set()))
            if not anchor and outcome.feature_anchor:
                features[outcome.feature] = (outcome.feature_anchor, rows)
            rows.add(row)
            cell = (row, _column(index, outcome))
            kept = cells.get(cell)
            if kept is None or kept.stop <= outcome.stop:  # one run, two fault schedules: the latest
                cells[cell] = outcome
    sections, used = [], set()
    claimed: set[str] = set()
    for feature in sorted(features, key=lambda f: (f == "", f)):
        anchor, rows = features[feature]
        anchor = anchor or slug(feature or "Прочее")
        base, n = anchor, 2
        while anchor in used:
            anchor, n = f"{base}-{n}", n + 1
        used.add(anchor)
        mine = tuple(sorted(rows - claimed))  # a row sits in its first feature only
        claimed |= rows
        sections.append((feature or "Прочее", anchor, mine))
    return Grid(tuple(labels), labels, tuple(sections), titles, cells)


# ------------------------------------------------------------------------------------ HTML


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _tooltip(outcome: Outcome) -> str:
    word = STATUS_WORD.get(outcome.status, outcome.status)
    message = " ".join(outcome.message.split())
    if len(message) > _TOOLTIP_CHARS:
        message = message[: _TOOLTIP_CHARS - 1] + "…"
    return f"{word}: {message}" if message else word


def report_base(run: Run, output: Path | None) -> str | None:
    """The URL of ``run``'s report as seen from the page at ``output``: relative where it can be
    (so a report directory moved as a whole keeps its links), else ``file://``."""
    report = run.manifest.report
    if report is None:
        return None
    if output is None:
        return report.as_uri()
    try:
        relative = os.path.relpath(report, Path(output).resolve().parent)
    except ValueError:  # another drive (Windows)
        return report.as_uri()
    return quote(Path(relative).as_posix())


def _cell(outcome: Outcome | None, base: str | None) -> str:
    if outcome is None:
        return '<td class="cell none" title="не запускался">·</td>'
    mark = _e(STATUS_MARK.get(outcome.status, "?"))
    status = _e(outcome.status)
    body = f'<a href="{_e(f"{base}#/{outcome.report_id}")}">{mark}</a>' if base else mark
    return f'<td class="cell {status}" title="{_e(_tooltip(outcome))}">{body}</td>'


def _latency_tables(runs: Sequence[Run], g: Grid) -> list[str]:
    parts: list[str] = []
    for column in g.columns:
        samples: dict[str, list[float]] = {}
        for (_, col), outcome in g.cells.items():
            if col == column:
                for command, times in outcome.latency.items():
                    samples.setdefault(command, []).extend(times)
        if not samples:
            continue
        parts.append(
            f"<div><h3>{_e(' · '.join(g.labels[column]))}</h3><table>"
            "<tr><th>Команда</th><th>Число</th><th>Медиана, мс</th><th>Максимум, мс</th></tr>"
            + "".join(
                f"<tr><td>{_e(cmd)}</td><td class='num'>{len(times)}</td>"
                f"<td class='num'>{statistics.median(times):.1f}</td><td class='num'>{max(times):.1f}</td></tr>"
                for cmd, times in sorted(samples.items())
            )
            + "</table></div>"
        )
    if parts:
        return ['<div class="latency">', *parts, "</div>"]
    return ["<p class='muted'>Нет данных: в результатах нет вложения «Время ответа ККТ (мс)».</p>"]


def _runs_table(runs: Sequence[Run], output: Path | None) -> str:
    rows = []
    for index, run in enumerate(runs, 1):
        base = report_base(run, output)
        report = f'<a href="{_e(base)}">{_e(run.manifest.report)}</a>' if base else "<span class='muted'>нет</span>"
        specs = ", ".join(run.manifest.specs) or ", ".join(sorted({o.spec for o in run.outcomes.values() if o.spec}))
        rows.append(
            f"<tr><td>{index}</td><td>{_e(run.path)}</td><td>{_e(', '.join(run.hosts))}</td><td>{_e(specs)}</td>"
            f"<td>{_e(run.manifest.finished)}</td><td>{report}</td></tr>"
        )
    head = "<tr><th>№</th><th>Результаты</th><th>Хост</th><th>ККТ</th><th>Завершён</th><th>Отчёт Allure</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def render_matrix(runs: Sequence[Run], *, output: Path | None = None, generated: datetime | None = None) -> str:
    """The page; links into each run's report are relative to ``output`` (the page's path)."""
    g = grid(runs)
    bases = [report_base(run, output) for run in runs]
    when = (generated or datetime.now()).isoformat(sep=" ", timespec="seconds")
    width = len(g.columns) + 1
    head = "".join(f"<th>{'<br>'.join(_e(line) for line in g.labels[c])}</th>" for c in g.columns)
    body: list[str] = []
    for feature, anchor, rows in g.sections:
        body.append(f'<tbody id="{_e(anchor)}"><tr class="feature"><th colspan="{width}">{_e(feature)}</th></tr>')
        for row in rows:
            cells = "".join(_cell(g.cells.get((row, c)), bases[c.run]) for c in g.columns)
            body.append(f"<tr><td>{_e(g.titles[row])}<br><span class='muted'>{_e(row)}</span></td>{cells}</tr>")
        body.append("</tbody>")
    totals = []
    for status in STATUSES:
        counts = "".join(
            f"<td class='cell {status}'>{sum(1 for (_, col), o in g.cells.items() if col == c and o.status == status)}"
            "</td>"
            for c in g.columns
        )
        totals.append(f"<tr><th>{_e(STATUS_MARK[status])} {_e(STATUS_WORD[status])}</th>{counts}</tr>")
    legend = " · ".join(f"{STATUS_MARK[s]} {STATUS_WORD[s]}" for s in STATUSES) + " · · не запускался"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="ru"><head><meta charset="utf-8"><title>Матрица выпуска</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>Матрица выпуска</h1>",
        f"<p class='muted'>Создано {_e(when)}. {_e(legend)}. Ячейка ведёт на страницу теста в отчёте Allure.</p>",
        _runs_table(runs, output),
        f"<table><thead><tr><th>Сценарий</th>{head}</tr></thead>",
        *body,
        f"<tfoot><tr class='feature'><th colspan='{width}'>Итого</th></tr>{''.join(totals)}</tfoot></table>",
        "<h2>Время ответа ККТ</h2>",
        *_latency_tables(runs, g),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_matrix(runs: Sequence[Run], output: Path) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_matrix(runs, output=output), encoding="utf-8")
    return output
