"""The summary ``kkt-hil run`` prints at its end: scenario × register, one mark a cell, the counts.

::

    scenario                                                       atol  kf
    Без бумаги ККТ отказывает в новом чеке, ничего не записывая…   ✓     ✓
    Смена длиннее 24 часов: чек отклоняется                        –     ✗
    atol = АТОЛ 30Ф 5.8.0 (emulator:atol)
    kf   = Касса Ф 2.26.0 (emulator:kf)
    passed 3, failed 1, broken 0, skipped 1 (5 results)

The caller prints ``matrix: PATH`` and then ``report: PATH`` (the contract's last line) after it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .matrix import Column, grid
from .results import STATUS_MARK, STATUSES, Run

__all__ = ["WIDTH", "counts_line", "display_path", "render_summary"]

WIDTH = 100
_MIN_TITLE = 24
_GAP = "  "


def _short_labels(columns: Sequence[Column]) -> dict[Column, str]:
    """The model id, then ``id@firmware``, then a number where two columns would read the same."""
    labels = {c: c.model or c.model_title or "?" for c in columns}
    for widen in (lambda c: f"{c.model}@{c.firmware}", None):
        seen: dict[str, int] = {}
        for label in labels.values():
            seen[label] = seen.get(label, 0) + 1
        numbered = 0
        for column in columns:
            if seen[labels[column]] > 1:
                numbered += 1
                labels[column] = widen(column) if widen else f"{labels[column]}#{numbered}"
    return labels


def _fit(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def counts_line(run: Run) -> str:
    counts = dict.fromkeys(STATUSES, 0)
    for outcome in run.outcomes.values():
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    listed = ", ".join(f"{status} {counts[status]}" for status in STATUSES)
    return f"{listed} ({len(run.outcomes)} results)"


def render_summary(run: Run, width: int = WIDTH) -> list[str]:
    """The grid lines, the legend of the columns (one line each), the counts line."""
    g = grid([run])
    labels = _short_labels(g.columns)
    widths = [max(len(labels[c]), 1) for c in g.columns]
    title_width = max(_MIN_TITLE, width - sum(w + len(_GAP) for w in widths))
    lines = [("scenario".ljust(title_width) + "".join(_GAP + labels[c] for c in g.columns)).rstrip()]
    for _, _, rows in g.sections:
        for row in rows:
            cells = ""
            for column, cell_width in zip(g.columns, widths, strict=True):
                outcome = g.cells.get((row, column))
                mark = STATUS_MARK.get(outcome.status, "?") if outcome is not None else "·"
                cells += _GAP + mark.ljust(cell_width)
            lines.append((_fit(g.titles[row], title_width).ljust(title_width) + cells).rstrip())
    key_width = max((len(label) for label in labels.values()), default=0)
    for column in g.columns:
        spec = f" ({column.spec})" if column.spec else ""
        lines.append(f"{labels[column].ljust(key_width)} = {g.labels[column][0]}{spec}")
    lines.append(counts_line(run))
    return lines


def display_path(path: Path, cwd: Path | None = None) -> str:
    """``path`` relative to the current directory when it lies under it, else absolute."""
    absolute = Path(os.path.abspath(path))
    here = Path(os.path.abspath(cwd if cwd is not None else Path.cwd()))
    try:
        return str(absolute.relative_to(here))
    except ValueError:
        return str(absolute)
