"""Fixture noise out of the results: allure-pytest records every fixture's set-up and teardown
(``kkt_device``, ``kkt::<lambda>`` …) as rows on every test page.  A row of one of the plugin's
own fixtures that passed and carries no step or attachment says nothing and is removed; one that
failed, or carries evidence (a lab register's preparation and restore), stays, with a readable
name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: The plugin's fixtures and the titles their rows keep when they have something to show.
FIXTURE_TITLES = {
    "kkt_device": "ККТ: подключение и подготовка",
    "kkt": "ККТ",
    "lab": "Стенд",
    "hub": "Кабинет",
}


def _fixture(name: str) -> str | None:
    base = name.split("::", 1)[0]
    return base if base in FIXTURE_TITLES else None


def _noise(row: dict[str, Any]) -> bool:
    return row.get("status") in (None, "passed") and not row.get("steps") and not row.get("attachments")


def _tidy_rows(rows: list[dict[str, Any]], after: bool) -> list[dict[str, Any]]:
    kept = []
    for row in rows:
        fixture = _fixture(str(row.get("name", "")))
        if fixture is None:
            kept.append(row)
        elif not _noise(row):
            row["name"] = FIXTURE_TITLES[fixture] + (": после теста" if after else "")
            kept.append(row)
    return kept


def tidy_fixtures(results: Path) -> int:
    """Rewrite the ``*-container.json`` files of ``results``; returns how many rows were removed."""
    removed = 0
    for path in Path(results).glob("*-container.json"):
        try:
            container = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # not ours to judge: Allure reports it
        if not isinstance(container, dict):
            continue
        original = json.dumps(container, ensure_ascii=False)
        before = len(container.get("befores", [])) + len(container.get("afters", []))
        container["befores"] = _tidy_rows(list(container.get("befores", [])), after=False)
        container["afters"] = _tidy_rows(list(container.get("afters", [])), after=True)
        after = len(container["befores"]) + len(container["afters"])
        if json.dumps(container, ensure_ascii=False) == original:
            continue  # tidy already
        removed += before - after
        if after == 0:
            path.unlink()
        else:
            path.write_text(json.dumps(container, ensure_ascii=False), encoding="utf-8")
    return removed
