"""The fixtures scenarios take: ``kkt`` (the register), ``lab`` (faults and time), ``hub`` (the
vendor cloud).  ``kkt_device`` is parametrized over the ``--kkt`` specs by the plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness import families
from harness.errors import SafetyRefusal, UsageError
from harness.lab import EmulatorLab, HubLab

from ..connect import URL_UNPROVEN, DeviceHandle, open_device
from ..oracle import Oracle
from ..report.categories import SKIP_CAPABILITY, SKIP_LAB
from ..spec import DeviceSpec
from .evidence import (
    EVIDENCE_KEY,
    HANDLE_KEY,
    attach_evidence,
    label,
    label_spec,
    prepare_bench,
    recording,
    restore_bench,
)
from .safety import check_markers_after_connect, check_markers_before_connect, lab_options
from .steps import HUB_TITLES, LAB_TITLES, STEP_TITLES, StepProxy


@pytest.fixture
def kkt_device(request: pytest.FixtureRequest) -> Iterator[DeviceHandle]:
    spec: DeviceSpec = request.param
    label_spec(request, spec)
    check_markers_before_connect(request, spec)
    error: UsageError | None = None
    try:
        handle = open_device(
            spec, timeout_scale=request.config.getoption("--device-timeout-scale"), lab=lab_options(request)
        )
    except UsageError as exc:
        error = exc
    if error is not None:  # a configuration problem: broken, not a product failure
        raise UsageError(f"bad device spec: {error}")
    try:
        label(request, handle)
        check_markers_after_connect(request, handle)
        if handle.bench is not None:
            prepare_bench(handle.bench)
        yield handle
    finally:
        try:
            if recording(request.config) and not request.node.stash.get(EVIDENCE_KEY, False):  # body never ran
                attach_evidence(handle)
            if handle.bench is not None:
                restore_bench(handle.bench)
        finally:
            handle.close()
            if HANDLE_KEY in request.node.stash:  # the item outlives its register: let it go
                del request.node.stash[HANDLE_KEY]


@pytest.fixture
def kkt(kkt_device: DeviceHandle) -> Any:
    """The register under test; every call is an Allure step."""
    return StepProxy(kkt_device.kkt, STEP_TITLES)  # the transport's guard refuses destructive requests


@pytest.fixture
def lab(kkt_device: DeviceHandle) -> Any:
    """Faults and time for the register under test (skips the scenario where impossible)."""
    return StepProxy(kkt_device.lab, LAB_TITLES)


OFD_SETTLE = 30.0  # seconds


@pytest.fixture
def oracle(kkt_device: DeviceHandle, kkt: Any, lab: Any) -> Oracle:
    """The full-state oracle around the scenario's steps (:mod:`harness.oracle`)."""
    # an emulator with its in-process OFD answers at once; a real register (or an emulator on a
    # network OFD link) delivers within seconds
    emulator = kkt_device.emulator
    synchronous = emulator is not None and not getattr(getattr(emulator, "core", None), "ofd_network", True)
    watcher = Oracle(kkt_device.kkt, kkt_device.lab, settle=0.0 if synchronous else OFD_SETTLE)
    kkt._listen(watcher.saw)
    kkt._listen_calls(watcher.touched)
    lab._listen_calls(watcher.touched)
    return watcher


def _no_cloud(handle: DeviceHandle) -> str:
    return f"{SKIP_CAPABILITY}: у {handle.model.title} нет облака Dreamkas (Кабинета) и заданий на перерегистрацию"


@pytest.fixture
def hub(kkt_device: DeviceHandle) -> Iterator[Any]:
    """The Dreamkas Кабинет for the register under test (skips where there is none)."""
    cloud = families.cloud_of(kkt_device.model.id)
    emulated = kkt_device.emulator
    if emulated is not None:
        if cloud is None:
            pytest.skip(_no_cloud(kkt_device))
        server = cloud.serve_hub()
        admin = None
        try:
            emulated.attach_cloud(server.url)
            admin = cloud.admin(server.url)
            yield StepProxy(HubLab(admin, emulated.serial, device_control=emulated.control, url=server.url), HUB_TITLES)
        finally:
            server.close()
            _close_client(admin)
        return
    bench = kkt_device.bench
    if bench is not None:
        if bench.hub is None:
            if cloud is None:
                pytest.skip(_no_cloud(kkt_device))
            pytest.skip(
                f"{SKIP_LAB}: у этой ККТ нет Кабинета стенда (kkt-hil hub) — добавьте hub = URL в её запись инвентаря"
            )
        yield StepProxy(bench.hub, HUB_TITLES)  # restore() withdraws what the test left on the hub
        return
    hub_url = kkt_device.spec.params.get("hub")
    if not hub_url:
        pytest.skip(
            f"{SKIP_LAB}: у этой ККТ нет Кабинета стенда (kkt-hil hub) — добавьте &hub=http://127.0.0.1:PORT в spec"
        )
    if cloud is None:
        pytest.skip(_no_cloud(kkt_device))
    lab = kkt_device.lab
    device_control = lab.raw if isinstance(lab, EmulatorLab) else None
    serial = kkt_device.kkt.info().serial
    if device_control is None:  # a register nothing proves sacrificial: a task would re-register it
        guard = _refuse_task(kkt_device.spec.text)
    else:
        guard = _allow_task  # an out-of-process emulator: its control channel says so
    admin = cloud.admin(hub_url)
    try:
        yield StepProxy(HubLab(admin, serial, device_control=device_control, url=hub_url, guard=guard), HUB_TITLES)
    finally:
        _close_client(admin)


def _close_client(admin: Any) -> None:
    """The admin client's kept connection (a cloud's client without close() keeps none)."""
    close = getattr(admin, "close", None)
    if callable(close):
        close()


def _allow_task() -> None:
    return None


def _refuse_task(where: str) -> Callable[[], None]:
    def refuse() -> None:
        raise SafetyRefusal(
            f"re-registration (Кабинет task) refused on {where}: {URL_UNPROVEN} (no task was scheduled)"
        )

    return refuse
