"""The ``kkt-hil`` command (a contract: lab scripts and tests depend on its output lines).

    kkt-hil emulate MODEL [--listen tcp://127.0.0.1:PORT | --pty] [--control tcp://127.0.0.1:PORT] ...
    kkt-hil hub [--listen tcp://127.0.0.1:PORT]
    kkt-hil probe URL --model MODEL [--json]
    kkt-hil devices [--inventory FILE] [--suggest]
    kkt-hil run [--kkt SPEC ...] [pytest args]
    kkt-hil report [RESULTS_DIR]
    kkt-hil compare RUN_A RUN_B [--html FILE] [--latency-threshold PCT] [--latency-min-ms MS]
    kkt-hil matrix RESULTS_DIR... [--output FILE]
    kkt-hil standin MODEL --inventory FILE [--sacrificial yes|no]
    kkt-hil ofd [--listen tcp://127.0.0.1:PORT]
    kkt-hil faults --upstream tcp://127.0.0.1:PORT --faults SCHEDULE [--listen tcp://127.0.0.1:PORT]

User mistakes end in one line on stderr and exit code 2; a broken link or a refusing device in
one line and exit code 1; never a traceback.  One module per group of commands: ``serve``
(emulate, hub, standin, ofd: long-running servers), ``probe`` (probe, devices), ``run`` (run,
report), ``compare`` (compare, matrix).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from .. import families
from ..errors import HarnessError, KktError, LinkError, UsageError
from .common import DEFAULT_REPORT, DEFAULT_RESULTS, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .compare import add_compare_parsers, cmd_compare, cmd_matrix
from .faults import add_faults_parser, cmd_faults
from .probe import cmd_devices, cmd_probe
from .run import cmd_report, cmd_run
from .serve import cmd_emulate, cmd_hub, cmd_ofd, cmd_standin

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kkt-hil", description="HIL test stand for Russian online cash registers (54-ФЗ)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    emulate = sub.add_parser("emulate", help="serve an emulated register on loopback TCP or a pty")
    emulate.add_argument("model", help="model id from the catalogue: " + ", ".join(families.model_ids()))
    where = emulate.add_mutually_exclusive_group()
    where.add_argument("--listen", metavar="URL", help="tcp://127.0.0.1:PORT (PORT 0 picks a free one)")
    where.add_argument(
        "--pty", nargs="?", const="", metavar="LINK", help="serve on a pseudo-terminal (optional symlink path)"
    )
    emulate.add_argument("--control", metavar="URL", help="control channel, tcp://127.0.0.1:PORT")
    emulate.add_argument("--firmware", metavar="X.Y.Z", help="firmware version the register reports")
    emulate.add_argument("--fn", metavar="KIND", help="ФН kind: fn15 | fn36")
    emulate.add_argument(
        "--defect", action="append", default=[], metavar="NAME", help="seeded firmware defect (repeatable)"
    )
    emulate.add_argument("--hub", metavar="URL", help="Dreamkas hub (Кабинет) to poll")
    emulate.add_argument(
        "--state",
        metavar="FILE",
        help="keep the register's state in FILE (loaded at start if it exists); every ФН document is on disk "
        "(FILE.journal) before its answer leaves; the whole state written on exit",
    )
    emulate.add_argument("--clock", metavar="ISO", help="device local time at start (default: now)")
    emulate.add_argument(
        "--frozen-clock", action="store_true", help="virtual time moves only through the control channel"
    )
    emulate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="profile setting (repeatable)")

    hub = sub.add_parser("hub", help="serve the Dreamkas hub (Кабинет) emulator over HTTP")
    hub.add_argument("--listen", default="tcp://127.0.0.1:0", metavar="URL", help="tcp://127.0.0.1:PORT")

    probe = sub.add_parser("probe", help="read info, status, ФН and OFD queue of a device")
    probe.add_argument("url", help="pyserial URL: /dev/ttyUSB0, socket://127.0.0.1:50003, rfc2217://…")
    probe.add_argument("--model", required=True, help="model id: " + ", ".join(families.model_ids()))
    probe.add_argument("--json", action="store_true", help="machine-readable output")
    probe.add_argument("--timeout", type=float, default=5.0, help="link timeout in seconds (default 5)")

    devices = sub.add_parser(
        "devices", help="find registers: probe serial ports and inventory entries with every protocol family"
    )
    devices.add_argument("--inventory", metavar="FILE", help="also probe its entries, and mark the ones found")
    devices.add_argument("--suggest", action="store_true", help="print a ready inventory entry for each register found")
    devices.add_argument(
        "--timeout", type=float, default=1.0, metavar="S", help="answer deadline per family and port (default 1 s)"
    )

    standin = sub.add_parser(
        "standin", help="a stand-in lab register: emulator on a pty, simulated bench supply, OFD, scripted operator"
    )
    standin.add_argument("model", help="model id from the catalogue: " + ", ".join(families.model_ids()))
    standin.add_argument("--inventory", required=True, metavar="FILE", help="write its [[device]] entry into FILE")
    standin.add_argument(
        "--sacrificial", choices=["yes", "no"], default="yes", help="mark its ФН sacrificial (default yes)"
    )
    standin.add_argument("--id", metavar="ID", help="inventory id (default standin-MODEL)")
    standin.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="emulator setting (repeatable)"
    )

    ofd = sub.add_parser("ofd", help="serve the emulated OFD (acknowledges every document)")
    ofd.add_argument("--listen", default="tcp://127.0.0.1:0", metavar="URL", help="tcp://127.0.0.1:PORT")

    run = sub.add_parser("run", help="run the scenario suite, then build the HTML report")
    run.add_argument("--kkt", action="append", default=[], metavar="SPEC", help="device spec (default emulator:all)")
    run.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help=f"allure results dir (default {DEFAULT_RESULTS})"
    )
    run.add_argument("--report", type=Path, default=DEFAULT_REPORT, help=f"HTML report dir (default {DEFAULT_REPORT})")

    report = sub.add_parser("report", help="build the Allure HTML report")
    report.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    report.add_argument("--output", type=Path, default=DEFAULT_REPORT)

    add_faults_parser(sub)
    add_compare_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()  # reads the catalogue: a broken family entry point is a usage error
        if args_list[:1] == ["run"]:  # everything unknown goes to pytest
            args, extra = parser.parse_known_args(args_list)
        else:
            args, extra = parser.parse_args(args_list), []
        if not args.command:
            parser.print_help()
            return EXIT_USAGE
        handler = {
            "emulate": cmd_emulate,
            "hub": cmd_hub,
            "probe": cmd_probe,
            "devices": cmd_devices,
            "run": cmd_run,
            "report": cmd_report,
            "standin": cmd_standin,
            "ofd": cmd_ofd,
            "faults": cmd_faults,
            "compare": cmd_compare,
            "matrix": cmd_matrix,
        }[args.command]
        return handler(args, extra)
    except UsageError as exc:
        print(f"kkt-hil: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (LinkError, HarnessError, KktError) as exc:
        print(f"kkt-hil: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
    except BrokenPipeError:  # `kkt-hil probe … | head`: the reader left; not an error of ours
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
