"""The kkt-hil pytest plugin: devices from ``--kkt`` specs, the ``kkt`` and ``lab`` fixtures,
Allure steps for every device and lab operation, and the evidence attached to every test.

Each scenario taking ``kkt`` is parametrized over the chosen devices (``test_x[emulator-kf]``).
An emulator device is fresh for every test (isolated, deterministic, costs milliseconds); a
real device is reconnected per test and keeps its state, as hardware does.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import allure
import pytest

from .. import families
from ..bench import DEFAULT_REAL_TIME_BUDGET
from ..errors import KktError, LabUnavailable, NeedsRealTimeOrOperator, SafetyRefusal, UsageError
from ..lab_open import LAB_KINDS, LabOptions, lab_entries
from ..report.categories import SKIP_LAB, SKIP_REAL_TIME, SKIP_SAFETY
from ..spec import DeviceSpec, parse_spec
from . import wording
from .evidence import EVIDENCE_KEY, HANDLE_KEY, SEEN_KEY, TITLE_KEY, attach_evidence, recording
from .fixtures import hub, kkt, kkt_device, lab, oracle
from .refusals import expect_refusal
from .safety import INVENTORY_KEY
from .steps import HUB_TITLES, LAB_TITLES, STEP_TITLES, StepProxy

__all__ = [
    "HUB_TITLES",
    "LAB_TITLES",
    "STEP_TITLES",
    "StepProxy",
    "expect_refusal",
    "hub",
    "kkt",
    "kkt_device",
    "lab",
    "oracle",
]

SPECS_KEY = pytest.StashKey[list[DeviceSpec]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kkt-hil", "cash register HIL stand")
    group.addoption(
        "--kkt",
        action="append",
        default=[],
        metavar="SPEC",
        help="device to run on (repeatable): emulator:kf | emulator:all | emulator:kf?firmware=2.25.0&defects=a,b | "
        "url:/dev/ttyUSB0#model=kf | lab:ID | labgrid:PLACE. Default: emulator:all",
    )
    group.addoption(
        "--inventory",
        metavar="FILE",
        help="lab inventory (TOML) for lab:ID specs (default: $KKT_HIL_INVENTORY, then ./kkt-hil.toml)",
    )
    group.addoption(
        "--operator",
        metavar="WHO",
        help="who does what no actuator can on lab registers: tty | none | tcp://127.0.0.1:PORT "
        "(default: the inventory entry's)",
    )
    group.addoption(
        "--real-time-budget",
        type=float,
        default=DEFAULT_REAL_TIME_BUDGET,
        metavar="SECONDS",
        help="real waiting a scenario may ask for on a lab register; more is skipped with the reason (default 300)",
    )
    group.addoption(
        "--allow-destructive",
        action="store_true",
        help="allow destructive operations (re-registration, clock moves) on real devices marked sacrificial",
    )
    group.addoption(
        "--device-timeout-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply every per-command device timeout by F (slow links)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "destructive: the scenario changes fiscal state irreversibly on a real device")
    config.addinivalue_line("markers", "requires(*capabilities): skip unless the device has these Capability values")
    config.addinivalue_line("markers", "models(*ids): run only on these models (catalogue ids: kkt-hil emulate --help)")
    config.addinivalue_line("markers", "firmware(min=...): skip on firmware older than min")
    specs: list[DeviceSpec] = []
    try:
        known = families.model_ids()
        for text in config.getoption("--kkt") or ["emulator:all"]:
            specs.extend(parse_spec(text, known_models=known))
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("--device-timeout-scale") <= 0:
        raise pytest.UsageError("--device-timeout-scale must be positive")
    budget = config.getoption("--real-time-budget")
    if not (math.isfinite(budget) and budget >= 0):
        raise pytest.UsageError(f"--real-time-budget must be a number of seconds >= 0, not {budget!r}")
    scale = config.getoption("--device-timeout-scale")
    if not math.isfinite(scale):
        raise pytest.UsageError(f"--device-timeout-scale must be a finite number, not {scale!r}")
    try:
        specs = _with_lab_models(config, specs)
        specs = _with_labgrid_places(config, specs)
        if not hasattr(config, "workerinput"):  # once per run, in the controlling process
            _preflight(config, specs)
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[SPECS_KEY] = specs
    config.stash[SEEN_KEY] = {}


def _with_lab_models(config: pytest.Config, specs: list[DeviceSpec]) -> list[DeviceSpec]:
    """``lab:<id>`` and ``pool:<name>`` specs get their model from the inventory, read once for the whole run."""
    if not any(spec.kind in LAB_KINDS for spec in specs):
        return specs
    inventory = LabOptions(config.getoption("--inventory")).load(next(s.text for s in specs if s.kind in LAB_KINDS))
    config.stash[INVENTORY_KEY] = inventory
    return [
        replace(spec, model=lab_entries(inventory, spec)[0].model) if spec.kind in LAB_KINDS else spec for spec in specs
    ]


def _with_labgrid_places(config: pytest.Config, specs: list[DeviceSpec]) -> list[DeviceSpec]:
    """``labgrid:<place>`` specs and inventory entries on a labgrid place: each place acquired once
    for the run by the controlling process (released at its end, or by a watchdog if the run is
    killed); xdist workers use what it holds."""
    if not any(spec.kind == "labgrid" or spec.kind in LAB_KINDS for spec in specs):
        return specs  # no place to hold: harness.labgrid is not even imported
    from ..labgrid import hold_places

    controller = not hasattr(config, "workerinput")
    inventory = config.stash.get(INVENTORY_KEY, None)
    try:
        return hold_places(
            specs, config.add_cleanup, controller=controller, known_models=families.model_ids(), inventory=inventory
        )
    except KktError as exc:
        raise UsageError(str(exc)) from None


PREFLIGHT_LEASE_TIMEOUT = 10.0
PREFLIGHT_LINK_TIMEOUT = 2.0  # seconds for a url: register to answer before any test


def _preflight(config: pytest.Config, specs: list[DeviceSpec]) -> None:
    """Before any test, every device once: an emulator is built from its spec (model, firmware,
    ФН, settings and their values, defects) and a url: register is reached with a short
    deadline; a lab register is reached through its bench (port, identity against the
    inventory, supply, OFD upstream).  A fault schedule is not applied here.  A problem is one
    line naming the spec, and no test runs (pytest's usage error, exit 4; kkt-hil run: exit 2)."""
    from ..connect import open_device
    from ..operator import make_operator

    for spec in specs:
        plain = replace(spec, params={k: v for k, v in spec.params.items() if k != "faults"})
        options = LabOptions(lease_timeout=PREFLIGHT_LEASE_TIMEOUT)  # a url: register another run holds
        if spec.kind in LAB_KINDS:  # a pool: one member, whichever is free
            for entry in lab_entries(config.stash[INVENTORY_KEY], spec):
                make_operator(config.getoption("--operator") or entry.operator)  # a bad one: one line, not one per test
            # nobody is asked anything yet; a register another run holds is reported, not waited for
            options = LabOptions(config.stash[INVENTORY_KEY], operator="none", lease_timeout=PREFLIGHT_LEASE_TIMEOUT)
        try:
            open_device(
                plain,
                lab=options,
                timeout_scale=config.getoption("--device-timeout-scale"),
                link_timeout=PREFLIGHT_LINK_TIMEOUT,
            ).close()
        except (KktError, OSError) as exc:
            text = str(exc)
            raise UsageError(text if text.startswith(spec.text) else f"{spec.text}: {text}") from None


_HEAP_OWNER: list[pytest.Config] = []  # the session that freezes this process's heap (the outermost one)


def _freeze_heap(config: pytest.Config) -> None:
    """``gc.freeze()``: what the process holds once the run is set up (modules, plugins, the
    collected items) is moved out of the garbage collector's sight, so that every collection
    during the run, pytest's at its end and the interpreter's at exit walk only what the tests
    made (those at the end and exit took 0.2-0.3 s of every pytest process, controller and each
    xdist worker).  Nothing the tests make is frozen.  Only by the first session of a process: a
    pytester run inside a test freezes nothing of the test's."""
    if not _HEAP_OWNER:
        _HEAP_OWNER.append(config)
    if _HEAP_OWNER[0] is config:
        gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _freeze_heap(session.config)  # an xdist controller collects nothing: its heap is set up now


def pytest_collection_finish(session: pytest.Session) -> None:
    _freeze_heap(session.config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kkt_device" not in metafunc.fixturenames:
        return
    specs = metafunc.config.stash[SPECS_KEY]
    metafunc.parametrize("kkt_device", specs, ids=[s.id for s in specs], indirect=True)


# ------------------------------------------------------------------------------------ hooks


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A user's configuration mistake reads as one line, not a fixture traceback."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(UsageError):
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
    title = item.stash.get(TITLE_KEY, None)
    if title is not None and call.when in ("setup", "call"):  # after allure-pytest named it at setup
        allure.dynamic.title(title)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """A test stopped by Ctrl-C has no call report, and Allure would file it as passed: give
    it one (broken, "interrupted"), so a run cut short never reads green.  Its evidence is
    attached when pytest tears the fixtures down at the end of the session."""
    try:
        return (yield)
    except KeyboardInterrupt as exc:
        interrupted = exc

        def stopped() -> None:
            raise interrupted

        call = pytest.CallInfo.from_call(stopped, when="call", reraise=None)
        item.ihook.pytest_runtest_makereport(item=item, call=call)
        raise


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: Any, right: Any) -> list[str] | None:
    return wording.explain(op, left, right) if wording.IN_SCENARIO.get() else None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A scenario's evidence goes to the test itself (its own attachments), not to a fixture's
    teardown: attached when the scenario body ends, whatever its outcome."""
    handle = item.stash.get(HANDLE_KEY, None)
    token = wording.IN_SCENARIO.set(handle is not None)
    try:
        return (yield)
    finally:
        wording.IN_SCENARIO.reset(token)
        if handle is not None and recording(item.config):
            attach_evidence(handle)
            item.stash[EVIDENCE_KEY] = True


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    try:
        return (yield)
    except NeedsRealTimeOrOperator as exc:
        pytest.skip(f"{SKIP_REAL_TIME}: {exc}")
    except LabUnavailable as exc:
        pytest.skip(f"{SKIP_LAB}: {exc}")
    except SafetyRefusal as exc:
        if pyfuncitem.get_closest_marker("destructive") is None:
            raise  # an unmarked scenario must not try it at all: the scenario is broken
        pytest.skip(f"{SKIP_SAFETY}: {exc}")


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: merge the devices a worker saw, for environment.properties."""
    seen = getattr(node, "workeroutput", {}).get("kkt_seen")
    if seen:
        node.config.stash[SEEN_KEY].update(json.loads(seen))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        config.workeroutput["kkt_seen"] = json.dumps(config.stash.get(SEEN_KEY, {}))  # type: ignore[attr-defined]  # pytest-xdist sets workeroutput on workers only
        return
    results = getattr(config.option, "allure_report_dir", None)
    if not results:
        return
    from .. import report

    path = Path(results)
    path.mkdir(parents=True, exist_ok=True)
    props = {
        "kkt.specs": " ".join(s.text for s in config.stash.get(SPECS_KEY, [])),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for spec_id, seen in sorted(config.stash.get(SEEN_KEY, {}).items()):
        for key, value in seen.items():
            props[f"{spec_id}.{key}"] = value
    from ..report.tidy import tidy_fixtures

    tidy_fixtures(path)
    report.write_environment(path, props)
    report.write_categories(path)
    report.write_executor(path, build_name=os.environ.get("KKT_HIL_BUILD"))
