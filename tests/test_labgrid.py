"""``--kkt labgrid:<place>`` against a real labgrid lab on loopback (tests/labgrid_rig.py): the
place is acquired through the coordinator, its serial port (and power switch) read, and it is
released at the end — also when the run holding it is killed (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from harness import labgrid, open_kkt
from harness.errors import HarnessError, LabUnavailable, SafetyRefusal, UsageError
from harness.labgrid import client as labgrid_client
from harness.report.categories import SKIP_LAB, SKIP_SAFETY
from harness.spec import parse_spec

from .cli_helpers import kkt_hil, one_line
from .labgrid_rig import ROOT, LabgridLab, free_port, labgrid_lab

RAW = "kf-raw"  # an emulator's TCP port as a raw NetworkSerialPort, with a NetworkPowerPort
PTY = "kf-pty"  # an emulator's pty exported as RawSerialPort (ser2net, rfc2217)
ME = labgrid.me()
FAST = 10.0  # seconds for a one-line error (each labgrid-client call starts a Python: ~0.6 s)
RUN_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabgridLab]:
    with labgrid_lab(tmp_path_factory.mktemp("labgrid")) as lab:
        lab.make_place(RAW, "raw", kkt_model="kf")
        lab.make_place(PTY, "pty", kkt_model="kf")
        lab.make_place("bare", "pty")  # no model tag
        lab.make_place("mislabelled", "raw", kkt_model="atol")  # a Касса Ф tagged as an АТОЛ
        yield lab


@pytest.fixture
def env(lab: LabgridLab, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """This process and the runs it starts find the lab (LG_COORDINATOR, the venv's labgrid-client)."""
    environment = lab.env()
    for key in [k for k in os.environ if k.startswith(("LG_", "KKT_HIL_LABGRID"))]:
        monkeypatch.delenv(key)
    for key in ("LG_COORDINATOR", "KKT_HIL_LABGRID_CLIENT"):
        monkeypatch.setenv(key, environment[key])
    yield environment
    for place in lab.held_places():  # a failed test must not leave the next one a held place
        lab.client("release", "--kick", place=place, check=False)


# ------------------------------------------------------------------------------ open_kkt


@pytest.mark.timeout(RUN_TIMEOUT)  # the first test also starts the lab
def test_open_kkt_holds_the_place_while_open(lab: LabgridLab, env: dict[str, str]) -> None:
    start = time.monotonic()
    with open_kkt(f"labgrid:{RAW}") as handle:
        opened = time.monotonic() - start
        assert handle.kkt.status().shift is not None
        assert handle.spec.url.startswith("socket://127.0.0.1:")
        assert lab.holder(RAW) == ME
        start = time.monotonic()
    closed = time.monotonic() - start
    assert lab.holder(RAW) is None
    print(f"labgrid acquire+open {opened:.2f} s, close+release {closed:.2f} s")
    assert opened < FAST and closed < FAST


def test_open_kkt_over_rfc2217_from_the_exporters_ser2net(lab: LabgridLab, env: dict[str, str]) -> None:
    with open_kkt(f"labgrid:{PTY}") as handle:
        assert handle.spec.url.startswith("rfc2217://127.0.0.1:")
        assert handle.kkt.info().model
        with pytest.raises(LabUnavailable, match="нет ресурса питания"):
            handle.lab.power("cycle")
    assert lab.holder(PTY) is None


def test_power_through_the_places_power_resource(lab: LabgridLab, env: dict[str, str]) -> None:
    assert lab.relay is not None and lab.raw_control is not None
    with open_kkt(f"labgrid:{RAW}") as handle:
        boots = lab.raw_control.state().get("boot_count")
        handle.lab.power("cycle")  # labgrid-client power cycle -> simplerest -> the relay -> the emulator
        assert lab.relay.switched[-2:] == [0, 1]
        assert handle.kkt.status().shift is not None  # reconnected after power-up
        events = [e["event"] for e in lab.raw_control.ok({"op": "journal"})["journal"]]
        assert "power off" in events and "power on" in events, events
        if boots is not None:
            assert lab.raw_control.state()["boot_count"] == boots + 1
        with pytest.raises(LabUnavailable, match="только питанием"):
            handle.lab.paper("out")


def test_destructive_requests_are_refused_on_a_place(lab: LabgridLab, env: dict[str, str]) -> None:
    with open_kkt(f"labgrid:{RAW}") as handle:
        with pytest.raises(SafetyRefusal, match="labgrid place cannot prove"):
            handle.kkt.set_clock(datetime.now())
        assert "refused before sending" in handle.trace.render()


# ------------------------------------------------------------------------------ one-line errors


def _fails_fast(spec: str, error: type[Exception], match: str) -> str:
    start = time.monotonic()
    with pytest.raises(error, match=match) as caught:
        with open_kkt(spec):
            pass
    assert time.monotonic() - start < FAST
    text = str(caught.value)
    assert "\n" not in text
    return text


@pytest.mark.timeout(RUN_TIMEOUT)
def test_a_place_held_by_someone_else(lab: LabgridLab, env: dict[str, str], tmp_path: Path) -> None:
    lab.client("acquire", place=RAW, user="alice")
    try:
        host = ME.split("/")[0]
        _fails_fast(f"labgrid:{RAW}", HarnessError, f"acquired by {host}/alice")
        assert lab.holder(RAW) == f"{host}/alice"  # untouched
        result = _pytest(["--kkt", f"labgrid:{RAW}", "-k", "no_paper"], env, tmp_path)
        assert result.returncode == 4, result.stdout + result.stderr
        assert f"acquired by {host}/alice" in one_line(result.stderr)
    finally:
        lab.client("release", place=RAW, user="alice")


def test_a_place_this_user_holds_elsewhere(lab: LabgridLab, env: dict[str, str]) -> None:
    lab.client("acquire", place=RAW)
    try:
        text = _fails_fast(f"labgrid:{RAW}", HarnessError, f"already acquired by {ME}")
        assert f"labgrid-client -p {RAW} release" in text
        assert lab.holder(RAW) == ME  # the other run's hold is not released by the failed open
    finally:
        lab.client("release", place=RAW)


def test_unknown_place_pattern_and_missing_model(lab: LabgridLab, env: dict[str, str]) -> None:
    _fails_fast("labgrid:nope", UsageError, "no place 'nope' on the coordinator")
    _fails_fast("labgrid:kf-ra", UsageError, "no place named exactly 'kf-ra'")  # labgrid would match kf-raw
    _fails_fast("labgrid:bare", UsageError, "set-tags kkt_model=kf")
    _fails_fast(f"labgrid:{RAW}#model=atol", UsageError, "tagged kkt_model=kf, the spec says model=atol")
    assert lab.holder("bare") is None and lab.holder(RAW) is None


@pytest.mark.timeout(RUN_TIMEOUT)
def test_a_run_that_cannot_reach_the_register_releases_the_place(
    lab: LabgridLab, env: dict[str, str], tmp_path: Path
) -> None:
    result = _pytest(["--kkt", "labgrid:mislabelled", "-k", "near_end"], env, tmp_path)
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert "labgrid:mislabelled" in one_line(result.stderr) and "Traceback" not in result.stderr
    assert lab.holder("mislabelled") is None


def test_coordinator_down(lab: LabgridLab, env: dict[str, str]) -> None:
    _fails_fast(f"labgrid:{RAW}?coordinator=127.0.0.1:{free_port()}", HarnessError, "does not answer")


def test_no_labgrid_client_says_make_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(labgrid.CLIENT_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(labgrid_client, "REPO_CLIENT", tmp_path / "labgrid-client")
    with pytest.raises(UsageError, match="run `make setup`"):
        labgrid.find_client()
    monkeypatch.setenv(labgrid.CLIENT_ENV, str(tmp_path / "nothing"))
    with pytest.raises(UsageError, match="not an executable labgrid-client"):
        labgrid.find_client()


# ------------------------------------------------------------------------------ specs and show


# ------------------------------------------------------------------------------ inventory entries


def _inventory(tmp_path: Path, serial: str, place: str = RAW) -> Path:
    path = tmp_path / "lab.toml"
    entry = f'id = "lg1"\nmodel = "kf"\nlabgrid = "{place}"\nserial = "{serial}"\nfn = "fn36"\n'
    path.write_text(f'[[device]]\n{entry}sacrificial = false\noperator = "none"\n')
    return path


@pytest.mark.timeout(RUN_TIMEOUT)
def test_an_inventory_entry_on_a_place(lab: LabgridLab, env: dict[str, str], tmp_path: Path) -> None:
    assert lab.relay is not None and lab.raw_control is not None
    serial = lab.raw_control.state()["serial"]
    inventory = _inventory(tmp_path, serial)
    with open_kkt("lab:lg1", inventory=inventory) as handle:
        assert handle.bench is not None and handle.kkt.info().serial == serial  # identity checked, as for lab:
        assert lab.holder(RAW) == ME
        handle.lab.power("cycle")  # the place's power resource as the bench supply
        assert lab.relay.switched[-2:] == [0, 1]
    assert lab.holder(RAW) is None
    junit = tmp_path / "junit.xml"
    run = ["--kkt", "lab:lg1", f"--inventory={inventory}", "-k", "near_end", f"--junitxml={junit}"]
    result = _pytest(run, env, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert list(_outcomes(junit)) == ["test_near_end_only_warns[lab-lg1]"]
    assert lab.holder(RAW) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [("+x", "name the labgrid place"), ("kf1#model=kf", "not #model="), ("kf1?coordinator=x", "HOST:PORT")],
)
def test_bad_labgrid_entries(tmp_path: Path, value: str, message: str) -> None:
    from harness.inventory import InventoryError, load_inventory

    with pytest.raises(InventoryError, match=r"lab\.toml:4: labgrid .*" + message):
        load_inventory(_inventory(tmp_path, "0497123456", place=value))


def test_labgrid_specs() -> None:
    [spec] = parse_spec("labgrid:kf1?coordinator=10.0.0.5:20408#model=kf")
    assert (spec.kind, spec.target, spec.model, spec.params) == (
        "labgrid",
        "kf1",
        "kf",
        {"coordinator": "10.0.0.5:20408"},
    )
    assert spec.id == "labgrid-kf1"
    for bad, message in [
        ("labgrid:", "expected emulator:MODEL"),
        ("labgrid:+token", "name the labgrid place"),
        ("labgrid:kf1?coordinator=nowhere", "coordinator must be HOST:PORT"),
        ("labgrid:kf1?coordinator=127.0.0.1:99999", "port 1-65535"),
        ("labgrid:kf1?coordinator=127.0.0.1:0", "port 1-65535"),
        ("labgrid:kf1?faults=seed:1", "not 'faults'"),
        ("labgrid:kf1#model=nope", "unknown model 'nope'"),
    ]:
        with pytest.raises(UsageError, match=message):
            parse_spec(bad)


SHOW = """Place 'kf1':
  tags: kkt_model=kf, rack=b
  matches:
    exp/raw/*
  acquired: lab4/qa
  acquired resources:
    exp/raw/NetworkSerialPort/NetworkSerialPort
  created: 2026-12-02 06:00:24.343497
  changed: 2026-12-02 06:00:31.455082
Acquired resource 'NetworkSerialPort' (exp/raw/NetworkSerialPort/NetworkSerialPort):
  {'acquired': 'kf1',
   'avail': True,
   'cls': 'NetworkSerialPort',
   'params': {'extra': {'proxy': 'lab4', 'proxy_required': False},
              'host': '10.0.0.7',
              'port': 4001,
              'speed': 115200}}
"""


def test_show_is_read_as_labgrid_prints_it() -> None:
    shown = labgrid.parse_show(SHOW)
    assert (shown.name, shown.tags, shown.acquired) == ("kf1", {"kkt_model": "kf", "rack": "b"}, "lab4/qa")
    [(kind, path, resource)] = shown.resources
    assert (kind, path, resource["params"]["port"]) == ("Acquired", "exp/raw/NetworkSerialPort/NetworkSerialPort", 4001)
    with pytest.raises(ValueError):
        labgrid.parse_show("something else\n")


# ------------------------------------------------------------------------------ pytest runs


def _pytest(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = RUN_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", str(ROOT / "scenarios"), "-p", "no:randomly", "-q", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _outcomes(junit: Path) -> dict[str, str]:
    """``{test name: "passed" | "failed" | "skipped: <reason>"}``."""
    found: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            found[case.get("name", "")] = "failed"
        elif skipped is not None:
            found[case.get("name", "")] = f"skipped: {skipped.get('message', '')}"
        else:
            found[case.get("name", "")] = "passed"
    return found


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["one-process", "xdist"])
@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_scenarios_run_on_a_place(lab: LabgridLab, env: dict[str, str], tmp_path: Path, xdist: list[str]) -> None:
    junit = tmp_path / "junit.xml"
    selection = ["-k", "no_paper"] if xdist else []  # the whole suite once, a subset under xdist
    start = time.monotonic()
    result = _pytest(["--kkt", f"labgrid:{RAW}", f"--junitxml={junit}", *selection, *xdist], env, tmp_path)
    took = time.monotonic() - start
    outcomes = _outcomes(junit)
    print(f"labgrid scenarios {xdist or 'one process'}: {len(outcomes)} tests in {took:.1f} s")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert outcomes and all(f"[labgrid-{RAW}" in name for name in outcomes), outcomes
    for name, outcome in sorted(outcomes.items()):
        print(f"  {name}: {outcome}")
        assert outcome == "passed" or len(outcome) > len("skipped: ") + 10, (name, outcome)  # a skip says why
    # the register was reached, and each scenario went as far as a place's lab (power only) lets it
    assert any(outcome.startswith(f"skipped: {SKIP_LAB}") for outcome in outcomes.values()), outcomes
    assert lab.holder(RAW) is None


@pytest.mark.timeout(RUN_TIMEOUT + 30)
def test_the_suite_through_a_place_with_its_emulators_control_channel(
    lab: LabgridLab, env: dict[str, str], tmp_path: Path
) -> None:
    """The whole suite over the exporter's ser2net (RFC 2217), the emulator behind the place giving
    paper, power and clock through #control=: scenarios run, not only skip; destructive ones are
    refused on a remote register nothing proves sacrificial."""
    junit = tmp_path / "junit.xml"
    spec = f"labgrid:{PTY}#control={lab.pty_control}"
    result = _pytest(["--kkt", spec, f"--junitxml={junit}"], env, tmp_path)
    outcomes = _outcomes(junit)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    passed = [name for name, outcome in outcomes.items() if outcome == "passed"]
    skipped = {name: outcome for name, outcome in outcomes.items() if outcome != "passed"}
    needing_the_lab = {
        f"test_paper_out_mid_receipt[labgrid-{PTY}]",
        f"test_queue_grows_while_ofd_down[labgrid-{PTY}-receipts]",
    }
    assert needing_the_lab <= set(passed), outcomes  # paper and the OFD link came through the control channel
    assert all(outcome.startswith(f"skipped: {SKIP_SAFETY}") for outcome in skipped.values()), skipped
    assert lab.holder(PTY) is None


HOLD = """
import os, time
from pathlib import Path

def test_hold(kkt):
    kkt.status()
    Path(os.environ["KKT_HIL_TEST_HELD"]).write_text("held")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # held until the run is killed
        time.sleep(0.1)
"""


@pytest.mark.parametrize("runner", ["pytest", "kkt-hil run"])
@pytest.mark.timeout(RUN_TIMEOUT)
def test_a_killed_run_releases_the_place(lab: LabgridLab, env: dict[str, str], tmp_path: Path, runner: str) -> None:
    (tmp_path / "test_hold.py").write_text(HOLD)
    flag = tmp_path / "held"
    if runner == "pytest":
        command = [sys.executable, "-m", "pytest", "test_hold.py", "-p", "no:randomly", "-q", f"--kkt=labgrid:{RAW}"]
    else:
        command = [*kkt_hil(), "run", f"--kkt=labgrid:{RAW}", "--results", str(tmp_path / "results"), "test_hold.py"]
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**env, "KKT_HIL_TEST_HELD": str(flag)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert proc.poll() is None, f"{runner} ended before holding the place"
            assert time.monotonic() < deadline, f"{runner} did not reach the test"
            time.sleep(0.05)
        assert lab.holder(RAW) == ME
        if runner == "pytest":
            os.kill(proc.pid, signal.SIGKILL)  # the holder alone
        else:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole run: kkt-hil, pytest, what they started
        proc.wait(10)
        released = lab.wait_holder(RAW, None, timeout=10.0)
        print(f"{runner} killed: the place released {released:.2f} s later")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # what is left of the group this test started
        except ProcessLookupError:
            pass
        proc.wait(10)
