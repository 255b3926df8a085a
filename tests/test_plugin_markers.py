"""harness.plugin through pytester: the ``models``, ``requires``, ``firmware`` and ``destructive``
markers (skips with reasons), a seeded emulator defect caught by the real no-paper scenario as a
failed test, and the safety refusal of a destructive operation on a real (``url:``) device
before anything is sent.
"""

from __future__ import annotations

import pytest

from devices.emulator.profiles import PROFILES

from .plugin_helpers import NO_PAPER_SCENARIOS, PIRIT_MODELS, ServedDevice

pytest_plugins = ["pytester"]


# ------------------------------------------------------------------------------------------
# markers

MARKER_SCENARIO = """
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
"""


def test_markers_skip_with_reasons(pytester: pytest.Pytester, run) -> None:
    pytester.makepyfile(test_markers=MARKER_SCENARIO)
    result = run(*[a for m in PIRIT_MODELS for a in ("--kkt", f"emulator:{m}")])
    result.result.assert_outcomes(passed=5, skipped=7)
    allure = result.allure
    assert allure.status("test_dkf_only[emulator-dkf]") == "passed"
    for model in ("kf", "start"):
        name = f"test_dkf_only[emulator-{model}]"
        assert allure.status(name) == "skipped"
        assert allure.message(name) == f"Skipped: Устройство не умеет: сценарий для моделей dkf; устройство — {model}"
    for model in PIRIT_MODELS:
        name = f"test_needs_journal[emulator-{model}]"
        assert allure.status(name) == "skipped"
        assert allure.message(name) == f"Skipped: Устройство не умеет: у устройства {model} нет: journal"
        assert allure.status(f"test_needs_what_pirit_has[emulator-{model}]") == "passed"
    for model in ("kf", "dkf"):
        name = f"test_new_firmware[emulator-{model}]"
        assert allure.status(name) == "skipped"
        assert allure.message(name) == f"Skipped: Устройство не умеет: прошивка {PROFILES[model].firmware} старше 9.0.0"
    assert allure.status("test_new_firmware[emulator-start]") == "passed"  # 10.50.1 >= 9.0.0, as versions
    result.result.stdout.re_match_lines(
        [
            r"^SKIPPED \[\d\] .*: Устройство не умеет: сценарий для моделей dkf; устройство — kf$",
            r"^SKIPPED \[\d\] .*: Устройство не умеет: у устройства kf нет: journal$",
            r"^SKIPPED \[\d\] .*: Устройство не умеет: прошивка 2\.26\.0 старше 9\.0\.0$",
        ],
        consecutive=False,
    )


def test_firmware_marker_reads_the_device(pytester: pytest.Pytester, run) -> None:
    pytester.makepyfile(
        test_fw='import pytest\n\n@pytest.mark.firmware(min="2.26.0")\ndef test_fw(kkt):\n    assert kkt.info()\n'
    )
    result = run("--kkt", "emulator:kf", "--kkt", "emulator:kf?firmware=2.25.0")
    result.result.assert_outcomes(passed=1, skipped=1)
    assert result.allure.status("test_fw[emulator-kf]") == "passed"
    old = "test_fw[emulator-kf[firmware=2.25.0]]"
    assert result.allure.status(old) == "skipped"
    assert result.allure.message(old) == "Skipped: Устройство не умеет: прошивка 2.25.0 старше 2.26.0"


DESTRUCTIVE_SCENARIO = """
import pytest


@pytest.mark.destructive
def test_destructive(kkt):
    assert kkt.status()
"""


def test_destructive_marker_on_a_real_device(pytester: pytest.Pytester, run, served_kf: ServedDevice) -> None:
    pytester.makepyfile(test_d=DESTRUCTIVE_SCENARIO)
    spec = served_kf.spec(with_control=False)
    refused = run("--kkt", spec, "--kkt", "emulator:kf")
    refused.result.assert_outcomes(passed=1, skipped=1)
    assert refused.allure.status("test_destructive[emulator-kf]") == "passed"
    assert refused.allure.message("test_destructive[url-kf]") == (
        "Skipped: Безопасность: разрушающий сценарий на реальном устройстве: только --allow-destructive, жертвенный ФН"
    )
    allowed = run("--kkt", spec, "--allow-destructive")
    allowed.result.assert_outcomes(errors=1)  # url: cannot prove a sacrificial ФН: refused, broken
    assert allowed.allure.status("test_destructive[url-kf]") == "broken"
    assert "sacrificial" in allowed.allure.message("test_destructive[url-kf]")
    # the preflight reached it once (reads and "start of work"); nothing else was sent to it
    assert {e.event for e in served_kf.emulator.core.journal} <= {"power on", "start of work"}


# ------------------------------------------------------------------------------------------
# seeded defects: the real scenario passes on the correct emulator and catches the defect


def test_seeded_defect_is_caught_by_the_no_paper_scenario(pytester: pytest.Pytester, run) -> None:
    target = f"{NO_PAPER_SCENARIOS}::test_paper_out_mid_receipt"
    correct = run(target, "--kkt", "emulator:kf")
    correct.result.assert_outcomes(passed=1)
    [passed] = correct.allure.results  # named by its @allure.title and the register it ran on
    title = "Чек записан в ФН, печать продолжается после заправки, второго документа нет"
    assert passed["name"] == f"{title} — Касса Ф {PROFILES['kf'].firmware}"
    assert correct.allure.labels("test_paper_out_mid_receipt[emulator-kf]")["scenario"] == [title]
    assert passed["status"] == "passed"
    assert passed["fullName"].endswith("test_no_paper#test_paper_out_mid_receipt")
    seeded = run(target, "--kkt", "emulator:kf?defects=reprint_creates_new_document")
    seeded.result.assert_outcomes(failed=1)
    seeded.result.stdout.re_match_lines(
        [
            r"^FAILED .*test_no_paper\.py::test_paper_out_mid_receipt\[emulator-kf\[defects=reprint_creates_new_document\]\]"
        ]
    )
    [failed] = seeded.allure.results
    assert failed["status"] == "failed"  # a product regression, not a broken stand
    assert failed["fullName"] == passed["fullName"]
    assert failed["name"] == passed["name"]  # the same scenario on the same register and firmware
    labels = {label["name"]: label["value"] for label in failed["labels"]}
    assert labels["kkt_spec"] == "emulator:kf?defects=reprint_creates_new_document"
    failed_steps = [step["name"] for step in failed["steps"] if step["status"] == "failed"]
    assert failed_steps and "второго ФД нет" in failed_steps[-1], failed_steps


def test_destructive_operation_on_a_real_device_is_refused_before_sending(pytester: pytest.Pytester, run) -> None:
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
