"""``kkt-hil`` usage errors: no or an unknown command, bad ``emulate`` models, defects and options
(exit 2, one line on stderr), and the refusal of every non-loopback ``--listen``/``--control``
address before anything is bound (proved by a wrapper that records every ``bind``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .cli_helpers import BIND_RECORDER, KNOWN_DEFECTS, RUN_TIMEOUT, assert_clean_failure, run_cli, run_recording_binds

# ================================================================================ usage errors


def test_no_arguments_prints_usage_and_exits_2(tmp_path: Path) -> None:
    result = run_cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: kkt-hil" in (result.stdout + result.stderr)
    for command in ("emulate", "hub", "probe", "devices", "run", "report"):
        assert command in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_command(tmp_path: Path) -> None:
    result = run_cli("frobnicate", cwd=tmp_path)
    assert "frobnicate" in assert_clean_failure(result, 2)


def test_emulate_unknown_model(tmp_path: Path) -> None:
    result = run_cli("emulate", "nosuch", cwd=tmp_path)
    line = assert_clean_failure(result, 2)
    assert "nosuch" in line and "kf" in line
    assert result.stdout == ""


def test_emulate_unknown_defect_names_the_known_ones(tmp_path: Path) -> None:
    result = run_cli("emulate", "kf", "--defect", "nosuch", cwd=tmp_path)
    line = assert_clean_failure(result, 2)
    assert "nosuch" in line
    for name in KNOWN_DEFECTS:
        assert name in line
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["--firmware", "two.six"],
        ["--fn", "fn99"],
        ["--clock", "tomorrow"],
        ["--set", "nokey"],
        ["--set", "no_such_setting=1"],
        ["--listen", "udp://127.0.0.1:0"],
        ["--listen", "tcp://127.0.0.1:99999"],
        ["--listen", "tcp://127.0.0.1:0", "--pty"],
    ],
    ids=["firmware", "fn", "clock", "set-no-eq", "set-unknown", "udp", "bad-port", "listen-and-pty"],
)
def test_emulate_bad_options(tmp_path: Path, args: list[str]) -> None:
    result = run_cli("emulate", "kf", *args, cwd=tmp_path)
    assert_clean_failure(result, 2)
    assert result.stdout == ""


def test_emulate_refuses_non_loopback_listen_and_binds_nothing(tmp_path: Path) -> None:
    result, binds = run_recording_binds(tmp_path, "emulate", "kf", "--listen", "tcp://10.0.0.1:0")
    line = assert_clean_failure(result, 2)
    assert "10.0.0.1" in line and "loopback" in line
    assert result.stdout == ""
    assert binds == []


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_emulate_refuses_other_non_loopback_hosts(tmp_path: Path, host: str) -> None:
    result, binds = run_recording_binds(tmp_path, "emulate", "kf", "--listen", f"tcp://{host}:0")
    assert_clean_failure(result, 2)
    assert binds == []


def test_emulate_refuses_non_loopback_control_and_binds_only_loopback(tmp_path: Path) -> None:
    result, binds = run_recording_binds(
        tmp_path, "emulate", "kf", "--listen", "tcp://127.0.0.1:0", "--control", "tcp://10.0.0.1:0"
    )
    assert "loopback" in assert_clean_failure(result, 2)
    assert all("127.0.0.1" in b for b in binds), binds  # now refused before anything binds


@pytest.mark.parametrize("command", ["hub", "ofd"])
def test_server_refuses_non_loopback_listen_and_binds_nothing(tmp_path: Path, command: str) -> None:
    result, binds = run_recording_binds(tmp_path, command, "--listen", "tcp://10.0.0.1:0")
    assert "10.0.0.1" in assert_clean_failure(result, 2)
    assert binds == []


def test_bind_recorder_sees_binds(tmp_path: Path) -> None:
    """Guard for the tests above: the wrapper really records a bind (here: a probe port check)."""
    code = BIND_RECORDER.replace("from harness.cli import main\nsys.exit(main(sys.argv[2:]))", "")
    code += "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.close()\n"
    log = tmp_path / "binds.txt"
    subprocess.run([sys.executable, "-c", code, str(log)], check=True, timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
    assert "127.0.0.1" in log.read_text()


@pytest.mark.parametrize("value", ["nan", "inf", "1e12", "0", "-1"])
@pytest.mark.parametrize("command", [["devices"], ["probe", "/dev/null", "--model", "kf"]], ids=["devices", "probe"])
def test_a_timeout_must_be_a_finite_positive_number(tmp_path: Path, command: list[str], value: str) -> None:
    result = run_cli(*command, "--timeout", value, cwd=tmp_path)
    assert "--timeout must be a number of seconds above 0 and at most 600" in assert_clean_failure(result, 2)
