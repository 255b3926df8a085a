"""harness.plugin through pytester: the ``lab`` fixture on a ``url:`` device served in this
process — unavailable without a control channel (the scenario is skipped with the reason, after
running on the device up to the lab request), working over one, and a dead control channel that
does not break a passed test.
"""

from __future__ import annotations

import pytest

from harness.device import PaperState

from .plugin_helpers import JOURNAL, TAPE, TRACE, ServedDevice, trace_rows

pytest_plugins = ["pytester"]


# ------------------------------------------------------------------------------------------
# the lab: unavailable → skipped with the reason; with a control channel → works


LAB_SCENARIO = """
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
"""


def test_unavailable_lab_skips_with_the_reason(pytester: pytest.Pytester, run, served_kf: ServedDevice) -> None:
    pytester.makepyfile(test_lab_scenario=LAB_SCENARIO)
    result = run("--kkt", served_kf.spec(with_control=False))
    result.result.assert_outcomes(skipped=1)
    reason = "Стенд не умеет: нельзя управлять бумагой: у этого устройства нет управления стендом"
    result.result.stdout.re_match_lines(
        [rf"^SKIPPED \[1\] .*: {reason} \(не настроены источник питания, бумага, часы\)$"]
    )
    name = "test_paper_out[url-kf]"
    assert result.allure.status(name) == "skipped"
    assert result.allure.message(name).startswith(f"Skipped: {reason}")
    # the scenario really ran on the device up to the lab request
    assert served_kf.emulator.core.shift.is_open is True
    assert served_kf.emulator.core.printer.paper is PaperState.OK
    labels = result.allure.labels(name)
    assert labels["model"] == ["kf"]
    assert labels["serial"] == [served_kf.emulator.core.serial]
    assert labels["transport"] == [served_kf.url]
    evidence = result.allure.attachments(name)
    assert any(" status " in row.decoded for row in trace_rows(evidence[TRACE]))
    assert evidence[JOURNAL].startswith("(журнал недоступен: нет журнала устройства: ")
    assert evidence[TAPE].startswith("(напечатанную ленту не прочитать: у этого устройства нет управления стендом")
    assert all(result.allure.placed(name)[k] == ["test"] for k in (TRACE, JOURNAL, TAPE))  # the body ran


def test_lab_over_a_control_channel(pytester: pytest.Pytester, run, served_kf: ServedDevice) -> None:
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
    assert "смена открыта" in evidence[JOURNAL]
    assert "бумага: нет" in evidence[JOURNAL]
    assert "ОТКРЫТИИ СМЕНЫ" in evidence[TAPE]
    assert result.allure.labels(name)["transport"] == [served_kf.url]


def test_dead_control_channel_does_not_break_a_passed_test(
    pytester: pytest.Pytester, run, served_kf: ServedDevice, dead_control_url: str
) -> None:
    pytester.makepyfile(test_x="def test_status(kkt):\n    assert kkt.status().shift.value\n")
    result = run("--kkt", f"url:{served_kf.url}#model=kf&control={dead_control_url}")
    result.result.assert_outcomes(passed=1)
    evidence = result.allure.attachments("test_status[url-kf]")
    assert evidence[JOURNAL].startswith("(журнал недоступен: emulator control channel failed during 'journal'")
