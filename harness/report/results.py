"""An allure-results directory read back as typed scenario outcomes, and its manifest ``run.json``.

One :class:`Outcome` per scenario result (``<uuid>-result.json``, as allure-pytest writes it with
the labels of ``harness.plugin``).  Results written before the plugin gave every result the
``scenario`` and ``model_title`` labels still load: the result's ``name`` and the ``model`` label
stand in for them.  A result file that cannot be read is skipped with one warning line on stderr
naming it; a directory without any result is a :class:`UsageError`.

The manifest ``run.json`` (written by ``kkt-hil run`` / ``kkt-hil report`` after the HTML report is
built) says where the report built from these results is, so that a comparison or the release
matrix can link a scenario to its page in that report (``index.html#/<md5 of the result uuid>``,
Allure 3's test result id).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from harness.errors import UsageError

from . import HOST_PARAMETER

__all__ = [
    "LATENCY_ATTACHMENT",
    "MANIFEST",
    "MATRIX_LINK_PREFIX",
    "STATUSES",
    "STATUS_MARK",
    "STATUS_WORD",
    "Manifest",
    "Outcome",
    "Run",
    "Step",
    "load_run",
    "read_manifest",
    "slug",
    "specs_of",
    "write_manifest",
]

MANIFEST = "run.json"
LATENCY_ATTACHMENT = "Время ответа ККТ (мс)"
MATRIX_LINK_PREFIX = "Матрица сценариев"
STATUSES = ("passed", "failed", "broken", "skipped")
#: what a reader sees for a status: a mark for grids, a word for pages (Russian, for QA)
STATUS_MARK = {"passed": "✓", "failed": "✗", "broken": "!", "skipped": "–"}
STATUS_WORD = {"passed": "пройден", "failed": "ошибка", "broken": "сломан", "skipped": "пропущен"}
#: (full name, model, faults, spec): the spec is "" unless two results of one run need it apart.
Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class Step:
    depth: int
    name: str
    status: str

    def __str__(self) -> str:
        return f"«{self.name}» {self.status}"


@dataclass(frozen=True)
class Outcome:
    """One scenario on one device in one run."""

    key: Key
    full_name: str
    scenario: str
    feature: str
    feature_anchor: str  # from the result's «Матрица сценариев» link; "" when it has none
    model: str
    model_title: str
    firmware: str
    spec: str
    faults: str
    status: str
    message: str
    steps: tuple[Step, ...]
    latency: Mapping[str, tuple[float, ...]]  # command label → response times, ms
    uuid: str
    start: int
    stop: int
    host: str = ""  # the host it ran on (the «Хост» parameter, else allure-pytest's host label)

    @property
    def report_id(self) -> str:
        """The test result's id in an Allure 3 report (md5 of the result uuid)."""
        return hashlib.md5(self.uuid.encode("utf-8"), usedforsecurity=False).hexdigest()

    @property
    def device(self) -> str:
        """The register as a reader names it: ``Касса Ф 2.26.0``."""
        return " ".join(part for part in (self.model_title, self.firmware) if part)


@dataclass(frozen=True)
class Manifest:
    report: Path | None
    specs: tuple[str, ...] = ()
    finished: str = ""
    merged_with: tuple[Path, ...] = ()  # the other results directories of a merged report


@dataclass(frozen=True)
class Run:
    """The outcomes of one results directory, by key (one per key: the latest rerun)."""

    path: Path
    outcomes: Mapping[Key, Outcome]
    manifest: Manifest = field(default_factory=lambda: Manifest(None))

    @property
    def hosts(self) -> tuple[str, ...]:
        """The hosts its results ran on."""
        return tuple(sorted({o.host for o in self.outcomes.values() if o.host}))

    def report_link(self, outcome: Outcome) -> str | None:
        """``file:///…/index.html#/<id>`` of ``outcome`` in the report built from this run, if known."""
        if self.manifest.report is None:
            return None
        return f"{self.manifest.report.as_uri()}#/{outcome.report_id}"


# -------------------------------------------------------------------------------- loading


def _warn(stream: TextIO, path: Path, why: str) -> None:
    print(f"kkt-hil: skipping {path}: {why}", file=stream)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _labels(raw: object) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("value"), str):
            labels.setdefault(item["name"], item["value"])  # the first one of a repeated name (tags, rules)
    return labels


def _flatten(raw: object, depth: int = 0) -> Iterable[Step]:
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict):
            yield Step(depth, _text(item.get("name")), _text(item.get("status")) or "unknown")
            if depth < 64:
                yield from _flatten(item.get("steps"), depth + 1)


def _anchor(links: object) -> str:
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and _text(link.get("name")).startswith(MATRIX_LINK_PREFIX):
            url = _text(link.get("url"))
            if "#" in url and url.rsplit("#", 1)[1]:
                return url.rsplit("#", 1)[1]
    return ""


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) < 1e12:
        return float(value)
    return None


def _latency(results: Path, attachments: object, stream: TextIO) -> dict[str, tuple[float, ...]]:
    """Response times per command from the «Время ответа ККТ (мс)» attachment (empty without one)."""
    for item in attachments if isinstance(attachments, list) else []:
        if not (isinstance(item, dict) and item.get("name") == LATENCY_ATTACHMENT):
            continue
        source = Path(_text(item.get("source"))).name
        path = results / source
        try:
            text = path.read_text(encoding="utf-8")
            latency = _latency_csv(text) if _text(item.get("type")) == "text/csv" else _latency_json(json.loads(text))
        except (OSError, ValueError, RecursionError, csv.Error) as exc:
            _warn(stream, path, f"unreadable latency attachment ({type(exc).__name__})")
            return {}
        return latency
    return {}


def _latency_csv(text: str) -> dict[str, tuple[float, ...]]:
    """The table the plugin writes: command, answers, median, max, the samples (space-separated)."""
    latency: dict[str, tuple[float, ...]] = {}
    for row in list(csv.reader(io.StringIO(text)))[1:]:
        if len(row) < 5:
            continue
        samples = [s for s in (_number(_float(v)) for v in row[4].split()) if s is not None]
        if samples:
            latency[row[0]] = tuple(samples)
    return latency


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _latency_json(data: object) -> dict[str, tuple[float, ...]]:
    """Results written before the table: {command: {count, median_ms, max_ms, samples_ms}}."""
    latency: dict[str, tuple[float, ...]] = {}
    for command, stats in data.items() if isinstance(data, dict) else []:
        if not isinstance(stats, dict):
            continue
        samples = [s for s in map(_number, stats.get("samples_ms") or []) if s is not None]
        if not samples:  # no samples written: the median stands for each of them
            median, count = _number(stats.get("median_ms")), _number(stats.get("count"))
            samples = [median] * max(1, int(count or 1)) if median is not None else []
        if samples:
            latency[str(command)] = tuple(samples)
    return latency


def _fixture_attachments(results: Path) -> dict[str, list[Any]]:
    """Attachments of the fixtures of exactly one test, by that test's uuid: a test that ends in
    its fixture (a skip, say) may leave its response times in the fixture's teardown."""
    found: dict[str, list[Any]] = {}
    for path in results.glob("*-container.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue  # a fallback only: the result itself is what counts
        children = data.get("children") if isinstance(data, dict) else None
        if not (isinstance(children, list) and len(children) == 1 and isinstance(children[0], str)):
            continue
        for phase in ("befores", "afters"):
            for fixture in data.get(phase) or []:
                if isinstance(fixture, dict) and isinstance(fixture.get("attachments"), list):
                    found.setdefault(children[0], []).extend(fixture["attachments"])
    return found


def _outcome(results: Path, path: Path, data: dict[str, Any], stream: TextIO, fixtures: list[Any]) -> Outcome:
    labels = _labels(data.get("labels"))
    name = _text(data.get("name"))
    full_name = _text(data.get("fullName")) or name
    model = labels.get("model", "")
    faults = labels.get("faults", "")
    details = data.get("statusDetails")
    message = _text(details.get("message")) if isinstance(details, dict) else ""
    status = _text(data.get("status"))
    return Outcome(
        key=(full_name, model, faults, ""),
        full_name=full_name,
        scenario=labels.get("scenario") or name or full_name,
        feature=labels.get("feature", ""),
        feature_anchor=_anchor(data.get("links")),
        model=model,
        model_title=labels.get("model_title") or model,
        firmware=labels.get("firmware", ""),
        spec=labels.get("kkt_spec", ""),
        faults=faults,
        status=status if status in STATUSES else "broken",
        message=message.strip(),
        steps=tuple(_flatten(data.get("steps"))),
        latency=_latency(results, data.get("attachments"), stream) or _latency(results, fixtures, stream),
        uuid=_text(data.get("uuid")) or path.name.removesuffix("-result.json"),
        start=int(_number(data.get("start")) or 0),
        stop=int(_number(data.get("stop")) or 0),
        host=result_host(data),
    )


def result_host(data: Any) -> str:
    """The host a result ran on: its «Хост» parameter, else its ``host`` label, else ""."""
    if not isinstance(data, dict):
        return ""
    for item in data.get("parameters") or []:
        if isinstance(item, dict) and item.get("name") == HOST_PARAMETER and isinstance(item.get("value"), str):
            return str(item["value"])
    for item in data.get("labels") or []:
        if isinstance(item, dict) and item.get("name") == "host" and isinstance(item.get("value"), str):
            return str(item["value"])
    return ""


def _read_result(results: Path, path: Path, stream: TextIO, fixtures: dict[str, list[Any]]) -> Outcome | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _warn(stream, path, exc.strerror or type(exc).__name__)
        return None
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested too deep
        _warn(stream, path, f"not a JSON result ({type(exc).__name__})")
        return None
    if not isinstance(data, dict) or not isinstance(data.get("fullName") or data.get("name"), str):
        _warn(stream, path, "not an Allure test result (no name)")
        return None
    return _outcome(results, path, data, stream, fixtures.get(_text(data.get("uuid")), []))


def _keyed(outcomes: Iterable[Outcome]) -> dict[Key, Outcome]:
    """The latest result of each (scenario, model, faults, spec); the spec joins the key only where
    one run holds the same scenario on two devices of a model (two firmwares, say)."""
    latest: dict[Key, Outcome] = {}
    for outcome in outcomes:
        full = (outcome.full_name, outcome.model, outcome.faults, outcome.spec)
        kept = latest.get(full)
        if kept is None or (outcome.stop, outcome.start) >= (kept.stop, kept.start):
            latest[full] = outcome
    specs: dict[tuple[str, str, str], int] = {}
    for full in latest:
        specs[full[:3]] = specs.get(full[:3], 0) + 1
    keyed: dict[Key, Outcome] = {}
    for full, outcome in sorted(latest.items()):
        key: Key = full if specs[full[:3]] > 1 else (*full[:3], "")
        keyed[key] = replace(outcome, key=key)
    return keyed


def load_run(path: Path, *, stream: TextIO | None = None) -> Run:
    """Read the results directory ``path``; :class:`UsageError` when it has no result."""
    stream = sys.stderr if stream is None else stream
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"no results directory {path}")
    files = sorted(path.glob("*-result.json"))
    if not files:
        raise UsageError(f"no *-result.json in {path}: not an allure results directory")
    fixtures = _fixture_attachments(path)
    outcomes = [o for o in (_read_result(path, f, stream, fixtures) for f in files) if o is not None]
    if not outcomes:
        raise UsageError(f"no readable *-result.json in {path}")
    return Run(path=path, outcomes=_keyed(_firmware_filled(outcomes)), manifest=read_manifest(path, stream=stream))


def _firmware_filled(outcomes: list[Outcome]) -> list[Outcome]:
    """A result skipped before its register was opened has no firmware label; the same spec's
    other results of the run name it, so one register stays one column."""
    known: dict[str, set[str]] = {}
    for outcome in outcomes:
        if outcome.firmware:
            known.setdefault(outcome.spec, set()).add(outcome.firmware)
    return [
        replace(o, firmware=next(iter(known[o.spec]))) if not o.firmware and len(known.get(o.spec, ())) == 1 else o
        for o in outcomes
    ]


# -------------------------------------------------------------------------------- the manifest


def read_manifest(results: Path, *, stream: TextIO | None = None) -> Manifest:
    """``results/run.json``; an empty manifest when there is none (one warning when it is broken)."""
    stream = sys.stderr if stream is None else stream
    path = Path(results) / MANIFEST
    if not path.exists():
        return Manifest(None)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        _warn(stream, path, f"unreadable manifest ({type(exc).__name__})")
        return Manifest(None)
    if not isinstance(data, dict):
        _warn(stream, path, "the manifest is not a JSON object")
        return Manifest(None)
    report = _text(data.get("report"))
    specs = data.get("specs")
    merged = data.get("merged_with")
    return Manifest(
        report=Path(report) if report and Path(report).is_absolute() else None,
        specs=tuple(s for s in specs if isinstance(s, str)) if isinstance(specs, list) else (),
        finished=_text(data.get("finished")),
        merged_with=tuple(Path(m) for m in merged if isinstance(m, str)) if isinstance(merged, list) else (),
    )


def specs_of(results: Path) -> list[str]:
    """The device specs the results ran on (``kkt_spec`` labels), in the order they started."""
    first: dict[str, float] = {}
    for path in Path(results).glob("*-result.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(data, dict):
            continue
        spec = _labels(data.get("labels")).get("kkt_spec", "")
        start = _number(data.get("start")) or 0.0
        if spec and start < first.get(spec, float("inf")):
            first[spec] = start
    return sorted(first, key=lambda spec: (first[spec], spec))


def write_manifest(
    results: Path,
    report: Path,
    specs: Iterable[str] = (),
    *,
    finished: datetime | None = None,
    merged_with: Iterable[Path] = (),
) -> Path:
    """Write ``results/run.json`` naming ``report`` (the report's ``index.html``, made absolute):
    the last report built from these results; for a merged report, ``merged_with`` names the other
    results directories in it."""
    when = (finished or datetime.now(UTC)).astimezone().isoformat(timespec="seconds")
    data: dict[str, Any] = {"report": str(Path(report).resolve()), "specs": list(specs), "finished": when}
    others = [str(Path(m).resolve()) for m in merged_with]
    if others:
        data["merged_with"] = others
    path = Path(results) / MANIFEST
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


_SLUG_JUNK = re.compile(r"[^\w]+", re.UNICODE)


def slug(text: str) -> str:
    """An HTML id from a feature title: ``A. Нет бумаги`` → ``a-нет-бумаги``."""
    return _SLUG_JUNK.sub("-", text.lower()).strip("-_") or "section"
