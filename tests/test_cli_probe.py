"""``kkt-hil probe`` against an emulator and against hostile "devices": the text and JSON output,
model and URL usage errors, an unreachable port, and devices that answer garbage, an unterminated
frame or a bad CRC (one clean line on stderr, never a traceback, bounded by the link timeout).
"""

from __future__ import annotations

import json
import random
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from .cli_helpers import assert_clean_failure, run_cli, start_emulator
from .tcp_peers import AnsweringPeer

# ================================================================================ probe


@pytest.fixture
def device_port(spawn) -> int:
    _, port, _ = start_emulator(spawn, control=False)
    return port


def test_probe_prints_info(device_port: int, tmp_path: Path) -> None:
    result = run_cli("probe", f"socket://127.0.0.1:{device_port}", "--model", "kf", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^info:$", out, re.M)
    assert re.search(r"^\s+serial: 0497\d{6}$", out, re.M)
    assert re.search(r"^\s+firmware: 2\.26\.0$", out, re.M)
    for section in ("status:", "fn:", "ofd_queue:"):
        assert re.search(rf"^{section}$", out, re.M), section
    assert "raw" not in out
    assert result.stderr == ""


def test_probe_json(device_port: int, tmp_path: Path) -> None:
    result = run_cli("probe", f"socket://127.0.0.1:{device_port}", "--model", "kf", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["info"]["serial"].startswith("0497")
    assert data["info"]["model"] == "kf"
    assert data["info"]["model_code"] == 9
    assert data["info"]["firmware"] == "2.26.0"
    assert data["fn"]["serial"] and data["fn"]["phase"] == 3
    assert data["ofd_queue"]["count"] == 0
    assert data["status"]["shift"] == "closed"
    # frozen emulator clock; probe did "start of work" with the device's own time (R3.4)
    assert data["clock"].startswith("2020-12-30T10:0")


def test_probe_wrong_model_is_a_usage_error(device_port: int, tmp_path: Path) -> None:
    result = run_cli("probe", f"socket://127.0.0.1:{device_port}", "--model", "dkf", cwd=tmp_path)
    line = assert_clean_failure(result, 2)
    assert "dkf" in line
    assert result.stdout == ""


def test_probe_unknown_model(device_port: int, tmp_path: Path) -> None:
    result = run_cli("probe", f"socket://127.0.0.1:{device_port}", "--model", "nosuch", cwd=tmp_path)
    line = assert_clean_failure(result, 2)
    assert "nosuch" in line and "kf" in line


def test_probe_without_model_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("probe", "socket://127.0.0.1:1", cwd=tmp_path)
    assert_clean_failure(result, 2)


def test_probe_bad_url_scheme(tmp_path: Path) -> None:
    result = run_cli("probe", "ftp://127.0.0.1:1", "--model", "kf", cwd=tmp_path)
    assert "ftp" in assert_clean_failure(result, 2)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_probe_unreachable_device(tmp_path: Path) -> None:
    port = _closed_port()
    started = time.monotonic()
    result = run_cli("probe", f"socket://127.0.0.1:{port}", "--model", "kf", "--timeout", "2", cwd=tmp_path)
    elapsed = time.monotonic() - started
    line = assert_clean_failure(result, 1)
    assert str(port) in line
    assert elapsed < 2 + 8, elapsed  # the link timeout plus process start-up, not minutes


def _probe(payload: Callable[[], bytes], tmp_path: Path, timeout: str) -> tuple[CompletedProcess[str], int, float]:
    """``kkt-hil probe`` of a TCP "device" that answers every read with ``payload()``: the result,
    how many reads the device saw, and the seconds the probe took."""
    with AnsweringPeer(payload, poll=0.2) as device:
        started = time.monotonic()
        result = run_cli(
            "probe", f"socket://127.0.0.1:{device.port}", "--model", "kf", "--timeout", timeout, cwd=tmp_path
        )
        elapsed = time.monotonic() - started
    return result, device.reads, elapsed


def _random_noise(seed: int) -> Callable[[], bytes]:
    """Seeded random bytes without STX (a stray STX starts a "frame": covered separately below)."""
    rng = random.Random(seed)
    return lambda: bytes(rng.choice([b for b in range(256) if b != 0x02]) for _ in range(64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_probe_device_answering_garbage(tmp_path: Path, seed: int) -> None:
    result, reads, elapsed = _probe(_random_noise(seed), tmp_path, "2")
    line = assert_clean_failure(result, 1)
    assert "garbage" in line
    assert reads >= 1
    assert elapsed < 2 + 8, elapsed


def test_probe_device_answering_an_unterminated_frame_reports_garbage(tmp_path: Path) -> None:
    result, _, _ = _probe(lambda: b"\x02" + b"\xaa" * 50, tmp_path, "1")
    # regression (fixed in 0fdb950): a device that answered an unterminated frame is not "silent"
    line = assert_clean_failure(result, 1)
    assert "no answer" not in line and "garbage" in line


def test_probe_unterminated_frame_message_dumps_the_bytes_the_device_sent(tmp_path: Path) -> None:
    result, _, _ = _probe(lambda: b"\x02" + b"\xaa" * 50, tmp_path, "1")
    line = assert_clean_failure(result, 1)
    assert "02 aa aa" in line, line


def test_probe_device_answering_a_frame_with_a_bad_crc(tmp_path: Path) -> None:
    # STX '!' "00" "00" ETX "ZZ": framed, but the CRC is not even hex
    result, _, _ = _probe(lambda: b"\x02!0000\x03ZZ", tmp_path, "2")
    line = assert_clean_failure(result, 1)
    assert "CRC" in line


def test_probe_timeout_must_be_positive(tmp_path: Path) -> None:
    result = run_cli("probe", "socket://127.0.0.1:1", "--model", "kf", "--timeout", "0", cwd=tmp_path)
    assert "timeout" in assert_clean_failure(result, 2)
