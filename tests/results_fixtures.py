"""Synthetic allure-results directories, written the way allure-pytest and harness.plugin write them
(the results contract of harness/report/results.py), for tests/test_compare.py, test_matrix.py and
test_run_summary.py."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid as uuid_module
from pathlib import Path
from typing import Any

LATENCY = "Время ответа ККТ (мс)"
FEATURE_A = "A. Нет бумаги"
ANCHOR_A = "a-no-paper"


def step(name: str, status: str = "passed", *children: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "status": status, "steps": list(children), "attachments": [], "start": 1, "stop": 2}


def report_id(uuid: str) -> str:
    return hashlib.md5(uuid.encode()).hexdigest()


def write_result(
    results: Path,
    test: str = "test_idle_refusal",
    *,
    module: str = "scenarios.test_no_paper",
    status: str = "passed",
    steps: list[dict[str, Any]] | None = None,
    scenario: str | None = None,
    feature: str = FEATURE_A,
    anchor: str | None = ANCHOR_A,
    model: str = "kf",
    model_title: str = "Касса Ф",
    firmware: str = "2.26.0",
    spec: str | None = None,
    faults: str | None = None,
    message: str = "",
    start: int = 1_000,
    stop: int = 2_000,
    latency: dict[str, list[float]] | None = None,
    legacy: bool = False,
    uuid: str | None = None,
) -> str:
    """One ``<uuid>-result.json`` (plus its latency attachment); returns the uuid.

    ``legacy``: as results were before the plugin wrote ``scenario`` and ``model_title`` (the
    name is the bare scenario title, no «— model» suffix)."""
    results.mkdir(parents=True, exist_ok=True)
    uuid = uuid or str(uuid_module.uuid4())
    title = scenario or f"Сценарий {test}"
    labels = [
        ("kkt_spec", spec or f"emulator:{model}"),
        ("model", model),
        ("firmware", firmware),
        ("fn", "9999078900123456 (fn36)"),
        ("serial", "0497123456"),
        ("epic", "Смена СНО"),
        ("feature", feature),
        ("story", title),
        ("severity", "critical"),
    ]
    if not legacy:
        labels += [("scenario", title), ("model_title", model_title)]
    if faults:
        labels.append(("faults", faults))
    links = [{"name": "Матрица сценариев A", "url": f"matrix.html#{anchor}", "type": "link"}] if anchor else []
    attachments = []
    if latency is not None and legacy:  # results of before the table: a JSON object
        source = f"{uuid_module.uuid4()}-attachment.json"
        stats = {
            command: {
                "count": len(samples),
                "median_ms": sorted(samples)[len(samples) // 2],
                "max_ms": max(samples),
                "samples_ms": samples,
            }
            for command, samples in latency.items()
        }
        (results / source).write_text(json.dumps(stats), encoding="utf-8")
        attachments.append({"name": LATENCY, "source": source, "type": "application/json"})
    elif latency is not None:  # the table the plugin writes: command, answers, median, max, samples
        source = f"{uuid_module.uuid4()}-attachment.csv"
        table = io.StringIO()
        writer = csv.writer(table, lineterminator="\n")
        writer.writerow(["команда", "ответов", "медиана, мс", "максимум, мс", "замеры, мс"])
        for command, samples in latency.items():
            ordered = sorted(samples)
            writer.writerow(
                [command, len(samples), ordered[len(samples) // 2], max(samples), " ".join(map(str, samples))]
            )
        (results / source).write_text(table.getvalue(), encoding="utf-8")
        attachments.append({"name": LATENCY, "source": source, "type": "text/csv"})
    data = {
        "uuid": uuid,
        "name": title if legacy else f"{title} — {model_title} {firmware}",
        "fullName": f"{module}#{test}",
        "status": status,
        "statusDetails": {"message": message, "trace": ""} if message else {},
        "start": start,
        "stop": stop,
        "steps": steps if steps is not None else [step("Запросить статус ККТ"), step("Открыть смену")],
        "attachments": attachments,
        "links": links,
        "labels": [{"name": n, "value": v} for n, v in labels],
    }
    (results / f"{uuid}-result.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return uuid


def write_manifest(results: Path, report: Path) -> None:
    data = {"report": str(report.resolve()), "specs": ["emulator:kf"], "finished": "2025-01-01T00:00:00+03:00"}
    (results / "run.json").write_text(json.dumps(data), encoding="utf-8")
