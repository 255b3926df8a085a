"""harness.leases: one process at a time on a register.  A lease records its holder (host, pid,
user, test) beside the lock and a heartbeat; a dead holder's lease is free (flock), a stopped
holder's is expired and named; ``url:`` registers on ports are leased, in-process emulators are
not; ``kkt-hil devices --leases`` lists them, and ``devices`` does not ask a leased port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import leases, open_kkt
from harness.errors import HarnessError

from .cli_helpers import assert_clean_failure, run_cli
from .plugin_helpers import ServedDevice

HOLD = """
import sys
from harness import leases
lease = leases.acquire(sys.argv[1], "lab:held", "lab:held (test)", 5)
print("held", flush=True)
sys.stdin.readline()
"""


@pytest.fixture(autouse=True)
def lease_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "leases"
    monkeypatch.setenv(leases.LEASE_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lease of socket://127.0.0.1:9 until its stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, "socket://127.0.0.1:9"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "KKT_HIL_HOST": "bench-host", "PYTEST_CURRENT_TEST": ""},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "held\n"
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=10)


def test_a_lease_records_its_holder_and_goes_with_its_release(lease_folder: Path) -> None:
    with leases.acquire("socket://127.0.0.1:9", "lab:a", "lab:a (lab.toml:1)", 1) as lease:
        (state,) = leases.list_leases()
        assert (state.register, state.url, state.state, state.path) == (
            "lab:a",
            "socket://127.0.0.1:9",
            "held",
            lease.path,
        )
        assert state.holder is not None and state.holder.pid == os.getpid()
        assert state.holder.host == leases.host_name() and state.holder.user
        assert state.holder.test.endswith("test_a_lease_records_its_holder_and_goes_with_its_release")
        before = state.holder.heartbeat
        lease.refresh()
        (again,) = leases.list_leases()
        assert (
            again.holder is not None and again.holder.heartbeat >= before and again.holder.since == state.holder.since
        )
        with pytest.raises(HarnessError, match=r"lab:a \(lab.toml:1\): socket://127.0.0.1:9 is already open in this"):
            leases.acquire("socket://127.0.0.1:9", "lab:a", "lab:a (lab.toml:1)", 1)
    assert leases.list_leases() == [] and not lease.path.exists()


def test_a_waiter_names_the_holder_and_a_killed_holders_lease_is_free(holder: subprocess.Popen[str]) -> None:
    with pytest.raises(leases.LeaseBusy) as busy:
        leases.acquire("socket://127.0.0.1:9", "lab:held", "lab:held (test)", 0.3)
    message = str(busy.value)
    assert f"is in use by another test or run (pid {holder.pid} on bench-host (user " in message, message
    assert message.endswith("for more than 0.3 s") and "\n" not in message
    holder.kill()  # SIGKILL: no release ran
    holder.wait(timeout=10)
    (state,) = leases.list_leases()
    assert state.state == "free" and state.holder is not None and state.holder.pid == holder.pid
    with leases.acquire("socket://127.0.0.1:9", "lab:held", "lab:held (test)", 0):
        (state,) = leases.list_leases()
        assert state.state == "held" and state.holder is not None and state.holder.pid == os.getpid()


def test_a_stopped_holder_is_expired_and_named(holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch) -> None:
    os.kill(holder.pid, signal.SIGSTOP)  # its heartbeat stops with it
    later = time.time() + leases.EXPIRY_SECONDS + 1
    (state,) = leases.list_leases(now=later)
    assert state.state == "expired" and state.holder is not None and state.holder.pid == holder.pid
    assert state.heartbeat_age is not None and state.heartbeat_age > leases.EXPIRY_SECONDS
    (now,) = leases.list_leases()
    assert now.state == "held"  # its last heartbeat is recent
    monkeypatch.setattr(leases, "EXPIRY_SECONDS", 0.0)  # any heartbeat at all is too old now
    started = time.monotonic()
    with pytest.raises(
        leases.LeaseBusy, match=rf"pid {holder.pid} on bench-host .*heartbeat stopped .*hung or stopped"
    ):
        leases.acquire("socket://127.0.0.1:9", "lab:held", "lab:held (test)", 30)
    assert time.monotonic() - started < 10  # at once, not after the timeout


def test_a_pool_lease_takes_the_first_free_member_and_names_every_holder() -> None:
    a = leases.Candidate("socket://127.0.0.1:11", "lab:a", "lab:a (x:1)")
    b = leases.Candidate("socket://127.0.0.1:12", "lab:b", "lab:b (x:2)")
    with leases.acquire_any([a, b], 0, name="pool:p") as first:
        assert first.candidate == a
        with leases.acquire_any([a, b], 0, name="pool:p") as second:
            assert second.candidate == b  # the held one skipped without waiting
            with pytest.raises(HarnessError, match=r"pool:p: every register of the pool is already open in this"):
                leases.acquire_any([a, b], 0, name="pool:p")
            code = (
                "import sys; from harness import leases; a = leases.Candidate('socket://127.0.0.1:11', 'lab:a', 'a'); "
                "b = leases.Candidate('socket://127.0.0.1:12', 'lab:b', 'b')\n"
                "try: leases.acquire_any([a, b], 0.2, name='pool:p')\n"
                "except leases.LeaseBusy as exc: print(exc)"
            )
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
            line = out.stdout.strip()
            assert line.startswith("pool:p: every register of the pool is in use (lab:a by pid "), line
            assert f"lab:b by pid {os.getpid()} " in line and line.endswith("for more than 0.2 s"), line
            assert "waiting up to 0.2 s" in out.stderr
        with leases.acquire_any([a, b], 0, name="pool:p") as third:
            assert third.candidate == b


def test_url_registers_are_leased_and_in_process_emulators_are_not(served_kf: ServedDevice) -> None:
    spec = served_kf.spec(with_control=False)
    with open_kkt(spec):
        (state,) = leases.list_leases()
        assert (state.register, state.state) == (f"url:{served_kf.url}", "held")
        with pytest.raises(HarnessError, match="is already open in this process"):
            with open_kkt(spec + "&faults=seed:1,p:0"):  # the same port under fault injection
                pass
    assert leases.list_leases() == []
    with open_kkt("emulator:kf"):
        assert leases.list_leases() == []
    assert leases.leased_url("loop://") is None


def test_devices_leases_lists_held_expired_and_free(tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    with leases.acquire("socket://127.0.0.1:13", "lab:mine", "lab:mine (x:1)", 0):
        out = run_cli("devices", "--leases", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].startswith("leases: ") and lines[1].split() == [
            "REGISTER",
            "HOLDER",
            "TEST",
            "AGE",
            "HEARTBEAT",
            "STATE",
        ]
        rows = {line.split()[0]: line for line in lines[2:]}
        assert set(rows) == {"lab:held", "lab:mine"}
        assert f"@bench-host pid {holder.pid}" in rows["lab:held"] and rows["lab:held"].endswith("held")
        assert f"pid {os.getpid()}" in rows["lab:mine"] and "test_devices_leases_lists" in rows["lab:mine"]
        data = json.loads(run_cli("devices", "--leases", "--json", cwd=tmp_path).stdout)
        assert data["ok"] and {lease["register"]: lease["state"] for lease in data["leases"]} == {
            "lab:held": "held",
            "lab:mine": "held",
        }
    holder.kill()
    holder.wait(timeout=10)
    out = run_cli("devices", "--leases", cwd=tmp_path)
    (row,) = out.stdout.splitlines()[2:]
    assert row.startswith("lab:held") and "(was " in row and row.endswith("free"), row
    leases.acquire("socket://127.0.0.1:9", "lab:held", "x", 0).release()  # taken and given back: gone
    assert run_cli("devices", "--leases", cwd=tmp_path).stdout.splitlines()[1:] == ["no leases"]
    assert "--json goes with --leases" in assert_clean_failure(run_cli("devices", "--json", cwd=tmp_path), 2)


def test_devices_does_not_ask_a_leased_port(holder: subprocess.Popen[str]) -> None:
    from harness.cli.probe import _identify_unleased

    found, problem = _identify_unleased("socket://127.0.0.1:9", 0.2, None)
    assert found is None and problem.startswith(f"in use by another test or run (pid {holder.pid} on bench-host")


def test_one_register_is_one_lease_however_its_url_is_spelt(tmp_path: Path) -> None:
    tty = tmp_path / "ttyUSB0"
    tty.write_text("")
    by_id = tmp_path / "usb-Dreamkas_kf-if00"
    by_id.symlink_to(tty)
    assert leases.lease_path(str(by_id)) == leases.lease_path(str(tty))
    spellings = ["socket://127.0.0.1:4001", "rfc2217://127.0.0.1:4001?ign_set_control", "SOCKET://127.0.0.1:4001/"]
    assert len({leases.lease_path(url) for url in spellings}) == 1
    with leases.acquire(spellings[0], "url:a", "url:a", 0):
        with pytest.raises(HarnessError, match=r"in use|already open"):
            leases.acquire(spellings[1], "url:b", "url:b", 0)
    assert leases.lease_path("socket://127.0.0.1:4002") != leases.lease_path(spellings[0])


def test_a_dropped_lease_is_given_back() -> None:
    import gc

    lease = leases.acquire("socket://127.0.0.1:15", "url:x", "url:x", 0)
    path = lease.path
    del lease  # a handle forgotten without close(): the heartbeat thread must not keep it
    gc.collect()
    assert not path.exists()
    with leases.acquire("socket://127.0.0.1:15", "url:x", "url:x", 0):
        pass
