"""What every test leaves in the report: labels naming the register, the wire trace, the device
journal and the printed tape, and the run's ``environment.properties``."""

from __future__ import annotations

import allure
import pytest

from harness import families
from harness.errors import HarnessError, KktError

from ..bench import RestoreIncomplete
from ..connect import DeviceHandle
from ..lab_open import Bench
from ..leases import host_name
from ..report import HOST_PARAMETER
from ..spec import DeviceSpec

SEEN_KEY = pytest.StashKey[dict[str, dict[str, str]]]()
HANDLE_KEY = pytest.StashKey[DeviceHandle]()  # the register a test item runs on
EVIDENCE_KEY = pytest.StashKey[bool]()  # its evidence is attached already
TITLE_KEY = pytest.StashKey[str]()  # "<scenario title> — <model title> <firmware>"
LATENCY_ATTACHMENT = "Время ответа ККТ (мс)"


class Plain:
    """A parameter value shown as it is (allure-pytest quotes strings: ``'kf 2.26.0'``)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def recording(config: pytest.Config) -> bool:
    """Allure results are being written (``--alluredir``): without, evidence is not rendered."""
    return bool(getattr(config.option, "allure_report_dir", None))


def scenario_title(item: pytest.Item) -> str:
    function = getattr(item, "function", None)
    title = getattr(function, "__allure_display_name__", None)
    return str(title) if title else getattr(item, "originalname", item.name)


def label_spec(request: pytest.FixtureRequest, spec: DeviceSpec) -> None:
    """Before the device is opened (an opening that fails must still name its register): the
    spec, the model's title, the fault schedule."""
    model = families.model(spec.model)
    firmware = spec.params.get("firmware", "")
    item = request.node
    item.stash[TITLE_KEY] = f"{scenario_title(item)} — {model.title}" + (f" {firmware}" if firmware else "")
    allure.dynamic.label("kkt_spec", spec.text)
    allure.dynamic.label("testname", item.name)  # pytest's name of the result: test_x[emulator-kf]
    allure.dynamic.label("scenario", scenario_title(item))
    allure.dynamic.label("model", spec.model)
    allure.dynamic.label("model_title", model.title)
    allure.dynamic.parameter("kkt_device", Plain(spec.text), mode=allure.parameter_mode.HIDDEN)
    allure.dynamic.parameter("Устройство", Plain(spec.text), excluded=True)
    # the host the register is on: results of several hosts merge into one report (kkt-hil report
    # --results A --results B); excluded from the history id, so a scenario's history goes on
    allure.dynamic.parameter(HOST_PARAMETER, Plain(host_name()), excluded=True)
    schedule = spec.faults
    if schedule is not None:
        allure.dynamic.label("faults", schedule.text)
        allure.dynamic.parameter("Сбои связи (faults)", Plain(schedule.text))


def label(request: pytest.FixtureRequest, handle: DeviceHandle) -> None:
    info = handle.kkt.info()
    fn_kind = handle.emulator.fn_kind if handle.emulator is not None else ""
    if handle.spec.kind == "emulator":
        transport = "emulator:" + handle.spec.params.get("transport", "pty")
    else:
        transport = handle.spec.url
    labels = {
        "firmware": info.firmware,
        "fn": info.fn_serial + (f" ({fn_kind})" if fn_kind else ""),
        "serial": info.serial,
        "transport": transport,
    }
    for name, value in labels.items():
        allure.dynamic.label(name, value)
    allure.dynamic.tag(handle.model.title)
    item = request.node
    item.stash[HANDLE_KEY] = handle
    item.stash[TITLE_KEY] = f"{scenario_title(item)} — {handle.model.title} {info.firmware}"
    # shown, but not part of the history id: a new firmware of the same register continues its history
    allure.dynamic.parameter("ККТ", Plain(f"{handle.model.title} {info.firmware}"), excluded=True)
    allure.dynamic.parameter("ФН", Plain(fn_kind or info.fn_serial), excluded=True)
    if handle.bench is not None and handle.bench.pool is not None:  # the member the pool lent this test
        allure.dynamic.parameter("Устройство", Plain(f"{handle.spec.text} ({handle.bench.pool})"), excluded=True)
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
        allure.dynamic.parameter("Время сценария", Plain(bench.lens.description))
    try:
        done = bench.lab.restore()
        text = "\n".join(done) if done else "ничего не потребовалось"
    except RestoreIncomplete as exc:
        text = "\n".join([*exc.done, *(f"не удалось: {line}" for line in exc.failed)])
    except KktError as exc:
        text = f"не удалось: {exc}"
    allure.attach(text, "Приведение ККТ в исходное состояние", allure.attachment_type.TEXT)


def attach_evidence(handle: DeviceHandle) -> None:
    """The trace as a table, the injected faults, the journal, the tape as text and as a
    receipt image, and the register's response times, in the current test or fixture."""
    from ..report import evidence as report_evidence  # rendering: only when results are recorded
    from ..report.journal import journal_text

    trace = handle.trace
    allure.attach(
        report_evidence.trace_table(trace.records, dropped=trace.dropped),
        "Трасса обмена",
        allure.attachment_type.CSV,
    )
    if handle.faults is not None:
        schedule = handle.faults.schedule.text if handle.faults.schedule is not None else "?"
        lines = [f"расписание: {schedule} (поверх {handle.faults.inner_url})"]
        lines += [fault.describe() for fault in handle.faults.injected] or ["ни одного сбоя не внесено"]
        allure.attach("\n".join(lines), "Внесённые сбои связи", allure.attachment_type.TEXT)
    try:
        text = journal_text(handle.lab.journal())
    except KktError as exc:
        text = f"(журнал недоступен: {exc})"
    allure.attach(text or "(пусто)", "Журнал ККТ", allure.attachment_type.TEXT)
    tape: list[str] = []
    try:
        tape = handle.lab.tape()
        printed = "\n".join(tape)
    except KktError as exc:
        printed = f"({exc})"
    allure.attach(printed or "(ничего не напечатано)", "Чековая лента", allure.attachment_type.TEXT)
    if tape:
        try:
            image = report_evidence.tape_png(tape)
        except LookupError as exc:
            allure.attach(str(exc), "Чековая лента (изображение)", allure.attachment_type.TEXT)
        else:
            allure.attach(image, "Чековая лента (изображение)", allure.attachment_type.PNG)
    timings = trace.timings
    if timings:
        allure.attach(report_evidence.latency_table(timings), LATENCY_ATTACHMENT, allure.attachment_type.CSV)
