"""harness.plugin through pytester: parametrization over devices, fixtures, markers, Allure evidence.

The inner pytest runs as a subprocess (``runpytest_subprocess``): kkt-hil and allure-pytest are
loaded there through their ``pytest11`` entry points exactly as in a user's run, and each run
gets its own ``--alluredir`` inside the pytester directory.  Devices reached by ``url:`` specs
are emulators served in *this* process on loopback TCP (``TcpServer`` + ``PiritFrontEnd``), with
an optional ``ControlServer`` as their lab.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


from devices.emulator.build import Emulator, build_emulator
from devices.emulator.control import ControlServer
from devices.emulator.profiles import PROFILES
from devices.emulator.serve import TcpServer
from devices.pirit.emulator import PiritFrontEnd
from harness.device import PaperState
from harness.families import default_models, model_ids

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[1]
NO_PAPER_SCENARIOS = REPO / "scenarios" / "test_no_paper.py"
RUN_TIMEOUT = 120.0  # seconds for one inner pytest run (each normally takes about one second)
INNER_TIMEOUT = "--timeout=60"  # pytest-timeout inside the inner run, per test
PIRIT_MODELS = ("kf", "dkf", "start")
TRACE, JOURNAL, TAPE = "Трасса обмена (wire trace)", "Журнал ККТ", "Чековая лента"
_runs = itertools.count()


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
        return sorted(r["name"] for r in self.results)

    def get(self, name: str) -> dict[str, Any]:
        found = [r for r in self.results if r["name"] == name]
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
            texts[attachment["name"]] = (self.path / attachment["source"]).read_text(encoding="utf-8")
        return texts


def load_properties(text: str) -> dict[str, str]:
    """Enough of java.util.Properties for what harness.report writes (``\\`` escapes, ``\\uXXXX``)."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", "!")):
            continue
        key: list[str] = []
        value: list[str] = []
        target = key
        i = 0
        while i < len(line):
            char = line[i]
            if char == "\\" and i + 1 < len(line):
                nxt = line[i + 1]
                if nxt == "u":
                    target.append(chr(int(line[i + 2 : i + 6], 16)))
                    i += 6
                    continue
                target.append({"t": "\t", "n": "\n", "r": "\r", "f": "\f"}.get(nxt, nxt))
                i += 2
                continue
            if target is key and char in "=:":
                target = value
            else:
                target.append(char)
            i += 1
        result["".join(key)] = "".join(value)
    return result


# ------------------------------------------------------------------------------------------
# running the inner pytest


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


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``run(*args)``: the inner pytest in a subprocess, with a fresh ``--alluredir``."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("KKT_HIL_BUILD", raising=False)

    def inner(*args: str) -> Run:
        alluredir = pytester.path / f"allure-results-{next(_runs)}"
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "-rA", INNER_TIMEOUT, f"--alluredir={alluredir}", *args, timeout=RUN_TIMEOUT
        )
        return Run(result, AllureResults.load(alluredir))

    return inner


def outcome_lines(run: Run) -> dict[str, str]:
    """``{"test_x[emulator-kf]": "PASSED", ...}`` from the ``-rA`` short summary."""
    outcomes: dict[str, str] = {}
    for line in run.result.outlines:
        m = re.match(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+?)(?: - .*)?$", line)
        if m:
            outcomes[m.group(2).split("::", 1)[-1]] = m.group(1)
    return outcomes


# ------------------------------------------------------------------------------------------
# devices served from this process


@dataclass
class ServedDevice:
    emulator: Emulator
    url: str  # socket://127.0.0.1:PORT
    control: str = ""  # tcp://127.0.0.1:PORT when served

    def spec(self, *, with_control: bool) -> str:
        return f"url:{self.url}#model=kf" + (f"&control={self.control}" if with_control else "")


@pytest.fixture
def served_kf() -> Iterator[ServedDevice]:
    """A Касса Ф emulator on loopback TCP (the wire protocol) plus its control channel."""
    emulator = build_emulator("kf")
    wire = TcpServer(lambda: PiritFrontEnd(emulator.core), "tcp://127.0.0.1:0")
    control = ControlServer(emulator.handler, "tcp://127.0.0.1:0")
    try:
        yield ServedDevice(emulator, wire.url, control.url)
    finally:
        control.close()
        wire.close()


# ------------------------------------------------------------------------------------------
# scenarios used below

DEVICE_SCENARIO = '''
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
'''

OUTCOME_SCENARIO = '''
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
'''


# ------------------------------------------------------------------------------------------
# loading and parametrization


def test_plugin_is_loaded_through_the_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help", timeout=RUN_TIMEOUT)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*cash register HIL stand*", "*--kkt=SPEC*", "*--allow-destructive*", "*--device-timeout-scale=F*"])
    markers = pytester.runpytest_subprocess("--markers", timeout=RUN_TIMEOUT)
    markers.stdout.fnmatch_lines(
        ["@pytest.mark.destructive*", "@pytest.mark.requires(*capabilities)*", "@pytest.mark.models(*ids)*", "@pytest.mark.firmware(min=...)*"]
    )


def test_runs_once_per_known_emulator_by_default(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    known = model_ids()
    assert set(PIRIT_MODELS) <= set(known)
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("-v")
    expected = [f"test_device[emulator-{m}]" for m in default_models() if m in known]
    assert result.allure.names == sorted([*expected, "test_without_device"])
    collected = [
        m.group(1) for line in result.result.outlines if (m := re.match(r"^test_scenario\.py::(\S+) ", line))
    ]
    assert collected == [*expected, "test_without_device"]  # one run each, in the spec order
    outcomes = outcome_lines(result)
    for model in PIRIT_MODELS:
        assert outcomes[f"test_device[emulator-{model}]"] == "PASSED"
        assert result.allure.status(f"test_device[emulator-{model}]") == "passed"
    assert outcomes["test_without_device"] == "PASSED"


def test_every_known_emulator_passes_a_plain_scenario(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("-k", "test_device")
    statuses = {name: result.allure.status(name) for name in result.allure.names}
    specs = [a for m in model_ids() for a in ("--kkt", f"emulator:{m}")]
    result = run("-k", "test_device", *specs)
    statuses = {name: result.allure.status(name) for name in result.allure.names}
    assert statuses == {f"test_device[emulator-{m}]": "passed" for m in model_ids()}
    result.result.assert_outcomes(passed=len(model_ids()), deselected=1)


def test_one_spec_runs_once(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("--kkt", "emulator:kf")
    result.result.assert_outcomes(passed=2)
    result.result.stdout.fnmatch_lines(["plugins:*kkt-hil-*"])  # loaded through its pytest11 entry point
    assert result.allure.names == ["test_device[emulator-kf]", "test_without_device"]


def test_several_specs_run_in_order(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("-v", "--kkt", "emulator:start", "--kkt", "emulator:kf?firmware=2.25.0", "-k", "test_device")
    result.result.assert_outcomes(passed=2, deselected=1)
    result.result.stdout.re_match_lines(
        [
            r"^test_scenario\.py::test_device\[emulator-start\] PASSED",
            r"^test_scenario\.py::test_device\[emulator-kf\[firmware=2\.25\.0\]\] PASSED",
        ]
    )
    assert result.allure.labels("test_device[emulator-kf[firmware=2.25.0]]")["firmware"] == ["2.25.0"]


# ------------------------------------------------------------------------------------------
# outcomes: failed (product) vs broken (stand)


def test_failed_versus_broken(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_outcomes=OUTCOME_SCENARIO)
    result = run("--kkt", "emulator:kf", "--device-timeout-scale", "0.05")
    result.result.assert_outcomes(passed=1, failed=4)
    allure = result.allure
    assert allure.status("test_assertion[emulator-kf]") == "failed"
    assert "paper should be out" in allure.message("test_assertion[emulator-kf]")
    # the register refused unexpectedly: product behaviour, so *failed* (DeviceError is an AssertionError)
    assert allure.status("test_unexpected_device_error[emulator-kf]") == "failed"
    assert "NoPaper" in allure.message("test_unexpected_device_error[emulator-kf]")
    assert allure.status("test_expected_device_error[emulator-kf]") == "passed"
    # the lab broke: *broken*
    assert allure.status("test_link_error[emulator-kf]") == "broken"
    assert "LinkTimeout" in allure.message("test_link_error[emulator-kf]")
    assert allure.status("test_harness_error[emulator-kf]") == "broken"
    assert "inventory entry for bench 3 is wrong" in allure.message("test_harness_error[emulator-kf]")
    # the step that hit the refusal is marked in the report
    sell = [s for s in allure.steps("test_unexpected_device_error[emulator-kf]") if s["name"].startswith("Пробить чек")]
    assert [s["status"] for s in sell] == ["failed"]
    assert sell[0]["name"] == "Пробить чек продажи: [Сахар 1×100.00]"


# ------------------------------------------------------------------------------------------
# the lab: unavailable → skipped with the reason; with a control channel → works


LAB_SCENARIO = '''
from decimal import Decimal

import pytest

from harness.device import Item, PaperState
from harness.errors import NoPaper


def test_paper_out(kkt, lab):
    assert kkt.status().paper is PaperState.OK
    kkt.open_shift()
    lab.paper(PaperState.OUT)
    assert kkt.status().paper is PaperState.OUT
    with pytest.raises(NoPaper):
        kkt.sell([Item("Сахар", Decimal("100.00"))])
'''


def test_unavailable_lab_skips_with_the_reason(pytester: pytest.Pytester, run, served_kf: ServedDevice) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_lab_scenario=LAB_SCENARIO)
    result = run("--kkt", served_kf.spec(with_control=False))
    result.result.assert_outcomes(skipped=1)
    reason = "cannot change paper: this device has no lab control"
    result.result.stdout.re_match_lines([rf"^SKIPPED \[1\] .*lab cannot do this on this device — {reason}"])
    name = "test_paper_out[url-kf]"
    assert result.allure.status(name) == "skipped"
    assert reason in result.allure.message(name)
    # the scenario really ran on the device up to the lab request
    assert served_kf.emulator.core.shift.is_open is True
    assert served_kf.emulator.core.printer.paper is PaperState.OK
    labels = result.allure.labels(name)
    assert labels["model"] == ["kf"]
    assert labels["serial"] == [served_kf.emulator.core.serial]
    assert labels["transport"] == [served_kf.url]
    evidence = result.allure.attachments(name)
    assert "status" in evidence[TRACE]
    assert evidence[JOURNAL].startswith("(journal not available:")
    assert evidence[TAPE].startswith("(printed tape not available:")


def test_lab_over_a_control_channel(pytester: pytest.Pytester, run, served_kf: ServedDevice) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_lab_scenario=LAB_SCENARIO)
    result = run("--kkt", served_kf.spec(with_control=True))
    result.result.assert_outcomes(passed=1)
    name = "test_paper_out[url-kf]"
    assert result.allure.status(name) == "passed"
    core = served_kf.emulator.core  # the inner run changed the emulator in this process
    assert core.printer.paper is PaperState.OUT
    assert core.shift.is_open is True
    steps = [s["name"] for s in result.allure.steps(name)]
    assert "Стенд: бумага: out" in steps
    assert "Открыть смену" in steps
    evidence = result.allure.attachments(name)
    assert "shift opened" in evidence[JOURNAL]
    assert "ОТКРЫТИИ СМЕНЫ" in evidence[TAPE]
    assert result.allure.labels(name)["transport"] == [served_kf.url]


def test_dead_control_channel_does_not_break_a_passed_test(pytester: pytest.Pytester, run, served_kf: ServedDevice, dead_control_url: str) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_x="def test_status(kkt):\n    assert kkt.status().shift.value\n")
    result = run("--kkt", f"url:{served_kf.url}#model=kf&control={dead_control_url}")
    result.result.assert_outcomes(passed=1)
    evidence = result.allure.attachments("test_status[url-kf]")
    assert evidence[JOURNAL].startswith("(journal not available:")


# ------------------------------------------------------------------------------------------
# evidence: labels, attachments, steps, environment files


def test_labels_and_evidence_on_every_test(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO, test_outcomes=OUTCOME_SCENARIO)
    specs = [f"emulator:{m}" for m in PIRIT_MODELS]
    result = run(*[a for s in specs for a in ("--kkt", s)], "--device-timeout-scale", "0.05")
    device_tests = [n for n in result.allure.names if "[" in n]
    assert len(device_tests) == 6 * len(PIRIT_MODELS)
    for name in device_tests:
        model = name.split("[emulator-")[1].rstrip("]")
        profile = PROFILES[model]
        labels = result.allure.labels(name)
        assert labels["model"] == [model], name
        assert labels["firmware"] == [profile.firmware], name
        assert labels["serial"][0].startswith(profile.serial_prefix) and len(labels["serial"][0]) == 10, name
        assert re.fullmatch(r"\d{16} \(fn(15|36)\)", labels["fn"][0]), (name, labels["fn"])
        assert labels["transport"] == ["emulator:pty"], name
        assert labels["kkt_spec"] == [f"emulator:{model}"], name
        evidence = result.allure.attachments(name)  # passed, failed and broken tests alike
        assert {TRACE, JOURNAL, TAPE} <= set(evidence), (name, sorted(evidence))
        assert all(evidence[k].strip() for k in (TRACE, JOURNAL, TAPE)), name
        trace = evidence[TRACE]
        assert re.search(r"^\+\s*\d+\.\d{6} TX 02 ", trace, re.M), name  # raw bytes ...
        assert "status" in trace, name  # ... with decoded frames beside them
        assert "power on" in evidence[JOURNAL], name
    opened = result.allure.attachments("test_device[emulator-kf]")
    assert "ОТКРЫТИИ СМЕНЫ 1" in opened[TAPE]
    assert "shift opened" in opened[JOURNAL]
    assert result.allure.attachments("test_assertion[emulator-dkf]")[TAPE] == "(nothing printed)"
    # the attachment files themselves are in the results directory
    assert len(list(result.allure.path.glob("*-attachment.txt"))) >= 3 * len(device_tests)


def test_device_operations_are_allure_steps(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("--kkt", "emulator:kf", "-k", "test_device")
    steps = result.allure.steps("test_device[emulator-kf]")
    titles = [s["name"] for s in steps]
    assert "Открыть смену" in titles
    assert "Прочитать сведения о ККТ" in titles
    assert "Запросить статус ККТ" in titles
    assert titles.count("Стенд: крышка открыта: True") == 1
    assert titles.count("Стенд: крышка открыта: False") == 1
    assert all(s["status"] == "passed" for s in steps)
    assert titles.index("Стенд: крышка открыта: False") < titles.index("Открыть смену")


def test_environment_categories_executor(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("--kkt", "emulator:kf", "--kkt", "emulator:dkf")
    result.result.assert_outcomes(passed=3)
    path = result.allure.path
    props = load_properties((path / "environment.properties").read_text(encoding="ascii"))
    assert props["kkt.specs"] == "emulator:kf emulator:dkf"
    assert props["emulator-kf.model"] == "kf"
    assert props["emulator-kf.firmware"] == PROFILES["kf"].firmware
    assert props["emulator-kf.protocol"] == "pirit"
    assert props["emulator-dkf.serial"].startswith(PROFILES["dkf"].serial_prefix)
    assert re.fullmatch(r"3\.\d+\.\d+", props["python"])
    categories = json.loads((path / "categories.json").read_text(encoding="utf-8"))
    assert isinstance(categories, list) and categories
    matched = {status for c in categories for status in c.get("matchedStatuses", [])}
    assert {"failed", "broken", "skipped"} <= matched
    assert all(c["name"] for c in categories)
    executor = json.loads((path / "executor.json").read_text(encoding="utf-8"))
    assert executor["name"] == "kkt-hil"


def test_no_alluredir_no_files(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kkt", "emulator:kf", timeout=RUN_TIMEOUT)
    result.assert_outcomes(passed=2)
    assert not list(pytester.path.rglob("environment.properties"))


def test_environment_lists_devices_under_xdist(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("-n", "2", "--kkt", "emulator:kf", "--kkt", "emulator:dkf")
    result.result.assert_outcomes(passed=3)
    props = load_properties((result.allure.path / "environment.properties").read_text(encoding="ascii"))
    assert props["kkt.specs"] == "emulator:kf emulator:dkf"
    assert props.get("emulator-kf.model") == "kf"
    assert props.get("emulator-dkf.model") == "dkf"


# ------------------------------------------------------------------------------------------
# markers

MARKER_SCENARIO = '''
import pytest

from harness.device import Capability


@pytest.mark.models("dkf")
def test_dkf_only(kkt):
    assert kkt.info().model == "dkf"


@pytest.mark.requires(Capability.JOURNAL)
def test_needs_journal(kkt):
    assert kkt.journal()


@pytest.mark.requires(Capability.SET_CLOCK, Capability.CONTINUE_PRINT)
def test_needs_what_pirit_has(kkt):
    assert Capability.SET_CLOCK in kkt.capabilities


@pytest.mark.firmware(min="9.0.0")
def test_new_firmware(kkt):
    assert kkt.info().firmware == "10.50.1"
'''


def test_markers_skip_with_reasons(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_markers=MARKER_SCENARIO)
    result = run(*[a for m in PIRIT_MODELS for a in ("--kkt", f"emulator:{m}")])
    result.result.assert_outcomes(passed=5, skipped=7)
    allure = result.allure
    assert allure.status("test_dkf_only[emulator-dkf]") == "passed"
    for model in ("kf", "start"):
        name = f"test_dkf_only[emulator-{model}]"
        assert allure.status(name) == "skipped"
        assert f"scenario is for models dkf; device is {model}" in allure.message(name)
    for model in PIRIT_MODELS:
        name = f"test_needs_journal[emulator-{model}]"
        assert allure.status(name) == "skipped"
        assert f"device {model} lacks journal" in allure.message(name)
        assert allure.status(f"test_needs_what_pirit_has[emulator-{model}]") == "passed"
    for model in ("kf", "dkf"):
        name = f"test_new_firmware[emulator-{model}]"
        assert allure.status(name) == "skipped"
        assert f"firmware {PROFILES[model].firmware} is older than 9.0.0" in allure.message(name)
    assert allure.status("test_new_firmware[emulator-start]") == "passed"  # 10.50.1 >= 9.0.0, as versions
    result.result.stdout.re_match_lines(
        [
            r"^SKIPPED \[\d\] .*scenario is for models dkf; device is kf",
            r"^SKIPPED \[\d\] .*device kf lacks journal",
            r"^SKIPPED \[\d\] .*firmware 2\.26\.0 is older than 9\.0\.0",
        ],
        consecutive=False,
    )


def test_firmware_marker_reads_the_device(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(
        test_fw='import pytest\n\n@pytest.mark.firmware(min="2.26.0")\ndef test_fw(kkt):\n    assert kkt.info()\n'
    )
    result = run("--kkt", "emulator:kf", "--kkt", "emulator:kf?firmware=2.25.0")
    result.result.assert_outcomes(passed=1, skipped=1)
    assert result.allure.status("test_fw[emulator-kf]") == "passed"
    old = "test_fw[emulator-kf[firmware=2.25.0]]"
    assert result.allure.status(old) == "skipped"
    assert "firmware 2.25.0 is older than 2.26.0" in result.allure.message(old)


DESTRUCTIVE_SCENARIO = '''
import pytest


@pytest.mark.destructive
def test_destructive(kkt):
    assert kkt.status()
'''


def test_destructive_marker_on_a_real_device(pytester: pytest.Pytester, run, served_kf: ServedDevice) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_d=DESTRUCTIVE_SCENARIO)
    spec = served_kf.spec(with_control=False)
    refused = run("--kkt", spec, "--kkt", "emulator:kf")
    refused.result.assert_outcomes(passed=1, skipped=1)
    assert refused.allure.status("test_destructive[emulator-kf]") == "passed"
    assert "--allow-destructive" in refused.allure.message("test_destructive[url-kf]")
    allowed = run("--kkt", spec, "--allow-destructive")
    allowed.result.assert_outcomes(errors=1)  # url: cannot prove a sacrificial ФН: refused, broken
    assert allowed.allure.status("test_destructive[url-kf]") == "broken"
    assert "sacrificial" in allowed.allure.message("test_destructive[url-kf]")
    assert served_kf.emulator.core.journal[-1].event == "power on"  # nothing was sent to the device


# ------------------------------------------------------------------------------------------
# bad specs

BAD_SPECS = [
    ("emulator", "expected emulator:MODEL"),
    ("emulator:zz", "unknown model 'zz'"),
    ("url:/dev/x", "name the model"),
    ("url:#model=kf", "no URL"),
    ("foo:bar", "unknown kind 'foo'"),
    ("emulator:kf?firmware", "key=value"),
    ("emulator:kf?defects=a&defects=b", "given twice"),
]


@pytest.mark.parametrize(("spec", "problem"), BAD_SPECS, ids=[s for s, _ in BAD_SPECS])
def test_malformed_spec_is_a_usage_error(pytester: pytest.Pytester, spec: str, problem: str) -> None:
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kkt", spec, timeout=RUN_TIMEOUT)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, result.errlines
    assert errors[0].startswith(f"ERROR: bad --kkt spec {spec!r}: ")
    assert problem in errors[0]
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("scale", ["0", "-1"])
def test_bad_timeout_scale_is_a_usage_error(pytester: pytest.Pytester, scale: str) -> None:
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--device-timeout-scale={scale}", timeout=RUN_TIMEOUT)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == ["ERROR: --device-timeout-scale must be positive"]


# A spec that parses but names an unknown defect: the scenario never ran, so it is not a test
# failure: pytest reports an ERROR at setup naming the defect (and the known ones), and Allure
# shows it as *broken* (a configuration problem, DESIGN "Errors"), never as failed product behaviour.


def test_unknown_defect_errors_at_setup_naming_it(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("--kkt", "emulator:kf?defects=nosuch", "-k", "test_device")
    result.result.assert_outcomes(errors=1, deselected=1)
    result.result.stdout.re_match_lines(
        [
            r"^_+ ERROR at setup of test_device\[emulator-kf\[defects=nosuch\]\] _+$",
            r"^(E +)?(UsageError: )?bad device spec: emulator:kf\?defects=nosuch: unknown defect\(s\) nosuch \(known: .*\)$",
        ],
        consecutive=False,
    )
    message = result.allure.message("test_device[emulator-kf[defects=nosuch]]")
    assert "unknown defect(s) nosuch" in message
    assert "reprint_creates_new_document" in message  # the known ones are listed
    assert "Traceback" not in result.out


def test_unknown_defect_is_broken_in_allure(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("--kkt", "emulator:kf?defects=nosuch", "-k", "test_device")
    assert result.allure.status("test_device[emulator-kf[defects=nosuch]]") == "broken"


# ------------------------------------------------------------------------------------------
# seeded defects: the real scenario passes on the correct emulator and catches the defect


def test_seeded_defect_is_caught_by_the_no_paper_scenario(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    target = f"{NO_PAPER_SCENARIOS}::test_paper_out_mid_receipt"
    correct = run(target, "--kkt", "emulator:kf")
    correct.result.assert_outcomes(passed=1)
    [passed] = correct.allure.results  # named by its @allure.title
    assert passed["status"] == "passed"
    assert passed["fullName"].endswith("test_no_paper#test_paper_out_mid_receipt")
    seeded = run(target, "--kkt", "emulator:kf?defects=reprint_creates_new_document")
    seeded.result.assert_outcomes(failed=1)
    seeded.result.stdout.re_match_lines(
        [r"^FAILED .*test_no_paper\.py::test_paper_out_mid_receipt\[emulator-kf\[defects=reprint_creates_new_document\]\]"]
    )
    [failed] = seeded.allure.results
    assert failed["status"] == "failed"  # a product regression, not a broken stand
    assert failed["fullName"] == passed["fullName"]
    labels = {label["name"]: label["value"] for label in failed["labels"]}
    assert labels["kkt_spec"] == "emulator:kf?defects=reprint_creates_new_document"
    failed_steps = [step["name"] for step in failed["steps"] if step["status"] == "failed"]
    assert failed_steps and "второго ФД нет" in failed_steps[-1], failed_steps


def test_destructive_operation_on_a_real_device_is_refused_before_sending(pytester: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    """DESIGN "Safety": an unmarked scenario that re-registers a url: device gets a clear refusal, nothing sent."""
    from devices.emulator.build import build_emulator
    from devices.emulator.serve import serve
    from devices.pirit.emulator import PiritFrontEnd

    emulator = build_emulator("kf")
    server = serve(lambda: PiritFrontEnd(emulator.core), "tcp://127.0.0.1:0")
    try:
        pytester.makepyfile(
            test_scenario="""
from harness.device import TaxSystem

def test_device(kkt):
    kkt.reregister(TaxSystem.OSN)
"""
        )
        result = run("--kkt", f"url:{server.url}#model=kf")
        assert result.allure.status("test_device[url-kf]") == "broken"
        assert "SafetyRefusal" in result.allure.message("test_device[url-kf]")
        assert emulator.core.fn.registrations_done == 1  # nothing reached the register
    finally:
        server.close()
