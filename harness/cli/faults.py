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


def add_faults_parser(sub: Any) -> None:
    faults = sub.add_parser("faults", help="a loopback TCP proxy that injects seeded faults (for POS software)")
    faults.add_argument("--upstream", required=True, metavar="URL", help="the register: tcp://127.0.0.1:PORT")
    faults.add_argument(
        "--faults",
        required=True,
        metavar="SCHEDULE",
        help="seed:7,p:0.01[,kinds:drop|corrupt|duplicate|replay|truncate|delay|disconnect][,dir:tx|rx]"
        "[,at:rx:3:5:corrupt][,after:N][,limit:N][,hold:SECONDS] (README: Fault injection)",
    )
    faults.add_argument("--listen", default="tcp://127.0.0.1:0", metavar="URL", help="tcp://127.0.0.1:PORT")


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
