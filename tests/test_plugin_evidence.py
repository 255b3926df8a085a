"""harness.plugin through pytester: the Allure evidence of every device test — labels, the wire
trace, journal and tape attachments, device operations as steps — and the environment,
categories and executor files (also under xdist; none without ``--alluredir``).
"""

from __future__ import annotations

import json
import re

import pytest

from devices.emulator.profiles import PROFILES

from .plugin_helpers import (
    DEVICE_SCENARIO,
    JOURNAL,
    OUTCOME_SCENARIO,
    PIRIT_MODELS,
    RUN_TIMEOUT,
    TAPE,
    TRACE,
    load_properties,
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
