"""What every kkt-hil command shares: exit codes, default paths, the argument parser, one-line
messages, settings parsing, stop signals."""

from __future__ import annotations

import argparse
import math
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from ..errors import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_RESULTS = Path("reports/allure-results")
DEFAULT_REPORT = Path("reports/allure-report")
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}
EXIT_STATUS = "exit status: 0 done; 1 a broken link, a refusing register or a failure; 2 a usage mistake"


class ArgumentUsageError(UsageError):
    """A command line argparse refused; printed as ``PROG: MESSAGE`` (``kkt-hil probe: ...``)."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog


class CliParser(argparse.ArgumentParser):
    """argparse, but a mistake is an :class:`ArgumentUsageError` (one line, exit 2) instead of the
    usage block and ``error:`` on stderr; and an epilog may be built only when the help is shown
    (``late_epilog``: text that is costly to get, e.g. the pytest plugin's options)."""

    late_epilog: Callable[[], str] | None = None

    def error(self, message: str) -> NoReturn:
        raise ArgumentUsageError(self.prog, message)

    def format_help(self) -> str:
        if self.late_epilog is not None:
            self.epilog, self.late_epilog = self.late_epilog(), None
        return super().format_help()


# pyserial's repeat of what our message already says: "cannot open URL: [Errno 2] could not open
# port URL: [Errno 2] No such file or directory: 'URL'", and "read from URL failed: read failed: ..."
_PYSERIAL_OPEN = re.compile(
    r"cannot open (?P<url>\S+): (?:\[Errno \d+\] )?could not open port (?P=url): (?:\[Errno \d+\] )?"
    r"(?P<why>.*?)(?:: '(?P=url)')?$",
    re.I,
)
_REPEATED_FAILED = re.compile(r"\b(read|write) (from|to) (\S+) failed: \1 failed: ")


def one_line(text: str) -> str:
    """A message as one line: whitespace runs (newlines too) become one space, and what pyserial
    repeats of our own words is dropped (``cannot open socket://h:1: Connection refused``)."""
    text = " ".join(text.split())
    text = _PYSERIAL_OPEN.sub(lambda m: f"cannot open {m['url']}: {m['why']}", text)
    return _REPEATED_FAILED.sub(r"\1 \2 \3 failed: ", text)


NETWORK_SCHEMES = ("socket", "rfc2217")


def check_device_url(url: str) -> None:
    """A ``socket://`` or ``rfc2217://`` URL names HOST:PORT (pyserial's own messages for a bad one
    say nothing useful); anything else is left to the transport.  UsageError if not."""
    example = "socket://127.0.0.1:50003 or rfc2217://lab-host:4001"
    from ..transport import check_url

    check_url(url)  # a --kkt spec instead of a URL, an unknown scheme: one line
    try:
        parts = urlsplit(url)
        port = parts.port if parts.scheme in NETWORK_SCHEMES else None
    except ValueError as exc:
        raise UsageError(f"bad device URL {url!r}: {exc} (e.g. {example})") from None
    if parts.scheme in NETWORK_SCHEMES and (not parts.hostname or port is None or port == 0):
        needs = f"{parts.scheme}:// needs HOST:PORT with a port 1-65535"
        raise UsageError(f"bad device URL {url!r}: {needs} (e.g. {example})")


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
