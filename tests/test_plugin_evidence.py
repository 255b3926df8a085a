"""harness.plugin through pytester: the Allure evidence of every device test — labels, the wire
trace, journal and tape attachments, device operations as steps — and the environment,
categories and executor files (also under xdist; none without ``--alluredir``).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import struct
import subprocess
import sys

import pytest

from devices.emulator.profiles import PROFILES
from harness import families
from harness.leases import host_name

from .plugin_helpers import (
    DEVICE_SCENARIO,
    INNER_TIMEOUT,
    JOURNAL,
    LATENCY,
    OUTCOME_SCENARIO,
    PIRIT_MODELS,
    PNG_SIGNATURE,
    RUN_TIMEOUT,
    TAPE,
    TAPE_IMAGE,
    TRACE,
    AllureResults,
    latency_rows,
    load_properties,
    trace_rows,
)

pytest_plugins = ["pytester"]


# ------------------------------------------------------------------------------------------
# evidence: labels, attachments, steps, environment files


def test_labels_and_evidence_on_every_test(pytester: pytest.Pytester, run) -> None:
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
        assert labels["testname"] == [name], name
        assert labels["tag"] == [families.model(model).title], name
        evidence = result.allure.attachments(name)  # passed, failed and broken tests alike
        assert {TRACE, JOURNAL, TAPE} <= set(evidence), (name, sorted(evidence))
        assert all(evidence[k].strip() for k in (TRACE, JOURNAL, TAPE)), name
        places = result.allure.placed(name)
        assert all(places[k] == ["test"] for k in (TRACE, JOURNAL, TAPE)), (name, places)  # once, on the test
        assert result.allure.attachment_type(name, TRACE) == "text/csv", name
        rows = trace_rows(evidence[TRACE])
        sent = [r for r in rows if r.direction == "→ ККТ"]
        assert sent and all(re.fullmatch(r"\+\d+\.\d{6}", r.t) for r in rows), name
        assert all(re.fullmatch(r"02( [0-9A-F]{2})+", r.hex) for r in sent), name  # raw bytes, upper-case hex ...
        assert any(" status " in r.decoded for r in sent), name  # ... with decoded frames beside them
        assert any(r.direction == "← ККТ" for r in rows), name
        assert "включение" in evidence[JOURNAL], name
        assert "power on" not in evidence[JOURNAL], name  # the journal reads in Russian
    opened = result.allure.attachments("test_device[emulator-kf]")
    assert "ОТКРЫТИИ СМЕНЫ 1" in opened[TAPE]
    assert "смена открыта" in opened[JOURNAL]
    assert result.allure.attachments("test_assertion[emulator-dkf]")[TAPE] == "(ничего не напечатано)"
    # the attachment files themselves are in the results directory: one trace per device test
    assert len(list(result.allure.path.glob("*-attachment.csv"))) == 2 * len(device_tests)  # trace, times
    assert len(list(result.allure.path.glob("*-attachment.txt"))) >= 2 * len(device_tests)


def test_device_operations_are_allure_steps(pytester: pytest.Pytester, run) -> None:
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


def test_environment_categories_executor(pytester: pytest.Pytester, run) -> None:
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


def test_environment_lists_devices_under_xdist(pytester: pytest.Pytester, run) -> None:
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("-n", "2", "--kkt", "emulator:kf", "--kkt", "emulator:dkf")
    result.result.assert_outcomes(passed=3)
    props = load_properties((result.allure.path / "environment.properties").read_text(encoding="ascii"))
    assert props["kkt.specs"] == "emulator:kf emulator:dkf"
    assert props.get("emulator-kf.model") == "kf"
    assert props.get("emulator-dkf.model") == "dkf"


# ------------------------------------------------------------------------------------------
# the report a QA engineer signs a release with: titles, parameters, evidence on the test,
# tidy fixture rows, expected refusals, failures in words (one inner run, read by several tests)

EVIDENCE_SCENARIO = """
from decimal import Decimal

import allure
import pytest

from harness.device import Capability, Item, PaperState
from harness.errors import CoverOpen, NoPaper
from harness.plugin import expect_refusal

SUGAR = Item("Сахар", Decimal("100.00"))


@pytest.fixture
def broken_after(kkt):
    raise RuntimeError("a fixture of the project broke")


@allure.title("Продажа пробита")
def test_sale(kkt):
    kkt.open_shift()
    kkt.sell([SUGAR])


def test_expected_refusal(kkt, lab):
    kkt.open_shift()
    lab.paper(PaperState.OUT)
    with expect_refusal(NoPaper):
        kkt.sell([SUGAR])


def test_other_refusal(kkt, lab):
    kkt.open_shift()
    lab.paper(PaperState.OUT)
    with expect_refusal(CoverOpen):
        kkt.sell([SUGAR])


def test_unexpected_refusal(kkt, lab):
    kkt.open_shift()
    lab.paper(PaperState.OUT)
    kkt.sell([SUGAR])


def test_refusal_that_never_came(kkt):
    kkt.open_shift()
    with expect_refusal(NoPaper):
        kkt.sell([SUGAR])


def test_fd_number(kkt):
    assert kkt.fn().last_fd_number == 99


def test_kkt_is_none(kkt):
    assert kkt is None


def test_plain_python():
    assert [1, 2] == [1, 3]


def test_broken_fixture(kkt, broken_after):
    pass


@pytest.mark.requires(Capability.JOURNAL)
def test_needs_journal(kkt):
    assert kkt.journal()
"""

EVIDENCE_MODELS = ("kf", "atol")  # both wires: Pirit and ATOL
SALE_STEP = "Пробить чек продажи: [Сахар 1×100.00]"
EXPECTED_NO_PAPER = {
    "kf": "Ожидаемый отказ ККТ: «нет бумаги» (NoPaper: end of paper (pirit, command 0x30, code 0x08))",
    "atol": "Ожидаемый отказ ККТ: «нет бумаги» (NoPaper: no paper (atol, command 92h, code 103))",
}
SENT = {"kf": ("0x23 open shift", "0x30 open document"), "atol": ("9Ah OPEN_SHIFT", "92h OPEN_RECEIPT")}
EVIDENCE_TYPES = {
    TRACE: "text/csv",
    JOURNAL: "text/plain",
    TAPE: "text/plain",
    TAPE_IMAGE: "image/png",
    LATENCY: "text/csv",
}


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> AllureResults:
    """EVIDENCE_SCENARIO on Касса Ф and АТОЛ 30Ф, as the ``run`` fixture runs it (a subprocess
    loading kkt-hil and allure-pytest through their entry points), once for the tests below."""
    where = tmp_path_factory.mktemp("evidence")
    (where / "test_evidence.py").write_text(EVIDENCE_SCENARIO, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "KKT_HIL_BUILD")}
    devices = [a for m in EVIDENCE_MODELS for a in ("--kkt", f"emulator:{m}")]
    alluredir = where / "allure-results"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", INNER_TIMEOUT]
    command += [f"--alluredir={alluredir}", f"--basetemp={where / 'tmp'}", *devices, "test_evidence.py"]
    proc = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    summary = proc.stdout.splitlines()[-1] if proc.stdout else proc.stderr
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout[-3000:] + proc.stderr[-3000:]
    n = len(EVIDENCE_MODELS)
    assert re.search(rf"\b{5 * n + 1} failed, {2 * n} passed, {n} skipped, {n} errors\b", summary), summary
    return AllureResults.load(alluredir)


def parameters(results: AllureResults, name: str) -> list[dict[str, object]]:
    return list(results.get(name).get("parameters", []))


@pytest.mark.parametrize("model", EVIDENCE_MODELS)
def test_result_titles_name_the_register(evidence: AllureResults, model: str) -> None:
    title = families.model(model).title
    firmware = PROFILES[model].firmware
    sale = f"test_sale[emulator-{model}]"
    assert evidence.get(sale)["name"] == f"Продажа пробита — {title} {firmware}"  # the @allure.title, then the register
    labels = evidence.labels(sale)
    assert labels["testname"] == [sale]
    assert labels["scenario"] == ["Продажа пробита"]
    assert labels["model"] == [model]
    assert labels["model_title"] == [title]
    assert labels["tag"] == [title]  # the tag names the register as a person does, not by its id
    untitled = f"test_fd_number[emulator-{model}]"  # no @allure.title: the function's name
    assert evidence.get(untitled)["name"] == f"test_fd_number — {title} {firmware}"
    assert evidence.labels(untitled)["scenario"] == ["test_fd_number"]
    # a result whose set-up failed still names its register
    assert evidence.status(f"test_broken_fixture[emulator-{model}]") == "broken"
    assert evidence.get(f"test_broken_fixture[emulator-{model}]")["name"] == f"test_broken_fixture — {title} {firmware}"
    # a test without a register keeps pytest's name, and needs no testname label
    assert evidence.get("test_plain_python")["name"] == "test_plain_python"
    assert "testname" not in evidence.labels("test_plain_python")


def test_a_title_names_the_register_even_when_it_never_opened(pytester: pytest.Pytester, run) -> None:
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    spec = "emulator:kf?firmware=2.25.0&faults=at:tx:1:0:disconnect"  # the link drops while connecting
    result = run("--kkt", spec, "--device-timeout-scale", "0.05", "-k", "test_device")
    [name] = [n for n in result.allure.names if n.startswith("test_device[")]
    assert result.allure.status(name) == "broken"
    assert result.allure.get(name)["name"] == "test_device — Касса Ф 2.25.0"  # the firmware the spec asked for
    labels = result.allure.labels(name)
    assert labels["model_title"] == ["Касса Ф"] and labels["testname"] == [name] and labels["kkt_spec"] == [spec]
    assert "firmware" not in labels  # never read from the register


@pytest.mark.parametrize("model", EVIDENCE_MODELS)
def test_parameters_are_plain_values(evidence: AllureResults, model: str) -> None:
    name = f"test_sale[emulator-{model}]"
    [fn_kind] = re.findall(r"^\d{16} \((fn\d+)\)$", evidence.labels(name)["fn"][0])
    register = f"{families.model(model).title} {PROFILES[model].firmware}"
    assert parameters(evidence, name) == [
        {"name": "kkt_device", "value": f"emulator:{model}", "mode": "hidden"},
        {"name": "Устройство", "value": f"emulator:{model}", "excluded": True},
        {"name": "Хост", "value": host_name(), "excluded": True},  # merged reports: where it ran, not in the history id
        {"name": "ККТ", "value": register, "excluded": True},  # a new firmware continues the register's history
        {"name": "ФН", "value": fn_kind, "excluded": True},
    ]


@pytest.mark.parametrize("model", EVIDENCE_MODELS)
def test_the_evidence_is_on_the_test_itself(evidence: AllureResults, model: str) -> None:
    name = f"test_sale[emulator-{model}]"
    assert evidence.status(name) == "passed"
    assert evidence.placed(name) == {attachment: ["test"] for attachment in EVIDENCE_TYPES}  # once, on the test
    assert {a: evidence.attachment_type(name, a) for a in EVIDENCE_TYPES} == EVIDENCE_TYPES
    attached = evidence.attachments(name)
    assert "Сахар" in attached[TAPE]
    image = bytes.fromhex(attached[TAPE_IMAGE])
    assert image.startswith(PNG_SIGNATURE) and image[12:16] == b"IHDR"
    width, height = struct.unpack(">II", image[16:24])
    assert width > 100 and height > 100, (width, height)
    timings = latency_rows(attached[LATENCY])
    assert set(SENT[model]) <= set(timings), sorted(timings)  # the commands the test sent, by name
    for command, timing in timings.items():
        samples = timing.samples_ms
        assert timing.count == len(samples) >= 1 and all(s >= 0 for s in samples), command
        assert timing.max_ms == max(samples), command
        assert timing.median_ms == pytest.approx(statistics.median(samples), abs=1e-3), command
    if model == "kf":  # every request on the wire is timed once
        sent = [r for r in trace_rows(attached[TRACE]) if r.direction == "→ ККТ" and " 23 open shift " in r.decoded]
        assert len(sent) == timings["0x23 open shift"].count == 1
    assert evidence.attachments("test_plain_python") == {}  # no register, no evidence


@pytest.mark.parametrize("model", EVIDENCE_MODELS)
def test_fixture_rows_are_tidy(evidence: AllureResults, model: str) -> None:
    # a test whose body ran: its evidence on the test, and no fixture rows at all
    for test in ("test_sale", "test_expected_refusal", "test_fd_number"):
        assert evidence.fixtures(f"{test}[emulator-{model}]") == [], test
    # the body never ran (a fixture of the project broke after the register opened): the
    # evidence is attached once, in the teardown of the register, under a readable name
    broken = f"test_broken_fixture[emulator-{model}]"
    rows = {row["name"]: row for row in evidence.fixtures(broken)}
    assert set(rows) == {"ККТ: подключение и подготовка: после теста", "broken_after", "broken_after::<lambda>"}, (
        sorted(rows)
    )
    assert rows["broken_after"]["status"] == "broken"  # the project's own fixture rows, as allure-pytest wrote them
    assert rows["ККТ: подключение и подготовка: после теста"]["status"] == "passed"
    assert evidence.placed(broken) == {
        a: ["fixture ККТ: подключение и подготовка: после теста"] for a in (TRACE, JOURNAL, TAPE, LATENCY)
    }
    assert "RuntimeError: a fixture of the project broke" in evidence.message(broken)


def test_a_skip_at_set_up_keeps_its_evidence_in_the_set_up_row(evidence: AllureResults) -> None:
    name = "test_needs_journal[emulator-kf]"
    assert evidence.status(name) == "skipped"
    assert evidence.message(name) == "Skipped: Устройство не умеет: у устройства kf нет: journal"
    [row] = evidence.fixtures(name)
    assert (row["name"], row["status"]) == ("ККТ: подключение и подготовка", "skipped")
    assert evidence.placed(name) == {
        a: ["fixture ККТ: подключение и подготовка"] for a in (TRACE, JOURNAL, TAPE, LATENCY)
    }
    assert any(r.direction == "→ ККТ" for r in trace_rows(evidence.attachments(name)[TRACE]))  # the register was asked


@pytest.mark.parametrize("model", EVIDENCE_MODELS)
def test_an_expected_refusal_reads_as_a_passed_step(evidence: AllureResults, model: str) -> None:
    name = f"test_expected_refusal[emulator-{model}]"
    assert evidence.status(name) == "passed"
    [sale] = [s for s in evidence.get(name)["steps"] if s["name"] == SALE_STEP]
    assert sale["status"] == "passed"
    assert [(s["name"], s["status"]) for s in sale.get("steps", [])] == [(EXPECTED_NO_PAPER[model], "passed")]
    assert all(s["status"] == "passed" for s in evidence.steps(name))


@pytest.mark.parametrize("model", EVIDENCE_MODELS)
def test_an_unexpected_refusal_still_fails(evidence: AllureResults, model: str) -> None:
    for test in ("test_other_refusal", "test_unexpected_refusal"):
        name = f"{test}[emulator-{model}]"
        assert evidence.status(name) == "failed", name  # the register's behaviour, not the stand
        assert "NoPaper: " in evidence.message(name), name
        [sale] = [s for s in evidence.get(name)["steps"] if s["name"] == SALE_STEP]
        assert sale["status"] == "failed", name
        assert not [s for s in evidence.steps(name) if s["name"].startswith("Ожидаемый отказ")], name
    never = f"test_refusal_that_never_came[emulator-{model}]"
    assert evidence.status(never) == "failed"
    assert evidence.message(never) == "Failed: ожидался отказ ККТ «нет бумаги», а операция выполнена без ошибки"


@pytest.mark.parametrize("model", EVIDENCE_MODELS)
def test_a_failed_assert_is_explained_in_words(evidence: AllureResults, model: str) -> None:
    fd = f"test_fd_number[emulator-{model}]"
    assert evidence.status(fd) == "failed"
    assert evidence.message(fd) == "AssertionError: assert получено 1, ожидалось 99"
    title = families.model(model).title
    shown = evidence.message(f"test_kkt_is_none[emulator-{model}]")
    assert re.fullmatch(rf"AssertionError: assert получено <ККТ {title} на \S+>, ожидалось нет \(None\)", shown), shown
    # outside a scenario on a register, pytest's own explanation
    plain = evidence.message("test_plain_python")
    assert plain.startswith("AssertionError: assert [1, 2] == [1, 3]") and "At index 1 diff: 2 != 3" in plain
    assert "получено" not in plain
