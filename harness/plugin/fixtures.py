"""The fixtures scenarios take: ``kkt`` (the register), ``lab`` (faults and time), ``hub`` (the
vendor cloud).  ``kkt_device`` is parametrized over the ``--kkt`` specs by the plugin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import allure
import pytest

from harness import families
from harness.errors import UsageError
from harness.lab import EmulatorLab, HubLab

from ..connect import DeviceHandle, open_device
from ..spec import DeviceSpec
from .evidence import attach_evidence, label, restore_bench
from .safety import check_markers_after_connect, check_markers_before_connect, lab_options
from .steps import HUB_TITLES, LAB_TITLES, STEP_TITLES, StepProxy


@pytest.fixture
def kkt_device(request: pytest.FixtureRequest) -> Iterator[DeviceHandle]:
    spec: DeviceSpec = request.param
    check_markers_before_connect(request, spec)
    allure.dynamic.label("kkt_spec", spec.text)
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
        yield handle
    finally:
        try:
            attach_evidence(handle)
            if handle.bench is not None:
                restore_bench(handle.bench)
        finally:
            handle.close()


@pytest.fixture
def kkt(kkt_device: DeviceHandle) -> Any:
    """The register under test; every call is an Allure step."""
    return StepProxy(kkt_device.kkt, STEP_TITLES)  # the transport's guard refuses destructive requests


@pytest.fixture
def lab(kkt_device: DeviceHandle) -> Any:
    """Faults and time for the register under test (skips the scenario where impossible)."""
    return StepProxy(kkt_device.lab, LAB_TITLES)


def _no_cloud(handle: DeviceHandle) -> str:
    return f"{handle.model.title} has no Dreamkas cloud (Кабинет) re-registration task"


@pytest.fixture
def hub(kkt_device: DeviceHandle) -> Iterator[Any]:
    """The Dreamkas Кабинет for the register under test (skips where there is none)."""
    cloud = families.cloud_of(kkt_device.model.id)
    emulated = kkt_device.emulator
    if emulated is not None:
        if cloud is None:
            pytest.skip(_no_cloud(kkt_device))
        server = cloud.serve_hub()
        try:
            emulated.attach_cloud(server.url)
            admin = cloud.admin(server.url)
            yield StepProxy(HubLab(admin, emulated.serial, device_control=emulated.control, url=server.url), HUB_TITLES)
        finally:
            server.close()
        return
    bench = kkt_device.bench
    hub_url = bench.entry.hub if bench is not None else kkt_device.spec.params.get("hub")
    if not hub_url:
        where = (
            "hub = URL in its inventory entry" if bench is not None else "&hub=http://127.0.0.1:PORT to its url: spec"
        )
        pytest.skip(f"no Dreamkas hub for this device (kkt-hil hub): add {where}")
    if cloud is None:
        pytest.skip(_no_cloud(kkt_device))
    lab = kkt_device.lab
    device_control = lab.raw if isinstance(lab, EmulatorLab) else None
    serial = kkt_device.kkt.info().serial
    hub_lab = HubLab(
        cloud.admin(hub_url),
        serial,
        device_control=device_control,
        url=hub_url,
        lens=bench.lens if bench is not None else None,
        poll_wait=bench.entry.hub_poll_seconds if bench is not None else None,
    )
    if bench is not None:
        hub_lab.start_fresh()
    yield StepProxy(hub_lab, HUB_TITLES)
