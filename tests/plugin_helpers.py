"""Helpers for the tests of harness.plugin through pytester (tests/test_plugin_*.py).

The inner pytest runs as a subprocess (``runpytest_subprocess``, the ``run`` fixture in
tests/conftest.py): kkt-hil and allure-pytest are loaded there through their ``pytest11`` entry
points exactly as in a user's run, and each run gets its own ``--alluredir`` inside the pytester
directory.  Devices reached by ``url:`` specs are emulators served in *this* process on loopback
TCP (``TcpServer`` + ``PiritFrontEnd``, the ``served_kf`` fixture), with an optional
``ControlServer`` as their lab.  Here: reading the Allure results, and the scenarios used by
several test files.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devices.emulator.build import Emulator

REPO = Path(__file__).resolve().parents[1]
NO_PAPER_SCENARIOS = REPO / "scenarios" / "test_no_paper.py"
RUN_TIMEOUT = 120.0  # seconds for one inner pytest run (each normally takes about one second)
INNER_TIMEOUT = "--timeout=60"  # pytest-timeout inside the inner run, per test
PIRIT_MODELS = ("kf", "dkf", "start")
TRACE, JOURNAL, TAPE = "Трасса обмена", "Журнал ККТ", "Чековая лента"
TAPE_IMAGE, LATENCY, FAULTS = "Чековая лента (изображение)", "Время ответа ККТ (мс)", "Внесённые сбои связи"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------
# reading Allure results


@dataclass
class AllureResults:
    path: Path
    results: list[dict[str, Any]]
    containers: list[dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> AllureResults:
        def read(pattern: str) -> list[dict[str, Any]]:
            return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(path.glob(pattern))]

        return cls(path, read("*-result.json"), read("*-container.json"))

    @property
    def names(self) -> list[str]:
        """pytest's names of the results (``test_x[emulator-kf]``); a result's title names its register."""
        return sorted(self.testname(r) for r in self.results)

    @staticmethod
    def testname(result: dict[str, Any]) -> str:
        return next((label["value"] for label in result["labels"] if label["name"] == "testname"), result["name"])

    def get(self, name: str) -> dict[str, Any]:
        found = [r for r in self.results if self.testname(r) == name]
        assert len(found) == 1, f"{name}: {len(found)} results among {self.names}"
        return found[0]

    def status(self, name: str) -> str:
        return str(self.get(name)["status"])

    def message(self, name: str) -> str:
        return str(self.get(name).get("statusDetails", {}).get("message", ""))

    def labels(self, name: str) -> dict[str, list[str]]:
        labels: dict[str, list[str]] = {}
        for label in self.get(name)["labels"]:
            labels.setdefault(label["name"], []).append(label["value"])
        return labels

    def steps(self, name: str) -> list[dict[str, Any]]:
        def walk(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for step in steps:
                yield step
                yield from walk(step.get("steps", []))

        return list(walk(self.get(name).get("steps", [])))

    def fixtures(self, name: str) -> list[dict[str, Any]]:
        """The fixture rows (set-up, then teardown) of a test's containers, as tidied by the plugin."""
        uuid = self.get(name)["uuid"]
        rows: list[dict[str, Any]] = []
        for container in self.containers:
            if uuid in container.get("children", []):
                rows.extend(container.get("befores", []) + container.get("afters", []))
        return rows

    def placed(self, name: str) -> dict[str, list[str]]:
        """Where each attachment of a test is: ``{"Трасса обмена": ["test"], "X": ["fixture ККТ: ..."]}``."""
        places: dict[str, list[str]] = {}
        for attachment in self.get(name).get("attachments", []):
            places.setdefault(attachment["name"], []).append("test")
        for step in self.steps(name):
            for attachment in step.get("attachments", []):
                places.setdefault(attachment["name"], []).append(f"step {step['name']}")
        for row in self.fixtures(name):
            for attachment in row.get("attachments", []):
                places.setdefault(attachment["name"], []).append(f"fixture {row['name']}")
        return places

    def attachment_type(self, name: str, attachment: str) -> str:
        """The MIME type of one of the test's own attachments."""
        [found] = [a for a in self.get(name).get("attachments", []) if a["name"] == attachment]
        return str(found["type"])

    def attachments(self, name: str) -> dict[str, str]:
        """Every attachment of a test: its own, its steps', and its fixtures' (containers)."""
        result = self.get(name)
        found: list[dict[str, Any]] = list(result.get("attachments", []))
        for step in self.steps(name):
            found.extend(step.get("attachments", []))
        for container in self.containers:
            if result["uuid"] in container.get("children", []):
                for fixture in container.get("befores", []) + container.get("afters", []):
                    found.extend(fixture.get("attachments", []))
        texts: dict[str, str] = {}
        for attachment in found:
            assert attachment["name"] not in texts, f"{name}: {attachment['name']} attached twice"
            raw = (self.path / attachment["source"]).read_bytes()
            texts[attachment["name"]] = raw.decode("utf-8") if attachment.get("type") != "image/png" else raw.hex()
        return texts


@dataclass(frozen=True)
class TraceRow:
    """One row of the "Трасса обмена" table: ``+0.012345``, ``→ ККТ`` / ``← ККТ`` / ``примечание``,
    the decoded frame (unescaped), the hex."""

    t: str
    direction: str
    decoded: str
    hex: str


def trace_rows(table: str) -> list[TraceRow]:
    """The records of a "Трасса обмена" attachment (CSV with a header row); a row without a time
    (no exchange, dropped records) is not a record."""
    rows = list(csv.reader(io.StringIO(table)))
    assert rows and rows[0] == ["время, с", "направление", "кадр (расшифровка)", "hex"], table[:200]
    return [TraceRow(*cells) for cells in rows[1:] if len(cells) == 4 and cells[0]]


@dataclass(frozen=True)
class Latency:
    count: int
    median_ms: float
    max_ms: float
    samples_ms: list[float]


def latency_rows(table: str) -> dict[str, Latency]:
    """The "Время ответа ККТ (мс)" attachment (CSV): command → answers, median, max, samples."""
    rows = list(csv.reader(io.StringIO(table)))
    assert rows and rows[0] == ["команда", "ответов", "медиана, мс", "максимум, мс", "замеры, мс"], table[:200]
    return {
        command: Latency(int(count), float(median), float(top), [float(v) for v in samples.split()])
        for command, count, median, top, samples in rows[1:]
    }


def load_properties(text: str) -> dict[str, str]:
    """A reference reader for what ``harness.report.write_environment`` emits (java.util.Properties.load
    rules for single logical lines: ``\\`` escapes, ``\\uXXXX`` incl. surrogate pairs)."""
    simple = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
    result: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip()[0] in "#!":
            continue
        key: list[str] = []
        value: list[str] = []
        target = key
        i = 0
        while i < len(line):
            char = line[i]
            if char == "\\":
                assert i + 1 < len(line), f"a continuation line, which write_environment never writes: {line!r}"
                nxt = line[i + 1]
                if nxt == "u":
                    target.append(chr(int(line[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                target.append(simple.get(nxt, nxt))
                i += 2
                continue
            if target is key and char in "=:":
                target = value
            else:
                target.append(char)
            i += 1
        result[_join_surrogates("".join(key))] = _join_surrogates("".join(value))
    return result


def _join_surrogates(text: str) -> str:
    """``\\uD83D\\uDE00`` read as two code units becomes the one character they encode."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


@dataclass
class Run:
    result: pytest.RunResult
    allure: AllureResults

    @property
    def out(self) -> str:
        return self.result.stdout.str()

    @property
    def err(self) -> str:
        return self.result.stderr.str()


def outcome_lines(run: Run) -> dict[str, str]:
    """``{"test_x[emulator-kf]": "PASSED", ...}`` from the ``-rA`` short summary."""
    outcomes: dict[str, str] = {}
    for line in run.result.outlines:
        m = re.match(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+?)(?: - .*)?$", line)
        if m:
            outcomes[m.group(2).split("::", 1)[-1]] = m.group(1)
    return outcomes


@dataclass
class ServedDevice:
    emulator: Emulator
    url: str  # socket://127.0.0.1:PORT
    control: str = ""  # tcp://127.0.0.1:PORT when served

    def spec(self, *, with_control: bool) -> str:
        return f"url:{self.url}#model=kf" + (f"&control={self.control}" if with_control else "")


# ------------------------------------------------------------------------------------------
# scenarios used below

DEVICE_SCENARIO = """
from harness.device import PaperState


def test_device(kkt, lab):
    info = kkt.info()
    state = lab.state()
    assert info.model == state["model"]
    assert info.serial == state["serial"]
    assert info.firmware == state["firmware"]
    lab.cover(True)
    assert kkt.status().cover_open is True
    lab.cover(False)
    assert kkt.status().paper is PaperState.OK
    kkt.open_shift()
    assert lab.state()["shift"]["is_open"] is True


def test_without_device():
    assert 1 + 1 == 2
"""

OUTCOME_SCENARIO = """
from decimal import Decimal

import pytest

from harness.device import Item, PaperState
from harness.errors import HarnessError, LinkTimeout, NoPaper

SUGAR = Item("Сахар", Decimal("100.00"))


def test_assertion(kkt):
    assert kkt.status().paper is PaperState.OUT, "paper should be out"


def test_unexpected_device_error(kkt, lab):
    kkt.open_shift()
    lab.paper(PaperState.OUT)
    kkt.sell([SUGAR])


def test_expected_device_error(kkt, lab):
    kkt.open_shift()
    lab.paper(PaperState.OUT)
    with pytest.raises(NoPaper):
        kkt.sell([SUGAR])


def test_link_error(kkt, lab):
    lab.power("off")
    kkt.status()


def test_harness_error(kkt):
    raise HarnessError("inventory entry for bench 3 is wrong")
"""
