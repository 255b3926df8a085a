"""What every kkt-hil command shares: exit codes, default paths, settings parsing, stop signals."""

from __future__ import annotations

import math
import signal
from pathlib import Path

from ..errors import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_RESULTS = Path("reports/allure-results")
DEFAULT_REPORT = Path("reports/allure-report")
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


MAX_TIMEOUT = 600.0  # seconds: longer than any register needs to answer; more is a typo


def check_timeout(value: float, option: str = "--timeout") -> float:
    """A deadline in seconds: positive, finite and at most MAX_TIMEOUT (one usage line if not)."""
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        raise UsageError(f"{option} must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, not {value!r}")
    return value


def settings_of(items: list[str]) -> dict[str, str]:
    """``--set KEY=VALUE`` options → a dict; a malformed one is a usage error."""
    settings: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE, not {item!r}")
        settings[key.strip()] = value.strip()
    return settings


def block_stop_signals() -> None:
    """Block SIGINT/SIGTERM in this thread *before* any server thread starts (threads inherit
    the mask), so a stop request that arrives right after the banner is never lost and no
    handler can run inside a lock."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def wait_for_stop_signal() -> None:
    signal.sigwait(STOP_SIGNALS)


def unblock_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
