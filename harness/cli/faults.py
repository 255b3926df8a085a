"""``kkt-hil faults``: the loopback TCP fault proxy (:mod:`harness.faults.proxy`) for software that
cannot use the ``faulty://`` URL handler — a POS developer's cash application in front of an
emulated register::

    kkt-hil emulate kf --listen tcp://127.0.0.1:50003 &
    kkt-hil faults --upstream tcp://127.0.0.1:50003 --faults seed:7,p:0.01
    listening tcp://127.0.0.1:41234
    fault injected: corrupt rx frame 3 byte 5: 41 -> 63
    ...

First line on stdout, flushed: ``listening <url>``; then one ``fault injected: ...`` line per
fault as it happens.  Runs until SIGINT/SIGTERM, then exits 0.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import UsageError
from ..faults import Fault, parse_schedule
from ..faults.proxy import FaultProxy
from .common import EXIT_OK, block_stop_signals, unblock_stop_signals, wait_for_stop_signal

_FAULTS_DESCRIPTION = """\
A loopback TCP proxy between cash software and a register (an emulator, or a register behind
ser2net) that injects seeded faults into the bytes: lost, corrupted, duplicated, replayed or
delayed bytes, truncated frames, a cut link.  The same seed gives the same faults."""

_FAULTS_EPILOG = """\
output: first "listening tcp://127.0.0.1:PORT" (flushed: point the cash software there), then one
"fault injected: ..." line per fault as it happens.  Runs until Ctrl-C or SIGTERM, then exits 0.

SCHEDULE, comma-separated key:value items:
  seed:N        the seed (default 0)          p:P            each byte hit with probability P (default 0)
  kinds:K|K     default all but disconnect    dir:tx|rx      random faults one way only (default both)
  at:DIR:FRAME:BYTE[:KIND]   one fault at one place (|-separated or repeated)
  after:N       no random fault in the first N frames each way
  limit:N       at most N random faults       hold:SECONDS   how long a delay lasts (default 1, at most 60)

examples:
  kkt-hil emulate kf --listen tcp://127.0.0.1:50003 &
  kkt-hil faults --upstream tcp://127.0.0.1:50003 --faults seed:7,p:0.01
  kkt-hil faults --upstream tcp://127.0.0.1:50003 --faults 'seed:7,p:0.02,kinds:drop|corrupt,dir:rx'
  kkt-hil faults --upstream tcp://127.0.0.1:50003 --faults at:rx:3:5:corrupt --listen tcp://127.0.0.1:50004
"""


def add_faults_parser(sub: Any) -> None:
    faults = sub.add_parser(
        "faults",
        help="a loopback TCP proxy that injects seeded faults (for POS software)",
        description=_FAULTS_DESCRIPTION,
        epilog=_FAULTS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    faults.add_argument(
        "--upstream", required=True, metavar="URL", help="the register (required): tcp://127.0.0.1:PORT"
    )
    faults.add_argument(
        "--faults",
        required=True,
        metavar="SCHEDULE",
        help="what to inject (required), e.g. seed:7,p:0.01; kinds: drop, corrupt, duplicate, replay, truncate, "
        "delay, disconnect (the items below; README: Fault injection)",
    )
    faults.add_argument(
        "--listen",
        default="tcp://127.0.0.1:0",
        metavar="URL",
        help="where the cash software connects (default tcp://127.0.0.1:0: a free port, shown on the first line)",
    )


def cmd_faults(args: argparse.Namespace, _: list[str]) -> int:
    try:
        schedule = parse_schedule(args.faults)
    except ValueError as exc:
        raise UsageError(f"--faults: {exc}") from None
    block_stop_signals()  # before the proxy's threads start: they inherit the mask
    try:
        try:
            proxy = FaultProxy(args.upstream, schedule, listen=args.listen)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.listen}: {exc}") from None
        with proxy:
            proxy.listeners.append(_print_fault)
            print(f"listening {proxy.url}", flush=True)
            wait_for_stop_signal()
    finally:
        unblock_stop_signals()
    return EXIT_OK


def _print_fault(fault: Fault) -> None:
    print(f"fault injected: {fault.describe()}", flush=True)
