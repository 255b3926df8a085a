"""harness.spec: the ``--kkt`` device spec syntax (a contract users' scripts rely on)."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError, UsageError
from harness.families import default_models
from harness.spec import DeviceSpec, parse_spec

KNOWN = ("kf", "dkf", "start", "atol")


def one(text: str, known: tuple[str, ...] = KNOWN) -> DeviceSpec:
    specs = parse_spec(text, known_models=known)
    assert len(specs) == 1, specs
    return specs[0]


# ------------------------------------------------------------------------------------------
# well-formed specs


def test_emulator_model() -> None:
    spec = one("emulator:kf")
    assert spec == DeviceSpec("emulator", "kf", "emulator:kf")
    assert spec.url == "" and spec.target == "" and spec.params == {}
    assert spec.id == "emulator-kf"


def test_surrounding_whitespace_is_ignored() -> None:
    spec = one("  emulator:dkf \n")
    assert (spec.kind, spec.model, spec.text, spec.id) == ("emulator", "dkf", "emulator:dkf", "emulator-dkf")


@pytest.mark.parametrize("known", [KNOWN, ("kf", "dkf", "start"), ("start", "kf")])
def test_emulator_all_expands_to_the_known_models_in_order(known: tuple[str, ...]) -> None:
    """``all`` is the four emulated families (kf, dkf, start, atol) that are known, in that order."""
    specs = parse_spec("emulator:all", known_models=known)
    known = tuple(m for m in ("kf", "dkf", "start", "atol") if m in known)
    assert [s.model for s in specs] == list(known)
    assert [s.kind for s in specs] == ["emulator"] * len(known)
    assert [s.text for s in specs] == [f"emulator:{m}" for m in known]
    assert [s.id for s in specs] == [f"emulator-{m}" for m in known]


def test_emulator_all_defaults_to_every_emulator_family() -> None:
    assert [s.model for s in parse_spec("emulator:all")] == list(default_models())


def test_emulator_all_carries_the_parameters_to_every_model() -> None:
    specs = parse_spec("emulator:all?firmware=1.0.0", known_models=("kf", "dkf"))
    assert [s.text for s in specs] == ["emulator:kf?firmware=1.0.0", "emulator:dkf?firmware=1.0.0"]
    assert all(s.params == {"firmware": "1.0.0"} for s in specs)
    assert [s.id for s in specs] == ["emulator-kf[firmware=1.0.0]", "emulator-dkf[firmware=1.0.0]"]


def test_emulator_params() -> None:
    spec = one("emulator:kf?firmware=2.25.0&defects=a,b")
    assert spec.kind == "emulator" and spec.model == "kf"
    assert spec.params == {"firmware": "2.25.0", "defects": "a,b"}
    assert spec.text == "emulator:kf?firmware=2.25.0&defects=a,b"
    # parameters that change the device are part of the id (sorted), so two variants never collide
    assert spec.id == "emulator-kf[defects=a,b,firmware=2.25.0]"
    assert spec.id != one("emulator:kf?firmware=2.26.0").id


def test_emulator_transport_param_is_not_part_of_the_id() -> None:
    spec = one("emulator:kf?transport=tcp")
    assert spec.params == {"transport": "tcp"}
    assert spec.id == "emulator-kf"


def test_emulator_empty_value_is_kept() -> None:
    # a blank value is syntactically fine; the emulator builder judges it
    assert one("emulator:kf?defects=").params == {"defects": ""}


def test_url_serial_device() -> None:
    spec = one("url:/dev/ttyUSB0#model=kf")
    assert (spec.kind, spec.model, spec.url, spec.target) == ("url", "kf", "/dev/ttyUSB0", "")
    assert spec.params == {}  # model is not left among the params
    assert spec.text == "url:/dev/ttyUSB0#model=kf"
    assert spec.id == "url-kf"


def test_url_socket_with_control_channel() -> None:
    spec = one("url:socket://127.0.0.1:5#model=kf&control=tcp://127.0.0.1:6")
    assert spec.kind == "url" and spec.model == "kf"
    assert spec.url == "socket://127.0.0.1:5"
    assert spec.params == {"control": "tcp://127.0.0.1:6"}
    assert spec.id == "url-kf"  # the control URL is where, not what: not in the id


def test_url_extra_params_are_kept_and_named_in_the_id() -> None:
    spec = one("url:/dev/ttyS0#model=dkf&baud=115200")
    assert spec.params == {"baud": "115200"}
    assert spec.id == "url-dkf[baud=115200]"


def test_url_query_belongs_to_the_url() -> None:
    spec = one("url:rfc2217://127.0.0.1:4000?logging=debug#model=start")
    assert spec.url == "rfc2217://127.0.0.1:4000?logging=debug"
    assert spec.model == "start"


def test_lab_spec() -> None:
    spec = one("lab:bench1")
    assert (spec.kind, spec.model, spec.target, spec.url) == ("lab", "", "bench1", "")
    assert spec.text == "lab:bench1"
    assert spec.id == "lab-bench1"


def test_lab_spec_params() -> None:
    spec = one("lab:bench1?fn=fn15")
    assert spec.target == "bench1"
    assert spec.params == {"fn": "fn15"}
    assert spec.id == "lab-bench1[fn=fn15]"


def test_known_models_restricts_emulators() -> None:
    with pytest.raises(UsageError, match="unknown model 'atol'"):
        parse_spec("emulator:atol", known_models=("kf", "dkf", "start"))
    assert one("emulator:atol").model == "atol"


# ------------------------------------------------------------------------------------------
# malformed specs: a UsageError (a HarnessError) with one line naming the problem

MALFORMED = [
    ("emulator", r"expected emulator:MODEL"),
    ("emulator:", r"expected emulator:MODEL"),
    ("", r"expected emulator:MODEL"),
    ("emulator:zz", r"unknown model 'zz'"),
    ("emulator:?firmware=1.0.0", r"unknown model ''"),
    ("url:/dev/x", r"name the model, e\.g\. url:/dev/x#model=kf"),
    ("url:/dev/x#baud=9600", r"name the model"),
    ("url:#model=kf", r"no URL"),
    ("url:/dev/x#model=zz", r"unknown model 'zz'"),
    ("foo:bar", r"unknown kind 'foo'"),
    ("emulator:kf?firmware", r"key=value"),
    ("emulator:kf?firmware=2.25.0&&defects=a", r"key=value"),
    ("url:/dev/x#model", r"key=value"),
    ("emulator:kf?firmware=2.25.0&firmware=2.26.0", r"parameter 'firmware' given twice"),
    ("url:/dev/x#model=kf&model=dkf", r"parameter 'model' given twice"),
    ("lab:b1?x=1&x=2", r"parameter 'x' given twice"),
]


@pytest.mark.parametrize(("text", "problem"), MALFORMED, ids=[t or "<empty>" for t, _ in MALFORMED])
def test_malformed_spec_raises_one_line_usage_error(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem) as info:
        parse_spec(text, known_models=KNOWN)
    message = str(info.value)
    assert isinstance(info.value, HarnessError)
    assert "\n" not in message
    assert message.startswith(f"bad --kkt spec {text.strip()!r}: ")


def test_known_models_are_listed_in_the_error() -> None:
    with pytest.raises(UsageError) as info:
        parse_spec("emulator:zz", known_models=("kf", "dkf"))
    assert "known: kf, dkf, all" in str(info.value)


def test_lab_spec_needs_an_inventory_id() -> None:
    with pytest.raises(UsageError):
        parse_spec("lab:?x=1", known_models=KNOWN)
