"""What every test leaves in the report: labels naming the register, the wire trace, the device
journal and the printed tape, and the run's ``environment.properties``."""

from __future__ import annotations

import allure
import pytest

from harness.errors import HarnessError, KktError

from ..bench import RestoreIncomplete
from ..connect import DeviceHandle
from ..lab_open import Bench
from ..spec import DeviceSpec

SEEN_KEY = pytest.StashKey[dict[str, dict[str, str]]]()


def label_faults(spec: DeviceSpec) -> None:
    """The fault schedule of a ``faults=`` spec, before the device is opened: a fault may make
    the opening fail, and that result must still say which faults it ran under."""
    schedule = spec.faults
    if schedule is not None:
        allure.dynamic.label("faults", schedule.text)
        allure.dynamic.parameter("Сбои связи (faults)", schedule.text)


def label(request: pytest.FixtureRequest, handle: DeviceHandle) -> None:
    info = handle.kkt.info()
    fn_kind = handle.emulator.fn_kind if handle.emulator is not None else ""
    if handle.spec.kind == "emulator":
        transport = "emulator:" + ("pty" if handle.spec.params.get("transport", "pty") == "pty" else "tcp")
    else:
        transport = handle.spec.url
    labels = {
        "model": info.model,
        "firmware": info.firmware,
        "fn": info.fn_serial + (f" ({fn_kind})" if fn_kind else ""),
        "serial": info.serial,
        "transport": transport,
    }
    for name, value in labels.items():
        allure.dynamic.label(name, value)
    allure.dynamic.tag(info.model)
    allure.dynamic.parameter("ККТ", f"{info.model} {info.firmware}")
    if fn_kind:
        allure.dynamic.parameter("ФН", fn_kind)
    seen = request.config.stash[SEEN_KEY]
    seen[handle.spec.id] = {
        "model": info.model,
        "firmware": info.firmware,
        "serial": info.serial,
        "protocol": info.protocol,
    }


def prepare_bench(bench: Bench) -> None:
    """Before a test on a lab register: a register that cannot be brought to the known state is
    not tested (the test is broken, with the reason)."""
    try:
        done = bench.lab.prepare()
    except KktError as exc:
        raise HarnessError(f"lab:{bench.entry.id} cannot be brought to a known state before the test: {exc}") from exc
    if done:
        allure.attach("\n".join(done), "Исходное состояние ККТ перед тестом", allure.attachment_type.TEXT)


def restore_bench(bench: Bench) -> None:
    """After a test on a lab register: bring it back to a known state and say what was done."""
    if bench.lens.anchored:
        allure.dynamic.parameter("Время сценария", bench.lens.description)
    try:
        done = bench.lab.restore()
        text = "\n".join(done) if done else "ничего не потребовалось"
    except RestoreIncomplete as exc:
        text = "\n".join([*exc.done, *(f"не удалось: {line}" for line in exc.failed)])
    except KktError as exc:
        text = f"не удалось: {exc}"
    allure.attach(text, "Приведение ККТ в исходное состояние", allure.attachment_type.TEXT)


def attach_evidence(handle: DeviceHandle) -> None:
    allure.attach(handle.trace.render() or "(no traffic)", "Трасса обмена (wire trace)", allure.attachment_type.TEXT)
    if handle.faults is not None:
        schedule = handle.faults.schedule.text if handle.faults.schedule is not None else "?"
        lines = [f"schedule: {schedule} (over {handle.faults.inner_url})"]
        lines += [fault.describe() for fault in handle.faults.injected] or ["no fault injected"]
        allure.attach("\n".join(lines), "Внесённые сбои связи (injected faults)", allure.attachment_type.TEXT)
    try:
        journal = handle.lab.journal()
        text = "\n".join(
            f"{e.at:%d.%m.%Y %H:%M:%S}  {e.event}" + (f": {e.detail}" if e.detail else "") for e in journal
        )
    except KktError as exc:
        text = f"(journal not available: {exc})"
    allure.attach(text or "(empty)", "Журнал ККТ", allure.attachment_type.TEXT)
    try:
        tape = "\n".join(handle.lab.tape())
    except KktError as exc:
        tape = f"(printed tape not available: {exc})"
    allure.attach(tape or "(nothing printed)", "Чековая лента", allure.attachment_type.TEXT)
