"""The Allure 3 report as a reader sees it: headless Chromium opens the single-file report OFFLINE
(``file://``, no server, no network) and the tests assert on what the page SHOWS.

* the tree (the report's default view) shows every result of a real run with its register:
  the title ends with `` — <model title> <firmware>`` (titles from ``devices/models.py``);
* a test result's page lists the evidence attachments, and the tape image is an ``<img>``;
* the categories page names every category and files each result under the right one (from a
  synthetic results directory: Allure shows only categories that have results).

Allure 3 marks its parts with ``data-testid``; those are what the tests read.  Tree groups, steps
and attachments are collapsed until clicked, so the pages that need it are driven through the
DevTools protocol (:class:`tests.browser.Browser`); the categories' names come straight from
``--dump-dom`` (:func:`tests.browser.render`).

A missing Chromium fails these tests (Debian package ``chromium``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devices.models import MODELS
from harness.report import generate_html

from .browser import Browser, BrowserError, Element, find_chromium, parse_html, read_results, render
from .cli_helpers import kkt_hil

ROOT = Path(__file__).resolve().parents[1]

# a real run is ~6 s and each page a few seconds; the deadlines below stop anything that hangs
pytestmark = pytest.mark.timeout(300)
RUN_TIMEOUT = 180.0
COMMAND_TIMEOUT = 30.0  # one DevTools command; every wait in the browser has its own deadline too

KKTS = ("emulator:kf", "emulator:atol")
SCENARIOS = ("test_idle_refusal", "test_paper_out_mid_receipt")
PAGE_SCENARIO = "test_paper_out_mid_receipt"  # prints a receipt: every kind of evidence is there

ATTACHMENTS = (
    "Трасса обмена",
    "Журнал ККТ",
    "Чековая лента",
    "Чековая лента (изображение)",
    "Время ответа ККТ (мс)",
)
IMAGE_ATTACHMENT = "Чековая лента (изображение)"

# category -> (status, message) of a synthetic result that belongs there; messages as
# allure-pytest writes them (ExceptionInfo.exconly(): "module.Class: text", "Skipped: reason")
CATEGORY_CASES = {
    "Дефект ККТ (поведение не соответствует ожиданию)": ("failed", "AssertionError: чек пробит без бумаги"),
    "Стенд/связь: нет ответа или ошибка канала": (
        "broken",
        "harness.errors.LinkTimeout: LinkTimeout: нет ответа ККТ за 5 с",
    ),
    "Ошибка стенда (harness)": ("broken", "harness.errors.HarnessError: HarnessError: не задан порт ККТ"),
    "Пропущено: устройство не умеет": ("skipped", "Skipped: Устройство не умеет: нет отложенной перерегистрации"),
    "Пропущено: безопасность (нужна жертвенная ККТ)": (
        "skipped",
        "Skipped: Безопасность: сценарий портит ФН, а ККТ не объявлена жертвенной",
    ),
    "Пропущено: нужно реальное время или оператор": (
        "skipped",
        "Skipped: Нужно реальное время или оператор: смена через полночь",
    ),
}

# --- what the pages look like (Allure 3.18 awesome) -----------------------------------------

# Allure 3.18's single-file page can start its app before the inline script that defines
# `window.allureReportData` has run; the app then fetches data/*.json from disk, which file://
# refuses, and the page stays empty or says "Failed to fetch".  harness.report.generate_html
# defines the data first, so the page must come up on its first load, every time.
LOAD_RACE = "document.body.innerText.includes('Failed to fetch')"
APP = "#app"  # the report's root element: everything it shows, without its inline data
TREE_READY = "document.querySelector('[data-testid=tree-leaf], [data-testid=tree-section]')"
RESULT_READY = "document.querySelector('[data-testid=test-result-info-title]')"
CATEGORIES_READY = "document.querySelector('[id^=\"cat:\"] [data-testid=tree-section-title]')"
# a tree group is open when its section has a tree-content sibling
CLOSED_TREE_GROUPS = """[...document.querySelectorAll('[data-testid=tree-section]')]
    .filter(s => !s.parentElement.querySelector(':scope > [data-testid=tree-content]'))
    .map(s => s.querySelector('[data-testid=tree-arrow]') || s)"""
# a step or attachment is open when its arrow icon carries the "--opened" class
CLOSED_STEPS_AND_ATTACHMENTS = """[...document.querySelectorAll(
        '[data-testid=test-result-step-arrow-button], [data-testid=test-result-attachment-header] > button')]
    .filter(b => !/--opened/.test(b.querySelector('svg')?.getAttribute('class') || ''))"""
# the router writes "#<id>/attachments" (it reads "#/<id>/attachments" as well)
ATTACHMENTS_TAB_OPEN = """document.querySelector('[data-testid=test-result-tab-attachments][aria-current=true]')
    && location.hash.replace(/^#\\/?/, '') === '{id}/attachments'"""
ATTACHMENT_HEADER = "document.querySelector('[data-testid=test-result-attachment-header]')"
ATTACHMENTS_LOADED = """[...document.querySelectorAll('[data-testid=test-result-attachment]')].every(a =>
        a.querySelector('[data-testid$="-attachment-content"], [data-testid$="-attachment-preview"]'))
    && [...document.images].every(i => i.complete)"""
# [attachment name, natural width] of every image shown inside an attachment
ATTACHMENT_IMAGES = """[...document.querySelectorAll('[data-testid=test-result-attachment] img')].map(i => [
    i.closest('[data-testid=test-result-attachment]')
     .querySelector('[data-testid=test-result-attachment-header] > button > span:last-child')?.textContent.trim(),
    i.naturalWidth])"""


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def chromium() -> str:
    """Chromium is required: missing, the tests FAIL with the package to install."""
    try:
        return find_chromium()
    except BrowserError as exc:
        missing = str(exc)
    pytest.fail(missing, pytrace=False)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """One headless Chromium for the module (each page is opened afresh, from about:blank)."""
    with Browser(timeout=COMMAND_TIMEOUT) as session:
        yield session


@dataclass(frozen=True)
class Report:
    results_dir: Path
    index: Path
    results: list[dict[str, Any]]

    def url(self, route: str = "") -> str:
        return self.index.as_uri() + (f"#/{route}" if route else "")


@pytest.fixture(scope="module")
def real_report(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """``kkt-hil run`` of two scenarios on two emulated registers, with its HTML report."""
    work = tmp_path_factory.mktemp("report-browser")
    results_dir, report_dir = work / "results", work / "report"
    argv = [*kkt_hil(), "run", *(f"--kkt={kkt}" for kkt in KKTS), "-k", " or ".join(SCENARIOS), "-q"]
    argv += ["--results", str(results_dir), "--report", str(report_dir)]
    try:
        proc = subprocess.run(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"kkt-hil run did not finish within {RUN_TIMEOUT:g} s: {' '.join(argv)}", pytrace=False)
    index = report_dir / "index.html"
    # a failing scenario still gives a report (exit 1); anything else is no report to look at
    assert proc.returncode in (0, 1) and index.is_file(), (
        f"kkt-hil run exited {proc.returncode} without a report:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    results = read_results(results_dir)
    wanted = {(scenario, kkt.split(":", 1)[1]) for scenario in SCENARIOS for kkt in KKTS}
    got = {(_function(r), _label(r, "model")) for r in results}
    assert got == wanted and len(results) == len(wanted), f"the run wrote results for {sorted(got)}"
    return Report(results_dir, index, results)


@pytest.fixture(scope="module")
def categories_report(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Report:
    """A report built by ``generate_html`` from one synthetic result per category."""
    work = tmp_path_factory.mktemp("report-categories")
    results_dir = work / "results"
    results_dir.mkdir()
    for number, (category, (status, message)) in enumerate(CATEGORY_CASES.items(), 1):
        _write_result(results_dir, name=_case_name(number, category), status=status, message=message)
    index = generate_html(results_dir, work / "report")
    return Report(results_dir, index, read_results(results_dir))


# --------------------------------------------------------------------------------------------
# the tree


def test_tree_shows_every_result_with_its_register(real_report: Report, browser: Browser) -> None:
    _open(browser, real_report.url(), ready=TREE_READY)
    browser.click_each(CLOSED_TREE_GROUPS)
    page = parse_html(browser.dom(APP))
    shown = {leaf.get("id"): _texts(leaf, "tree-leaf-title") for leaf in page.by_testid("tree-leaf")}

    problems = []
    for result in real_report.results:
        register = f"{MODELS[_label(result, 'model')].title} {_label(result, 'firmware')}"
        what = f"{_function(result)} on {_label(result, 'model')}"
        if result["id"] not in shown:
            problems.append(f"{what}: no tree entry #{result['id']}")
        elif not shown[result["id"]].endswith(f" — {register}"):
            problems.append(f"{what}: the tree shows {shown[result['id']]!r}, not '… — {register}'")
    assert not problems, "the tree does not show each result's register:\n  " + "\n  ".join(problems)


# --------------------------------------------------------------------------------------------
# a test result's page


@pytest.mark.parametrize("model", [kkt.split(":", 1)[1] for kkt in KKTS])
def test_result_page_shows_the_evidence(real_report: Report, browser: Browser, model: str) -> None:
    (result,) = [r for r in real_report.results if _function(r) == PAGE_SCENARIO and _label(r, "model") == model]
    # the Overview: setup, test body and teardown, every step and attachment opened
    _open(browser, real_report.url(result["id"]), ready=RESULT_READY)
    browser.click_each(CLOSED_STEPS_AND_ATTACHMENTS)
    with contextlib.suppress(BrowserError):  # the assertions below say what the page shows
        browser.wait_for(ATTACHMENTS_LOADED, timeout=10, what="the opened attachments")
    page = parse_html(browser.dom(APP))
    images = browser.evaluate(ATTACHMENT_IMAGES)
    # the Attachments tab ("Вложения"), as a reader gets there: a click; the route follows
    browser.evaluate("document.querySelector('[data-testid=test-result-tab-attachments]').click()")
    browser.wait_for(ATTACHMENTS_TAB_OPEN.format(id=result["id"]), timeout=5, what="the Attachments tab")
    with contextlib.suppress(BrowserError):
        browser.wait_for(ATTACHMENT_HEADER, timeout=5, what="an attachment")
    tab = parse_html(browser.dom(APP))

    title = _texts(page, "test-result-info-title")
    attachments = [_attachment_name(header) for header in page.by_testid("test-result-attachment-header")]
    missing = [name for name in ATTACHMENTS if name not in attachments]
    assert not missing, f"the page of {title!r} ({model}) does not list {missing}; it lists {attachments}"

    widths = [width for name, width in images if name == IMAGE_ATTACHMENT]
    assert widths, f"{IMAGE_ATTACHMENT!r} is not shown as an image on the page of {title!r}; images: {images}"
    assert all(width > 0 for width in widths), f"{IMAGE_ATTACHMENT!r} is an <img> that did not decode: {images}"

    in_tab = [_attachment_name(header) for header in tab.by_testid("test-result-attachment-header")]
    missing = [name for name in ATTACHMENTS if name not in in_tab]
    assert not missing, (
        f"the Attachments tab of {title!r} ({model}) does not list {missing}; it lists {in_tab} "
        "(the tab shows the test body's attachments only, not those of fixtures)"
    )


# --------------------------------------------------------------------------------------------
# the categories page


def test_categories_page_names_every_category(categories_report: Report) -> None:
    page = parse_html(_render_report(categories_report.url("categories"), ready="cat:"))
    shown = [_category_title(block) for block in _category_blocks(page)]
    missing = [name for name in CATEGORY_CASES if name not in shown]
    assert not missing, f"the categories page does not show {missing}; it shows {shown}"


def test_categories_page_files_each_result_under_its_category(categories_report: Report, browser: Browser) -> None:
    _open(browser, categories_report.url("categories"), ready=CATEGORIES_READY)
    browser.click_each("document.querySelectorAll('[data-testid=tree-arrow]')")
    page = parse_html(browser.dom(APP))
    filed = {
        _category_title(block): {title.text() for title in block.by_testid("tree-leaf-title")}
        for block in _category_blocks(page)
    }
    wrong = []
    for number, (category, (status, message)) in enumerate(CATEGORY_CASES.items(), 1):
        name = _case_name(number, category)
        if name not in filed.get(category, set()):
            where = [c for c, names in filed.items() if name in names] or ["nowhere"]
            wrong.append(f"{status} {message!r} is under {where[0]!r}, not {category!r}")
    assert not wrong, "results under the wrong category:\n  " + "\n  ".join(wrong)


# --------------------------------------------------------------------------------------------
# helpers


def _label(result: dict[str, Any], name: str) -> str:
    values = [label["value"] for label in result.get("labels", []) if label.get("name") == name]
    assert values, f"result {result.get('fullName')!r} has no {name!r} label: {result.get('labels')}"
    return str(values[0])


def _function(result: dict[str, Any]) -> str:
    """The scenario function of a result (``scenarios.test_no_paper#test_idle_refusal[...]``)."""
    return re.sub(r"\[.*\]$", "", str(result.get("fullName", "")).rsplit("#", 1)[-1])


def _texts(root: Element, testid: str) -> str:
    return "\n".join(element.text() for element in root.by_testid(testid))


def _attachment_name(header: Element) -> str:
    """An attachment header reads "<n> <name>" in its button, then type and size; the name is the
    button's last span."""
    buttons = [child for child in header.children if isinstance(child, Element) and child.tag == "button"]
    parts = [child for child in buttons[0].children if isinstance(child, Element)] if buttons else []
    return parts[-1].text() if parts else header.text()


def _category_blocks(page: Element) -> list[Element]:
    """One block per category (``<div id="cat:…">``: its title section, then its results)."""
    return page.find_all(lambda e: e.get("id").startswith("cat:"))


def _category_title(block: Element) -> str:
    titles = block.by_testid("tree-section-title")
    return titles[0].text().split("\n", 1)[0] if titles else ""


def _open(browser: Browser, url: str, *, ready: str) -> None:
    browser.open(url, ready=ready, retry_if=LOAD_RACE, retry_on_failed_file=True, attempts=1)
    assert browser.outside_requests == [], browser.outside_requests  # offline: no analytics, no fonts


def _render_report(url: str, *, ready: str, attempts: int = 1) -> str:
    """``render(url)``, again while the page did not come up (see LOAD_RACE)."""
    dom = ""
    for _ in range(attempts):
        dom = render(url)
        if ready in dom:
            return dom
    text = parse_html(dom).text().replace("\n", " | ")
    raise AssertionError(f"{url} did not render in {attempts} loads (no {ready!r}); the page shows: {text[:500]}")


def _case_name(number: int, category: str) -> str:
    return f"Синтетика {number}: {category}"


def _write_result(results_dir: Path, *, name: str, status: str, message: str) -> None:
    """A minimal allure-pytest style ``*-result.json``."""
    test_uuid = str(uuid.uuid4())
    data = {
        "uuid": test_uuid,
        "historyId": uuid.uuid4().hex,
        "name": name,
        "fullName": f"scenarios.test_synthetic#{name}",
        "status": status,
        "statusDetails": {"message": message, "trace": "Traceback (most recent call last): …"},
        "start": 1_700_000_000_000,
        "stop": 1_700_000_000_250,
        "labels": [{"name": "epic", "value": "Синтетика"}, {"name": "framework", "value": "pytest"}],
    }
    (results_dir / f"{test_uuid}-result.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
