"""The bench supply driver (harness.instruments.supply) against the pyvisa-sim profile, and
through the real pyvisa-py backend against SimulatedSupply on loopback.  No wall-clock sleeps:
deadlines are short pyvisa timeouts, and power_cycle gets a fake sleep."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import pyvisa

from harness.errors import LinkError
from harness.instruments.sim import SIM_DEFINITION, SIM_RESOURCE, SIM_SERIAL_RESOURCE
from harness.instruments.sim_supply import SimulatedSupply
from harness.instruments.supply import BenchSupply, InstrumentError, power_cycle

from .tcp_peers import AnsweringPeer

TIMEOUT = 0.5
SLACK = 1.5  # seconds a loaded CI machine may add to a deadline


def one_line(error: pytest.ExceptionInfo[InstrumentError], resource: str) -> str:
    text = str(error.value)
    assert "\n" not in text
    assert "Traceback" not in text
    assert text.startswith(f"bench supply {resource}: ")
    assert error.value.__cause__ is None
    return text


# ---------------------------------------------------------------- the pyvisa-sim profile


@pytest.fixture
def sim_rm() -> Iterator[pyvisa.ResourceManager]:
    rm = pyvisa.ResourceManager(f"{SIM_DEFINITION}@sim")
    yield rm
    rm.close()


@pytest.fixture
def sim(sim_rm) -> Iterator[BenchSupply]:
    with BenchSupply(SIM_RESOURCE, resource_manager=sim_rm, timeout=TIMEOUT) as supply:
        yield supply


def test_sim_identify(sim):
    assert sim.identify() == "kkt-hil,SIM-PSU,0,1.0"


def test_sim_serial_resource_answers_the_same(sim_rm):
    with BenchSupply(SIM_SERIAL_RESOURCE, resource_manager=sim_rm, timeout=TIMEOUT) as supply:
        assert supply.identify() == "kkt-hil,SIM-PSU,0,1.0"
        assert supply.output_state() is True


def test_sim_output_off_on(sim):
    assert sim.output_state() is True  # a lab register is powered
    sim.output(False)
    assert sim.output_state() is False
    sim.output(True)
    assert sim.output_state() is True


def test_sim_setpoints_read_back_and_measure(sim):
    sim.set_voltage(5.0)
    sim.set_current_limit(0.5)
    assert sim.voltage() == 5.0
    assert sim.current_limit() == 0.5
    assert sim.measure_voltage() == 5.0  # the profile's measurement follows the setpoint
    assert sim.measure_current() == 0.0


def test_sim_rejected_setting_raises_and_keeps_the_old_value(sim):
    sim.set_voltage(12.0)
    with pytest.raises(InstrumentError) as error:
        sim.set_voltage(100.0)
    text = one_line(error, SIM_RESOURCE)
    assert 'VOLT 100.000 rejected: -100,"Command error"' in text
    assert isinstance(error.value, LinkError)
    assert sim.voltage() == 12.0
    assert sim.measure_voltage() == 12.0


def test_sim_missing_channel_is_an_instrument_error(sim_rm):
    with BenchSupply(SIM_RESOURCE, channel=2, resource_manager=sim_rm, timeout=TIMEOUT) as supply:
        assert supply.identify()  # not a channel command: no selection
        with pytest.raises(InstrumentError) as error:
            supply.output(False)
    assert "INST:NSEL 2 rejected" in one_line(error, SIM_RESOURCE)


def test_sim_unknown_resource(sim_rm):
    with pytest.raises(InstrumentError) as error:
        BenchSupply("ASRL9::INSTR", resource_manager=sim_rm, timeout=TIMEOUT)
    assert "cannot open" in one_line(error, "ASRL9::INSTR")


def test_power_cycle_uses_the_injected_sleep(sim):
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        assert sim.output_state() is False

    power_cycle(sim, 3.0, sleep=sleep)
    assert waits == [3.0]
    assert sim.output_state() is True


# ---------------------------------------------------------------- SimulatedSupply over pyvisa-py


@pytest.fixture
def py_rm() -> Iterator[pyvisa.ResourceManager]:
    rm = pyvisa.ResourceManager("@py")
    yield rm
    rm.close()


@pytest.fixture
def events() -> list[bool]:
    return []


@pytest.fixture
def psu(events) -> Iterator[SimulatedSupply]:
    with SimulatedSupply(on_output=events.append) as supply:
        yield supply


def connect(supply: SimulatedSupply, rm: pyvisa.ResourceManager) -> BenchSupply:
    return BenchSupply(supply.resource, resource_manager=rm, timeout=TIMEOUT)


def test_lan_identify_and_resource(psu, py_rm):
    assert psu.resource == f"TCPIP::127.0.0.1::{psu.port}::SOCKET"
    with connect(psu, py_rm) as supply:
        assert supply.identify() == "kkt-hil,SIM-PSU,0,1.0"


def test_lan_output_changes_reach_on_output_in_order(psu, py_rm, events):
    assert psu.output is True
    with connect(psu, py_rm) as supply:
        supply.output(True)  # already on: no change, no call
        supply.output(False)
        assert psu.output is False
        assert supply.output_state() is False
        assert supply.measure_voltage() == 0.0
        supply.output(True)
        assert supply.measure_voltage() == 12.0
    assert events == [False, True]


def test_lan_two_clients_share_the_instrument(psu, py_rm, events):
    with connect(psu, py_rm) as a, connect(psu, py_rm) as b:
        a.output(False)
        assert b.output_state() is False
        b.set_voltage(5.0)
        b.set_current_limit(0.25)
        assert (a.voltage(), a.current_limit()) == (5.0, 0.25)
        b.output(True)
        assert a.output_state() is True
        assert a.measure_voltage() == 5.0
    assert events == [False, True]


def test_lan_error_queue_after_a_bad_command(psu, py_rm):
    raw = py_rm.open_resource(psu.resource, read_termination="\n", write_termination="\n", timeout=500)
    try:
        raw.write("FOO 1")
        raw.write("VOLT abc")
        assert raw.query("SYST:ERR?") == '-113,"Undefined header"'
        assert raw.query("SYST:ERR?") == '-104,"Data type error"'
        assert raw.query("SYST:ERR?") == '0,"No error"'
        raw.write("outp off")  # headers are case-insensitive, long forms work
        assert raw.query("OUTPut?") == "0"
    finally:
        raw.close()


def test_lan_rejected_setting_names_the_scpi_error(psu, py_rm):
    with connect(psu, py_rm) as supply:
        with pytest.raises(InstrumentError) as error:
            supply.set_voltage(31.0)
        assert 'VOLT 31.000 rejected: -222,"Data out of range"' in one_line(error, psu.resource)
        assert supply.voltage() == 12.0
    with BenchSupply(psu.resource, channel=3, resource_manager=py_rm, timeout=TIMEOUT) as third:
        with pytest.raises(InstrumentError, match=r"INST:NSEL 3 rejected: -222"):
            third.output(False)
    assert psu.output is True


def test_lan_closed_supply_fails_within_the_timeout(events, py_rm):
    psu = SimulatedSupply(on_output=events.append)
    supply = connect(psu, py_rm)
    try:
        assert supply.identify()
        psu.close()
        started = time.monotonic()
        with pytest.raises(InstrumentError) as error:
            supply.identify()
        assert time.monotonic() - started < TIMEOUT + SLACK
        assert "*IDN?" in one_line(error, psu.resource)
    finally:
        supply.close()
        psu.close()


def test_lan_silent_supply_is_a_timeout(py_rm):
    with AnsweringPeer(respond=lambda _chunk: b"") as peer:
        resource = f"TCPIP::127.0.0.1::{peer.port}::SOCKET"
        with BenchSupply(resource, resource_manager=py_rm, timeout=TIMEOUT) as supply:
            started = time.monotonic()
            with pytest.raises(InstrumentError) as error:
                supply.identify()
            assert time.monotonic() - started < TIMEOUT + SLACK
    assert one_line(error, resource) == f"bench supply {resource}: no answer to *IDN? within 0.5 s"


def test_lan_nothing_listening(py_rm):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    resource = f"TCPIP::127.0.0.1::{port}::SOCKET"
    started = time.monotonic()
    with pytest.raises(InstrumentError) as error:
        with BenchSupply(resource, timeout=TIMEOUT) as supply:  # the default pyvisa-py manager
            supply.identify()
    assert time.monotonic() - started < TIMEOUT + SLACK
    one_line(error, resource)


def test_lan_refuses_a_non_loopback_host():
    with pytest.raises(ValueError, match="loopback"):
        SimulatedSupply("192.0.2.1")


def test_lan_broken_on_output_is_queued_not_fatal(py_rm):
    def broken(state: bool) -> None:
        raise RuntimeError("emulator gone")

    with SimulatedSupply(on_output=broken) as psu, connect(psu, py_rm) as supply:
        with pytest.raises(InstrumentError, match=r'OUTP 0 rejected: -300,"Device-specific error"'):
            supply.output(False)
        assert supply.output_state() is False


def test_closing_one_supply_leaves_another_working(events) -> None:
    """pyvisa shares one resource manager per backend in a process: closing one supply must not
    end the session of another (two lab registers, or the preflight and the run)."""
    with SimulatedSupply(on_output=events.append) as first_psu, SimulatedSupply() as second_psu:
        first, second = BenchSupply(first_psu.resource), BenchSupply(second_psu.resource)
        try:
            first.close()
            second.output(False)
            assert second.output_state() is False and second_psu.output is False
        finally:
            second.close()
