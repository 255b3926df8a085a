"""Evidence survives a test that does not end normally: killed by pytest-timeout, stopped by
Ctrl-C, its emulator crashed, its link dropped — the wire trace, journal and tape are still
attached, and the result never reads passed."""

from __future__ import annotations

import pytest

from .plugin_helpers import JOURNAL, TAPE, TRACE, trace_rows

pytest_plugins = ["pytester"]

STOPPED = """
import threading

import pytest


@pytest.mark.timeout(1, func_only=True)  # the body hangs, not the set-up of a loaded machine
def test_killed_by_timeout(kkt):
    kkt.open_shift()
    threading.Event().wait(30)  # a hang: only pytest-timeout ends it


def test_emulator_crashed(kkt, kkt_device):
    kkt.open_shift()
    kkt_device.emulator.close()
    kkt.status()
"""

INTERRUPTED = """
def test_interrupted(kkt):
    kkt.open_shift()
    raise KeyboardInterrupt
"""


def test_a_hung_or_crashed_test_keeps_its_evidence(pytester: pytest.Pytester, run) -> None:
    pytester.makepyfile(test_stopped=STOPPED)
    result = run("--kkt", "emulator:kf", "--device-timeout-scale", "0.05")
    for name, status in (
        ("test_killed_by_timeout[emulator-kf]", "failed"),
        ("test_emulator_crashed[emulator-kf]", "broken"),
    ):
        assert result.allure.status(name) == status, name
        evidence = result.allure.attachments(name)
        assert {TRACE, JOURNAL, TAPE} <= set(evidence), (name, sorted(evidence))
        places = result.allure.placed(name)
        assert all(places[k] == ["test"] for k in (TRACE, JOURNAL, TAPE)), (name, places)  # on the test, once
        assert any(" open shift " in row.decoded for row in trace_rows(evidence[TRACE])), name
        assert "ОТКРЫТИИ СМЕНЫ" in evidence[TAPE], name
        assert "смена открыта" in evidence[JOURNAL], name
    assert "Timeout" in result.allure.message("test_killed_by_timeout[emulator-kf]")
    assert "LinkDisconnected" in result.allure.message("test_emulator_crashed[emulator-kf]")


def test_a_test_stopped_by_ctrl_c_is_broken_with_its_evidence(pytester: pytest.Pytester, run) -> None:
    pytester.makepyfile(test_interrupted=INTERRUPTED)
    result = run("--kkt", "emulator:kf")
    name = "test_interrupted[emulator-kf]"
    assert result.allure.status(name) == "broken"  # allure-pytest alone files it as passed
    assert "KeyboardInterrupt" in result.allure.message(name)
    evidence = result.allure.attachments(name)
    assert {TRACE, JOURNAL, TAPE} <= set(evidence), sorted(evidence)
    places = result.allure.placed(name)
    assert all(places[k] == ["test"] for k in (TRACE, JOURNAL, TAPE)), places  # on the test, once
    assert "ОТКРЫТИИ СМЕНЫ" in evidence[TAPE]
