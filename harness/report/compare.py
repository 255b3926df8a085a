"""Two runs of the scenario suite compared: which scenarios changed outcome or behaviour, and which
commands got slower.

A scenario of run A is matched with run B by its test (``fullName``), the model and the fault
schedule, so a run on ``emulator:kf`` matches a run on ``emulator:kf?firmware=2.27.0&defects=…``
or on a lab register of the same model.  Where a run holds a scenario on two devices of one model
(two firmwares) the spec joins the key; a result left over on each side is still paired with the
one of the same test and model (on the same spec or firmware where there are several).

The *behaviour* of a scenario is its flattened step list (depth, name, status): the same status
with other steps means the register did something else on the way.  A loopback port or a pty
number in a step name (an error message quoting the hub's address) is not a difference.  A **regression** is a scenario
that passed in A and failed or broke in B, a scenario whose behaviour changed while it fails or
breaks in B, or a command whose median response time grew beyond the thresholds.
"""

from __future__ import annotations

import html
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .results import STATUS_WORD, Outcome, Run, Step

__all__ = [
    "DEFAULT_LATENCY_MIN_MS",
    "DEFAULT_LATENCY_MIN_SAMPLES",
    "DEFAULT_LATENCY_THRESHOLD",
    "Change",
    "Comparison",
    "LatencyChange",
    "compare",
    "render_html",
    "render_text",
]

DEFAULT_LATENCY_MIN_SAMPLES = 5  # per command, in each run
DEFAULT_LATENCY_THRESHOLD = 0.5  # a median 50 % off is worth a look
DEFAULT_LATENCY_MIN_MS = 5.0  # below this, a difference is emulator and scheduler noise
FAILING = ("failed", "broken")

#: kind → (CI tag, what a reader is told), in the order changes are listed
KINDS: dict[str, tuple[str, str]] = {
    "regression": ("REGRESSION", "регрессия"),
    "fixed": ("FIXED", "исправлено"),
    "changed": ("CHANGED", "изменился исход"),
    "behaviour": ("BEHAVIOUR", "изменилось поведение"),
    "only_a": ("ONLY-A", "только в A"),
    "only_b": ("ONLY-B", "только в B"),
}


@dataclass(frozen=True)
class Change:
    kind: str  # a key of KINDS
    a: Outcome | None
    b: Outcome | None
    step: int | None = None  # index of the first differing step (0-based)
    step_a: Step | None = None  # None: A has no step there
    step_b: Step | None = None

    @property
    def outcome(self) -> Outcome:
        found = self.b or self.a
        assert found is not None
        return found

    @property
    def regression(self) -> bool:
        """What a release gate stops on: a failure B has that A did not (passed, skipped or
        another failure before; or a scenario new in B that fails), a scenario that passed in A
        and is not tested in B any more (skipped), or B failing by other steps."""
        if self.kind == "regression":
            return True
        if self.kind == "only_b":
            return self.b is not None and self.b.status in FAILING
        return (
            self.kind == "changed"
            and self.a is not None
            and self.b is not None
            and (self.b.status in FAILING or (self.a.status == "passed" and self.b.status == "skipped"))
        )


@dataclass(frozen=True)
class LatencyChange:
    command: str
    median_a: float
    median_b: float
    count_a: int
    count_b: int

    @property
    def slower(self) -> bool:
        return self.median_b > self.median_a

    @property
    def percent(self) -> float:
        return 100.0 * (self.median_b - self.median_a) / self.median_a if self.median_a else float("inf")


@dataclass(frozen=True)
class Comparison:
    run_a: Run
    run_b: Run
    changes: tuple[Change, ...]
    latency: tuple[LatencyChange, ...]
    unchanged: int

    @property
    def regressed(self) -> bool:
        return any(c.regression for c in self.changes) or any(c.slower for c in self.latency)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(KINDS, 0)
        for change in self.changes:
            counts[change.kind] += 1
        return counts


# ------------------------------------------------------------------------------------ comparing


def _partner(outcome: Outcome, candidates: list[Outcome]) -> Outcome | None:
    """The one of ``candidates`` (same test, model, faults) that ``outcome`` is to be compared
    with: the only one, else the one on the same spec, else the one on the same firmware."""
    if len(candidates) == 1:
        return candidates[0]
    for same in (lambda o: o.spec == outcome.spec, lambda o: o.firmware == outcome.firmware):
        found = [o for o in candidates if same(o)]
        if len(found) == 1:
            return found[0]
    return None


def _pairs(run_a: Run, run_b: Run) -> list[tuple[Outcome | None, Outcome | None]]:
    """Outcomes of A and B matched by key; what is left is matched by (test, model, faults)."""
    pairs: list[tuple[Outcome | None, Outcome | None]] = [
        (o, run_b.outcomes[k]) for k, o in run_a.outcomes.items() if k in run_b.outcomes
    ]
    left_b: dict[tuple[str, str, str], list[Outcome]] = {}
    for key, outcome in run_b.outcomes.items():
        if key not in run_a.outcomes:
            left_b.setdefault(key[:3], []).append(outcome)
    for key, outcome in run_a.outcomes.items():
        if key in run_b.outcomes:
            continue
        candidates = left_b.get(key[:3], [])
        partner = _partner(outcome, candidates)
        if partner is not None:
            candidates.remove(partner)
        pairs.append((outcome, partner))
    pairs += [(None, o) for outcomes in left_b.values() for o in outcomes]
    return pairs


#: what differs from run to run without the register doing anything else: a loopback port picked
#: at random (the hub, the OFD, the control channel), a pseudo-terminal's number
_VOLATILE = (
    (re.compile(r"\b(127\.0\.0\.1|localhost|\[::1\]):\d+"), r"\1:PORT"),
    (re.compile(r"/dev/pts/\d+"), "/dev/pts/N"),
)


def _same(a: Step, b: Step) -> bool:
    if (a.depth, a.status) != (b.depth, b.status):
        return False
    name_a, name_b = a.name, b.name
    for pattern, replacement in _VOLATILE:
        name_a, name_b = pattern.sub(replacement, name_a), pattern.sub(replacement, name_b)
    return name_a == name_b


def first_difference(a: Sequence[Step], b: Sequence[Step]) -> int | None:
    """Index of the first step where ``a`` and ``b`` differ (None when they are the same); loopback
    ports and pty numbers in step names do not count."""
    for index, (step_a, step_b) in enumerate(zip(a, b, strict=False)):
        if not _same(step_a, step_b):
            return index
    return None if len(a) == len(b) else min(len(a), len(b))


def _change(a: Outcome | None, b: Outcome | None) -> Change | None:
    if a is None or b is None:
        return Change("only_b" if a is None else "only_a", a, b)
    index = first_difference(a.steps, b.steps)
    if a.status != b.status:
        if b.status in FAILING or (a.status == "passed" and b.status == "skipped"):
            kind = "regression"  # a new failure (even broken → failed), or no longer tested
        elif a.status in FAILING and b.status == "passed":
            kind = "fixed"
        else:
            kind = "changed"
    elif index is not None:
        kind = "regression" if b.status in FAILING else "behaviour"
    else:
        return None
    if index is None:
        return Change(kind, a, b)
    step_a = a.steps[index] if index < len(a.steps) else None
    step_b = b.steps[index] if index < len(b.steps) else None
    return Change(kind, a, b, index, step_a, step_b)


def _samples(pairs: list[tuple[Outcome | None, Outcome | None]]) -> tuple[dict[str, list[float]], ...]:
    """Response times per model and command, over the scenarios both runs ran (matched pairs
    only), so a run that ran other scenarios, or another model, is not compared with itself."""
    samples_a: dict[str, list[float]] = {}
    samples_b: dict[str, list[float]] = {}
    for a, b in pairs:
        if a is None or b is None:
            continue
        for outcome, samples in ((a, samples_a), (b, samples_b)):
            for command, times in outcome.latency.items():
                samples.setdefault(f"{outcome.model_title or outcome.model}: {command}", []).extend(times)
    return samples_a, samples_b


def _latency(
    pairs: list[tuple[Outcome | None, Outcome | None]], threshold: float, min_ms: float, min_samples: int
) -> list[LatencyChange]:
    samples_a, samples_b = _samples(pairs)
    flagged = []
    for command in sorted(samples_a.keys() & samples_b.keys()):
        if min(len(samples_a[command]), len(samples_b[command])) < min_samples:
            continue  # a median of a sample or two is noise, not a firmware's speed
        median_a, median_b = statistics.median(samples_a[command]), statistics.median(samples_b[command])
        delta = abs(median_b - median_a)
        if delta > threshold * median_a and delta > min_ms:
            flagged.append(LatencyChange(command, median_a, median_b, len(samples_a[command]), len(samples_b[command])))
    return flagged


def _order(change: Change) -> tuple[int, str, str, str]:
    outcome = change.outcome
    return (list(KINDS).index(change.kind), outcome.feature, outcome.scenario, outcome.model)


def compare(
    run_a: Run,
    run_b: Run,
    latency_threshold: float = DEFAULT_LATENCY_THRESHOLD,
    latency_min_ms: float = DEFAULT_LATENCY_MIN_MS,
    latency_min_samples: int = DEFAULT_LATENCY_MIN_SAMPLES,
) -> Comparison:
    """What changed from ``run_a`` to ``run_b`` (regressions first)."""
    changes, unchanged = [], 0
    pairs = _pairs(run_a, run_b)
    for a, b in pairs:
        change = _change(a, b)
        if change is None:
            unchanged += 1
        else:
            changes.append(change)
    changes.sort(key=_order)
    latency = _latency(pairs, latency_threshold, latency_min_ms, latency_min_samples)
    latency.sort(key=lambda c: (not c.slower, c.command))
    return Comparison(run_a, run_b, tuple(changes), tuple(latency), unchanged)


# ------------------------------------------------------------------------------------ text (CI)


def _step_text(step: Step | None) -> str:
    return str(step) if step is not None else "(no step)"


def _devices(change: Change) -> str:
    a, b = change.a, change.b
    if a is not None and b is not None and a.device != b.device:
        return f"{a.device} → {b.device}"
    return change.outcome.device


def _line(change: Change, run_a: Run, run_b: Run) -> str:
    status = "→".join(o.status if o is not None else "absent" for o in (change.a, change.b))
    parts = [f"{KINDS[change.kind][0]:<10} {status:<16} {change.outcome.scenario} [{_devices(change)}]"]
    if change.step is not None:
        parts.append(f"step {change.step + 1}: A {_step_text(change.step_a)} / B {_step_text(change.step_b)}")
    for label, run, outcome in (("A", run_a, change.a), ("B", run_b, change.b)):
        link = run.report_link(outcome) if outcome is not None else None
        if link:
            parts.append(f"{label} {link}")
    return "  ".join(parts)


def _latency_line(change: LatencyChange) -> str:
    tag = "SLOWER" if change.slower else "FASTER"
    return (
        f"{tag:<10} latency          {change.command}: median {change.median_a:.1f} → {change.median_b:.1f} ms "
        f"({change.percent:+.0f} %, {change.count_a}/{change.count_b} samples)"
    )


def counts_line(comparison: Comparison) -> str:
    counts = comparison.counts()
    slower = sum(c.slower for c in comparison.latency)
    return (
        f"compare: regressions {counts['regression']}, fixed {counts['fixed']}, changed {counts['changed']}, "
        f"behaviour {counts['behaviour']}, only in A {counts['only_a']}, only in B {counts['only_b']}, "
        f"unchanged {comparison.unchanged}; latency slower {slower}, faster {len(comparison.latency) - slower}"
    )


def render_text(comparison: Comparison) -> list[str]:
    """One line per changed scenario, one per flagged command, then the counts line."""
    lines = [_line(c, comparison.run_a, comparison.run_b) for c in comparison.changes]
    lines += [_latency_line(c) for c in comparison.latency]
    lines.append(counts_line(comparison))
    return lines


# ------------------------------------------------------------------------------------ HTML (people)

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}
.regression{background:#fde2e2}.fixed{background:#e3f6e3}.only_a,.only_b{background:#f4f4f4}
.passed{color:#1a7f37}.failed{color:#cf222e}.broken{color:#9a6700}.skipped{color:#777}
.muted{color:#777}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _status_cell(outcome: Outcome | None, run: Run) -> str:
    if outcome is None:
        return '<td class="muted">нет</td>'
    word = STATUS_WORD.get(outcome.status, outcome.status)
    title = f' title="{_e(outcome.message)}"' if outcome.message else ""
    text = f'<span class="{_e(outcome.status)}"{title}>{_e(word)}</span>'
    link = run.report_link(outcome)
    if link:
        text = f'<a href="{_e(link)}">{text}</a>'
    return f"<td>{text}<br><span class='muted'>{_e(outcome.device)}</span></td>"


def _step_html(index: int | None, step: Step | None) -> str:
    if index is None:
        return ""
    if step is None:
        return '<span class="muted">(нет шага)</span>'
    word = STATUS_WORD.get(step.status, step.status)
    return f'{_e(step.name)} — <span class="{_e(step.status)}">{_e(word)}</span>'


def _run_rows(comparison: Comparison) -> Iterable[str]:
    for label, run in (("A", comparison.run_a), ("B", comparison.run_b)):
        report = run.manifest.report
        where = f'<a href="{_e(report.as_uri())}">{_e(report)}</a>' if report else '<span class="muted">нет</span>'
        specs = ", ".join(run.manifest.specs) or ", ".join(sorted({o.spec for o in run.outcomes.values()}))
        yield (
            f"<tr><th>{label}</th><td>{_e(run.path)}</td><td>{_e(specs)}</td>"
            f"<td>{_e(run.manifest.finished)}</td><td>{where}</td></tr>"
        )


def render_html(comparison: Comparison, *, generated: datetime | None = None) -> str:
    """A self-contained page: the runs, the changed scenarios, the flagged commands."""
    when = (generated or datetime.now()).isoformat(sep=" ", timespec="seconds")
    rows = []
    for change in comparison.changes:
        o = change.outcome
        step = f"шаг {change.step + 1}" if change.step is not None else ""
        rows.append(
            f'<tr class="{_e(change.kind)}"><td>{_e(KINDS[change.kind][1])}</td>'
            f"<td>{_e(o.scenario)}<br><span class='muted'>{_e(o.feature)}</span></td><td>{_e(o.model)}</td>"
            f"{_status_cell(change.a, comparison.run_a)}{_status_cell(change.b, comparison.run_b)}"
            f"<td>{_e(step)}</td><td>{_step_html(change.step, change.step_a)}</td>"
            f"<td>{_step_html(change.step, change.step_b)}</td></tr>"
        )
    latency = [
        f'<tr class="{"regression" if c.slower else "fixed"}"><td>{_e(c.command)}</td>'
        f"<td>{c.median_a:.1f}</td><td>{c.median_b:.1f}</td><td>{c.percent:+.0f} %</td>"
        f"<td>{'медленнее' if c.slower else 'быстрее'}</td></tr>"
        for c in comparison.latency
    ]
    counts = comparison.counts()
    summary = ", ".join(f"{KINDS[k][1]}: {n}" for k, n in counts.items()) + f", без изменений: {comparison.unchanged}"
    verdict = "Есть регрессии" if comparison.regressed else "Регрессий нет"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="ru"><head><meta charset="utf-8"><title>Сравнение прогонов</title>',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Сравнение прогонов: {_e(verdict)}</h1>",
        f'<p class="muted">Создано {_e(when)}</p>',
        "<table><tr><th>Прогон</th><th>Результаты</th><th>ККТ</th><th>Завершён</th><th>Отчёт</th></tr>",
        *_run_rows(comparison),
        "</table>",
        f"<p>{_e(summary)}</p>",
        "<h2>Изменившиеся сценарии</h2>",
    ]
    if rows:
        parts += [
            "<table><tr><th>Изменение</th><th>Сценарий</th><th>Модель</th><th>A</th><th>B</th>"
            "<th>Расхождение</th><th>Шаг в A</th><th>Шаг в B</th></tr>",
            *rows,
            "</table>",
        ]
    else:
        parts.append("<p>Ни один сценарий не изменился.</p>")
    parts.append("<h2>Время ответа ККТ (медиана, мс)</h2>")
    if latency:
        parts += [
            "<table><tr><th>Команда</th><th>A</th><th>B</th><th>Изменение</th><th>Оценка</th></tr>",
            *latency,
            "</table>",
        ]
    else:
        parts.append("<p>Заметных изменений нет.</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
