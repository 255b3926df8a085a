"""The kkt-hil pytest plugin: devices from ``--kkt`` specs, the ``kkt`` and ``lab`` fixtures,
Allure steps for every device and lab operation, and the evidence attached to every test.

Each scenario taking ``kkt`` is parametrized over the chosen devices (``test_x[emulator-kf]``).
An emulator device is fresh for every test (isolated, deterministic, costs milliseconds); a
real device is reconnected per test and keeps its state, as hardware does.
"""

from __future__ import annotations

import functools
import json
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import allure
import pytest

from .connect import DeviceHandle, open_device
from .device import Capability, Kkt
from .errors import HarnessError, KktError, LabUnavailable, SafetyRefusal, UsageError
from .spec import ALL_EMULATORS, DeviceSpec, parse_spec

STEP_TITLES: dict[str, str] = {
    "info": "Прочитать сведения о ККТ",
    "status": "Запросить статус ККТ",
    "fn": "Запросить состояние ФН",
    "ofd_queue": "Запросить очередь документов для ОФД",
    "clock": "Прочитать часы ККТ",
    "set_clock": "Установить часы ККТ",
    "open_shift": "Открыть смену",
    "close_shift": "Закрыть смену (Z-отчёт)",
    "x_report": "Снять X-отчёт",
    "sell": "Пробить чек продажи",
    "cancel_document": "Аннулировать открытый документ",
    "reregister": "Перерегистрировать ККТ",
    "continue_print": "Допечатать прерванный документ",
    "reprint_last": "Повторить печать последнего документа",
    "journal": "Прочитать журнал ККТ",
}
LAB_TITLES: dict[str, str] = {
    "paper": "Стенд: бумага",
    "cover": "Стенд: крышка открыта",
    "ofd": "Стенд: связь с ОФД",
    "clock_set": "Стенд: установить время",
    "clock_advance": "Стенд: прошло времени",
    "power": "Стенд: питание",
    "firmware": "Стенд: прошивка",
    "defects": "Стенд: дефекты прошивки",
    "fn_setup": "Стенд: подготовить ФН",
}
HUB_TITLES: dict[str, str] = {
    "schedule": "Кабинет: создать задание на перерегистрацию",
    "withhold": "Кабинет: придержать задание",
    "status": "Кабинет: статусы ККТ",
    "poll_now": "ККТ: опросить Кабинет",
    "link": "ККТ: связь с Кабинетом",
}
SPECS_KEY = pytest.StashKey[list[DeviceSpec]]()
SEEN_KEY = pytest.StashKey[dict[str, dict[str, str]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kkt-hil", "cash register HIL stand")
    group.addoption(
        "--kkt",
        action="append",
        default=[],
        metavar="SPEC",
        help="device to run on (repeatable): emulator:kf | emulator:all | emulator:kf?firmware=2.25.0&defects=a,b | "
        "url:/dev/ttyUSB0#model=kf | lab:ID. Default: emulator:all",
    )
    group.addoption("--inventory", metavar="FILE", help="lab inventory (TOML) for lab:ID specs")
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
    config.addinivalue_line("markers", "models(*ids): run only on these models (kf, dkf, start, atol)")
    config.addinivalue_line("markers", "firmware(min=...): skip on firmware older than min")
    known = _known_models()
    specs: list[DeviceSpec] = []
    try:
        for text in config.getoption("--kkt") or ["emulator:all"]:
            specs.extend(parse_spec(text, known_models=known))
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("--device-timeout-scale") <= 0:
        raise pytest.UsageError("--device-timeout-scale must be positive")
    config.stash[SPECS_KEY] = specs
    config.stash[SEEN_KEY] = {}


def _known_models() -> tuple[str, ...]:
    from devices.emulator.profiles import PROFILES

    try:  # protocol families register their profiles on import
        import devices.atol.family  # noqa: F401
    except ImportError:
        pass
    return tuple(m for m in ALL_EMULATORS if m in PROFILES) + tuple(m for m in PROFILES if m not in ALL_EMULATORS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kkt_device" not in metafunc.fixturenames:
        return
    specs = metafunc.config.stash[SPECS_KEY]
    metafunc.parametrize("kkt_device", specs, ids=[s.id for s in specs], indirect=True)


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def kkt_device(request: pytest.FixtureRequest) -> Iterator[DeviceHandle]:
    spec: DeviceSpec = request.param
    _check_markers_before_connect(request, spec)
    allure.dynamic.label("kkt_spec", spec.text)
    error: UsageError | None = None
    try:
        handle = open_device(spec, timeout_scale=request.config.getoption("--device-timeout-scale"))
    except UsageError as exc:
        error = exc
    if error is not None:  # a configuration problem: broken, not a product failure
        raise UsageError(f"bad device spec: {error}")
    try:
        _label(request, handle)
        _check_markers_after_connect(request, handle)
        yield handle
    finally:
        try:
            _attach_evidence(handle)
        finally:
            handle.close()


DESTRUCTIVE_OPERATIONS = frozenset({"reregister", "set_clock"})


@pytest.fixture
def kkt(kkt_device: DeviceHandle) -> Kkt:
    """The register under test; every call is an Allure step."""
    device: Any = kkt_device.kkt
    if kkt_device.spec.kind != "emulator":
        device = SafetyGuard(device, kkt_device.spec.text)
    return StepProxy(device, STEP_TITLES)  # type: ignore[return-value]


class SafetyGuard:
    """On a real register, destructive operations are refused before anything is sent.

    DESIGN.md "Safety": they need the ``destructive`` marker, ``--allow-destructive``, an inventory
    entry marked sacrificial and a matching serial.  ``url:`` specs cannot prove the last two, so
    this build refuses them there (the marker check skips marked scenarios before connecting).
    """

    def __init__(self, target: Any, spec_text: str) -> None:
        self._target = target
        self._spec = spec_text

    def __getattr__(self, name: str) -> Any:
        if name in DESTRUCTIVE_OPERATIONS:

            def refuse(*args: Any, **kwargs: Any) -> Any:
                raise SafetyRefusal(
                    f"{name} refused on {self._spec}: destructive operations on a real register need a "
                    "sacrificial inventory entry (nothing was sent)"
                )

            return refuse
        return getattr(self._target, name)


@pytest.fixture
def lab(kkt_device: DeviceHandle) -> Any:
    """Faults and time for the register under test (skips the scenario where impossible)."""
    return StepProxy(kkt_device.lab, LAB_TITLES)


@pytest.fixture
def hub(kkt_device: DeviceHandle) -> Iterator[Any]:
    """The Dreamkas Кабинет for the register under test (skips where there is none)."""
    from devices.dreamkas.hub_client import AdminClient

    from .lab import EmulatorLab, HubLab

    spec = kkt_device.spec
    if kkt_device.emulator is not None:
        if kkt_device.emulator.profile.rereg_min_firmware is None:
            pytest.skip(f"{kkt_device.emulator.profile.title} has no Dreamkas cloud (Кабинет) re-registration task")
        from devices.dreamkas.fisgo import attach_fisgo
        from devices.dreamkas.hub import Hub, serve

        server = serve(Hub())
        try:
            attach_fisgo(kkt_device.emulator, server.url)
            yield StepProxy(
                HubLab(AdminClient(server.url), kkt_device.emulator.core.serial, device_control=kkt_device.emulator.control.handle, url=server.url),
                HUB_TITLES,
            )
        finally:
            server.close()
        return
    hub_url = spec.params.get("hub")
    if not hub_url:
        pytest.skip("no Dreamkas hub for this device: add &hub=http://127.0.0.1:PORT (kkt-hil hub) to its url: spec")

    lab = kkt_device.lab
    device_control = lab.raw if isinstance(lab, EmulatorLab) else None
    yield StepProxy(HubLab(AdminClient(hub_url), kkt_device.kkt.info().serial, device_control=device_control, url=hub_url), HUB_TITLES)


class StepProxy:
    """Wraps every public method of ``target`` in an Allure step titled from ``titles``."""

    def __init__(self, target: Any, titles: dict[str, str]) -> None:
        self._target = target
        self._titles = titles

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name.startswith("_") or not callable(value) or name not in self._titles:
            return value
        title = self._titles[name]

        @functools.wraps(value)
        def step(*args: Any, **kwargs: Any) -> Any:
            with allure.step(_step_title(title, args, kwargs)):
                return value(*args, **kwargs)

        return step


def _step_title(title: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [_short(a) for a in args] + [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return f"{title}" + (f": {', '.join(parts)}" if parts else "")


def _short(value: Any) -> str:
    if hasattr(value, "title") and hasattr(value, "names") and not callable(value.title):
        return str(value.title)  # TaxSystem
    if hasattr(value, "value") and type(value).__module__.startswith("harness"):
        return str(value.value)  # enums
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if type(value).__name__ == "Item":
        return f"{value.name} {value.quantity}×{value.price}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------------ markers


def _check_markers_before_connect(request: pytest.FixtureRequest, spec: DeviceSpec) -> None:
    node = request.node
    models = node.get_closest_marker("models")
    if models and spec.model not in models.args:
        pytest.skip(f"scenario is for models {', '.join(models.args)}; device is {spec.model}")
    if node.get_closest_marker("destructive") and spec.kind != "emulator":
        if not request.config.getoption("--allow-destructive"):
            pytest.skip("destructive scenario on a real device: run with --allow-destructive on a sacrificial ФН")
        raise HarnessError(
            "destructive scenarios on real devices need a lab inventory entry marked sacrificial "
            "(serial checked against the device); url: specs cannot prove that"
        )


def _check_markers_after_connect(request: pytest.FixtureRequest, handle: DeviceHandle) -> None:
    node = request.node
    required = node.get_closest_marker("requires")
    if required:
        missing = [c for c in required.args if isinstance(c, Capability) and c not in handle.kkt.capabilities]
        if missing:
            names = ", ".join(c.value for c in missing)
            pytest.skip(f"device {handle.spec.model} lacks {names}")
    firmware = node.get_closest_marker("firmware")
    if firmware and "min" in firmware.kwargs:
        from devices.emulator.profiles import parse_version

        current = handle.kkt.info().firmware
        try:
            too_old = parse_version(current) < parse_version(firmware.kwargs["min"])
        except ValueError:
            too_old = False
        if too_old:
            pytest.skip(f"firmware {current} is older than {firmware.kwargs['min']}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A user's configuration mistake reads as one line, not a fixture traceback."""
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(UsageError):
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
    return report


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    try:
        return (yield)
    except LabUnavailable as exc:
        pytest.skip(f"lab cannot do this on this device — {exc}")


# ------------------------------------------------------------------------------------ evidence


def _label(request: pytest.FixtureRequest, handle: DeviceHandle) -> None:
    info = handle.kkt.info()
    fn_kind = handle.emulator.profile.fn_kind if handle.emulator is not None else ""
    labels = {
        "model": info.model,
        "firmware": info.firmware,
        "fn": info.fn_serial + (f" ({fn_kind})" if fn_kind else ""),
        "serial": info.serial,
        "transport": handle.spec.kind + ":" + ("pty" if handle.spec.params.get("transport", "pty") == "pty" else "tcp")
        if handle.spec.kind == "emulator"
        else handle.spec.url,
    }
    for name, value in labels.items():
        allure.dynamic.label(name, value)
    allure.dynamic.tag(info.model)
    allure.dynamic.parameter("ККТ", f"{info.model} {info.firmware}")
    if fn_kind:
        allure.dynamic.parameter("ФН", fn_kind)
    seen = request.config.stash[SEEN_KEY]
    seen[handle.spec.id] = {"model": info.model, "firmware": info.firmware, "serial": info.serial, "protocol": info.protocol}


def _attach_evidence(handle: DeviceHandle) -> None:
    allure.attach(handle.trace.render() or "(no traffic)", "Трасса обмена (wire trace)", allure.attachment_type.TEXT)
    try:
        journal = handle.lab.journal()
        text = "\n".join(f"{e.at:%d.%m.%Y %H:%M:%S}  {e.event}" + (f": {e.detail}" if e.detail else "") for e in journal)
    except KktError as exc:
        text = f"(journal not available: {exc})"
    allure.attach(text or "(empty)", "Журнал ККТ", allure.attachment_type.TEXT)
    try:
        tape = "\n".join(handle.lab.tape())
    except KktError as exc:
        tape = f"(printed tape not available: {exc})"
    allure.attach(tape or "(nothing printed)", "Чековая лента", allure.attachment_type.TEXT)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: merge the devices a worker saw, for environment.properties."""
    seen = getattr(node, "workeroutput", {}).get("kkt_seen")
    if seen:
        node.config.stash[SEEN_KEY].update(json.loads(seen))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        config.workeroutput["kkt_seen"] = json.dumps(config.stash.get(SEEN_KEY, {}))  # type: ignore[attr-defined]
        return
    results = getattr(config.option, "allure_report_dir", None)
    if not results:
        return
    from . import report

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
    report.write_environment(path, props)
    report.write_categories(path)
    report.write_executor(path, build_name=os.environ.get("KKT_HIL_BUILD"))
