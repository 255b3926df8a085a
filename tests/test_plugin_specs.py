"""harness.plugin through pytester: loading through the entry point, one run per device spec (all
known emulators by default, in the spec order), failed (product) versus broken (stand)
outcomes, and malformed specs, timeout scales and unknown defects as usage or setup errors.
"""

from __future__ import annotations

import re

import pytest

from harness.families import default_models, model_ids

from .plugin_helpers import DEVICE_SCENARIO, OUTCOME_SCENARIO, PIRIT_MODELS, RUN_TIMEOUT, outcome_lines

pytest_plugins = ["pytester"]


# ------------------------------------------------------------------------------------------
# loading and parametrization


def test_plugin_is_loaded_through_the_entry_point(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help", timeout=RUN_TIMEOUT)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        ["*cash register HIL stand*", "*--kkt=SPEC*", "*--allow-destructive*", "*--device-timeout-scale=F*"]
    )
    markers = pytester.runpytest_subprocess("--markers", timeout=RUN_TIMEOUT)
    markers.stdout.fnmatch_lines(
        [
            "@pytest.mark.destructive*",
            "@pytest.mark.requires(*capabilities)*",
            "@pytest.mark.models(*ids)*",
            "@pytest.mark.firmware(min=...)*",
        ]
    )


def test_runs_once_per_known_emulator_by_default(pytester: pytest.Pytester, run) -> None:
    known = model_ids()
    assert set(PIRIT_MODELS) <= set(known)
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("-v")
    expected = [f"test_device[emulator-{m}]" for m in default_models() if m in known]
    assert result.allure.names == sorted([*expected, "test_without_device"])
    collected = [m.group(1) for line in result.result.outlines if (m := re.match(r"^test_scenario\.py::(\S+) ", line))]
    assert collected == [*expected, "test_without_device"]  # one run each, in the spec order
    outcomes = outcome_lines(result)
    for model in PIRIT_MODELS:
        assert outcomes[f"test_device[emulator-{model}]"] == "PASSED"
        assert result.allure.status(f"test_device[emulator-{model}]") == "passed"
    assert outcomes["test_without_device"] == "PASSED"


def test_every_known_emulator_passes_a_plain_scenario(pytester: pytest.Pytester, run) -> None:
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("-k", "test_device")
    statuses = {name: result.allure.status(name) for name in result.allure.names}
    specs = [a for m in model_ids() for a in ("--kkt", f"emulator:{m}")]
    result = run("-k", "test_device", *specs)
    statuses = {name: result.allure.status(name) for name in result.allure.names}
    assert statuses == {f"test_device[emulator-{m}]": "passed" for m in model_ids()}
    result.result.assert_outcomes(passed=len(model_ids()), deselected=1)


def test_one_spec_runs_once(pytester: pytest.Pytester, run) -> None:
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("--kkt", "emulator:kf")
    result.result.assert_outcomes(passed=2)
    result.result.stdout.fnmatch_lines(["plugins:*kkt-hil-*"])  # loaded through its pytest11 entry point
    assert result.allure.names == ["test_device[emulator-kf]", "test_without_device"]


def test_several_specs_run_in_order(pytester: pytest.Pytester, run) -> None:
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
    # each result's title names the register and the firmware it really ran
    assert result.allure.get("test_device[emulator-kf[firmware=2.25.0]]")["name"] == "test_device — Касса Ф 2.25.0"
    assert result.allure.get("test_device[emulator-start]")["name"] == "test_device — Дримкас Старт 10.50.1"


# ------------------------------------------------------------------------------------------
# outcomes: failed (product) vs broken (stand)


def test_failed_versus_broken(pytester: pytest.Pytester, run) -> None:
    pytester.makepyfile(test_outcomes=OUTCOME_SCENARIO)
    result = run("--kkt", "emulator:kf", "--device-timeout-scale", "0.05")
    result.result.assert_outcomes(passed=1, failed=4)
    allure = result.allure
    assert allure.status("test_assertion[emulator-kf]") == "failed"
    assert "paper should be out" in allure.message("test_assertion[emulator-kf]")
    assert "получено бумага есть, ожидалось нет бумаги" in allure.message("test_assertion[emulator-kf]")  # in words
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
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--device-timeout-scale={scale}", timeout=RUN_TIMEOUT
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.errlines if line.strip()] == ["ERROR: --device-timeout-scale must be positive"]


# A spec that parses but names an unknown defect: the scenario never ran, so it is not a test
# failure: pytest reports an ERROR at setup naming the defect (and the known ones), and Allure
# shows it as *broken* (a configuration problem, DESIGN "Errors"), never as failed product behaviour.


def test_unknown_defect_is_refused_before_any_test_naming_it(pytester: pytest.Pytester, run) -> None:
    """The preflight builds every emulator once before any test: a bad spec is one line, no test
    runs and no result is written (not one setup error per test)."""
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("--kkt", "emulator:kf?defects=nosuch", "-k", "test_device")
    assert result.result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.result.errlines if line.strip()]
    assert len(errors) == 1, errors
    assert re.fullmatch(
        r"ERROR: emulator:kf\?defects=nosuch: unknown defect\(s\) nosuch \(known: .*reprint_creates_new_document.*\)",
        errors[0],
    ), errors[0]
    assert "Traceback" not in result.out
    assert result.allure.results == []


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("emulator:kf?nosuchsetting=1", "unknown profile setting 'nosuchsetting'"),
        ("emulator:kf?firmware=abc", "bad firmware version 'abc'"),
        ("emulator:kf?tax_mismatch_code=0x59", "tax_mismatch_code takes one of fn, param, not '0x59'"),
        ("url:socket://127.0.0.1:1#model=kf", "cannot open socket://127.0.0.1:1"),
    ],
)
def test_every_spec_is_checked_before_any_test(pytester: pytest.Pytester, run, spec: str, says: str) -> None:
    pytester.makepyfile(test_scenario=DEVICE_SCENARIO)
    result = run("--kkt", "emulator:dkf", "--kkt", spec)
    assert result.result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.result.errlines if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: {spec}: ") and says in errors[0], errors
    assert result.allure.results == []  # not even the good spec's tests ran
