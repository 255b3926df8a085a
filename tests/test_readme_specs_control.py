"""The README's ``--kkt`` specs and control-channel requests (see tests/readme_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import open_kkt
from harness.device import PaperState
from harness.errors import DeviceError, UsageError
from harness.inventory import parse_text
from harness.spec import DeviceSpec, parse_spec
from harness.transport import check_url

from . import readme_blocks as rb
from .cli_helpers import Control
from .readme_support import (
    COMMANDS,
    HARDWARE,
    INVENTORIES,
    OP_BULLETS,
    REQUESTS,
    SPECS,
    START_CLOCK,
    URL_PARAMS,
    _clean_env,  # noqa: F401  (a fixture: pytest finds it by name here)
    _coerced,
    _emulate,
    _emulator,
    _ids,
    _output_lines,
    _settings,
    _template,
    ofd_url,  # noqa: F401  (a fixture: pytest finds it by name here)
    served,
)

# ====================================================================== specs

REAL_DEFECTS = "ignore_24h_rule,use_utc_date"  # for the README's placeholder defects=a,b


@pytest.mark.parametrize("snippet", SPECS, ids=_ids(SPECS))
def test_spec(snippet: rb.Snippet, request: pytest.FixtureRequest) -> None:
    """Every spec parses; an emulator spec opens and its parameters show in the register; a
    loopback ``url:`` spec reaches an emulator of its model (with its control channel as the lab);
    a hardware URL passes the transport's check; a ``lab:`` id is in the README's inventory."""
    text = snippet.text.replace("defects=a,b", f"defects={REAL_DEFECTS}").replace(
        "name=value", "shift_limit_inclusive=1"
    )
    if "tcp://…" in text:
        text = text.replace("tcp://…", request.getfixturevalue("ofd_url"))
    text = text.replace("socket://…", "socket://127.0.0.1:1")
    parsed = parse_spec(text)
    refused = [
        line for c in COMMANDS if c.line == snippet.line for line in _output_lines(c) if line.startswith("ERROR")
    ]
    if refused:  # the README shows this spec refused, with its line
        with pytest.raises(UsageError) as error:
            _open_emulator_spec(parsed[0])
        assert _template(refused[0].removeprefix("ERROR: ")).fullmatch(str(error.value)), (refused, str(error.value))
    elif parsed[0].kind == "emulator":
        if text.split("?")[0] == "emulator:all":
            assert [s.id for s in parsed] == [f"emulator-{m}" for m in ("kf", "dkf", "start", "atol")], parsed
        for spec in parsed:
            _open_emulator_spec(spec)
    elif parsed[0].kind == "url":
        _check_url_spec(parsed[0], text)
    else:
        (inventory,) = INVENTORIES
        ids = list(parse_text(inventory.text, Path("lab.toml")).devices)
        assert parsed[0].target in ids, f"lab:{parsed[0].target} is not in the README's inventory ({ids})"


def _open_emulator_spec(spec: DeviceSpec) -> None:
    with open_kkt(spec.text) as handle:
        handle.kkt.status()
        snapshot = _emulator(handle).snapshot()
        settings = _settings(handle)
        for key, value in spec.params.items():
            if key == "firmware":
                assert snapshot["firmware"] == value
            elif key == "fn":
                assert snapshot["fn"]["kind"] == value
            elif key == "defects":
                assert sorted(snapshot["defects"]) == sorted(value.split(","))
            elif key == "clock":
                assert snapshot["clock"]["rtc"].startswith(value), snapshot["clock"]
            elif key in settings:
                assert settings[key] == _coerced(value), (key, settings[key], value)
            else:
                assert key in ("transport", "ofd", "faults"), f"{spec.text}: the register shows no {key!r}"


def _check_url_spec(spec: DeviceSpec, text: str) -> None:
    assert set(spec.params) <= URL_PARAMS, f"{spec.text}: the harness reads no {set(spec.params) - URL_PARAMS}"
    check_url(spec.url)
    if HARDWARE.match(spec.url) or not spec.url.startswith("socket://"):
        return  # a register on a tty or a lab host: parsed and checked, not reachable here
    with served(spec.model, control="control" in spec.params) as (url, control):
        wired = text.replace(spec.url, url, 1)
        if control:
            wired = wired.replace(spec.params["control"], control)
        with open_kkt(wired) as handle:
            assert handle.kkt.info().model == spec.model
            if control:  # "with its control channel as the lab"
                handle.lab.paper("out")
                assert handle.kkt.status().paper is PaperState.OUT


# ====================================================================== the control channel


@pytest.fixture(scope="module")
def linked_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``kkt-hil emulate kf`` with its control channel and linked to a ``kkt-hil hub`` (so the
    ``hub`` op answers too): the control port."""
    cwd = tmp_path_factory.mktemp("readme-control")
    hub, hub_lines = _emulate(cwd, "hub", "--listen", "tcp://127.0.0.1:0")
    try:
        proc, lines = _emulate(
            cwd,
            "emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--control", "tcp://127.0.0.1:0",
            "--frozen-clock", "--clock", START_CLOCK, "--hub", hub_lines[0].removeprefix("listening "),
        )  # fmt: skip
        try:
            yield int(lines[1].rsplit(":", 1)[1])
        finally:
            proc.kill()
    finally:
        hub.kill()


@pytest.fixture
def control(linked_emulator: int) -> Iterator[Control]:
    client = Control(linked_emulator)
    try:
        yield client
    finally:
        client.close()


@pytest.mark.parametrize("shown", REQUESTS, ids=_ids(REQUESTS))
def test_control_request(shown: rb.ControlRequest, control: Control) -> None:
    """Each request the README shows is accepted as written; a JSON reply it promises is the reply."""
    reply = control(shown.request)
    assert reply["ok"] is True, f"README line {shown.snippet.line}: {shown.request} → {reply}"
    if shown.promised is not None:
        assert {k: reply.get(k) for k in shown.promised} == shown.promised, reply


PROMISED = [r for r in REQUESTS if r.promise_text and r.promised is None]


@pytest.mark.parametrize("shown", PROMISED, ids=_ids(PROMISED))
def test_control_promise(shown: rb.ControlRequest) -> None:
    """What the README says a request does (``-> …`` in prose), on an emulator in process."""
    from scenarios.conftest import SUGAR

    op = shown.request["op"]
    with open_kkt("emulator:kf") as handle:
        control = _emulator(handle).control
        assert control({"op": "ofd", "online": False})["ok"]
        handle.kkt.open_shift()
        handle.kkt.sell([SUGAR])
        if op == "clock" and "0x0A" in shown.promise_text:
            assert control(shown.request)["ok"]
            with pytest.raises(DeviceError) as refused:
                handle.kkt.sell([SUGAR])
            assert refused.value.code == 0x0A, refused.value
        elif op == "ofd" and "drains" in shown.promise_text:
            assert handle.kkt.ofd_queue().count >= 1
            reply = control(shown.request)
            assert reply["ok"] and reply["unsent"] == 0, reply
            assert handle.kkt.ofd_queue().count == 0
        else:
            raise AssertionError(f"README line {shown.snippet.line} promises {shown.promise_text!r}: add its check")


def test_op_list_is_the_products(control: Control) -> None:
    """The op list (plus the ``hub`` op of its own section) is every op the emulator answers."""
    listed = {name for bullet in OP_BULLETS for name in bullet.names}
    shown = listed | {r.request["op"] for r in REQUESTS}
    product = set(control.ok({"op": "ops"})["ops"])
    assert shown == product, f"README lists {sorted(shown - product)} extra, misses {sorted(product - shown)}"


@pytest.mark.parametrize("bullet", OP_BULLETS, ids=[f"L{b.line} {' '.join(b.names)}" for b in OP_BULLETS])
def test_listed_op(bullet: rb.OpBullet, control: Control) -> None:
    """An op in the list is shown with its arguments (a JSON example), or needs none; each value
    of an ``a`` | ``b`` list in its bullet is accepted in the argument of the example it fits."""
    for name in bullet.names:
        examples = [r.request for r in REQUESTS if r.request["op"] == name]
        if not examples:
            reply = control({"op": name})
            assert reply["ok"] is True, f"README line {bullet.line}: {name!r} shows no arguments, but {reply}"
        for values in bullet.alternations():
            fits = [(e, k) for e in examples for k, v in e.items() if k != "op" and v in values]
            assert fits, f"README line {bullet.line}: {values} fit no argument of {examples}"
            example, key = fits[0]
            for value in values:
                reply = control({**example, key: value})
                assert reply["ok"] is True, (example, key, value, reply)
