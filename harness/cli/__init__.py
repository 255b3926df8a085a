"""The ``kkt-hil`` command (a contract: lab scripts and tests depend on its output lines).

    kkt-hil [--debug] COMMAND ...
    kkt-hil emulate MODEL [--listen tcp://127.0.0.1:PORT | --pty] [--control tcp://127.0.0.1:PORT] ...
    kkt-hil hub [--listen tcp://127.0.0.1:PORT]
    kkt-hil probe URL --model MODEL [--json] [--timeout S]
    kkt-hil devices [--inventory FILE] [--suggest] [--timeout S]
    kkt-hil run [--kkt SPEC ...] [--results DIR] [--report DIR] [pytest args]
    kkt-hil report [RESULTS_DIR] [--output DIR]
    kkt-hil compare RUN_A RUN_B [--html FILE] [--latency-threshold PCT] [--latency-min-ms MS]
    kkt-hil matrix RESULTS_DIR... [--output FILE]
    kkt-hil standin MODEL --inventory FILE [--sacrificial yes|no]
    kkt-hil ofd [--listen tcp://127.0.0.1:PORT]
    kkt-hil faults --upstream tcp://127.0.0.1:PORT --faults SCHEDULE [--listen tcp://127.0.0.1:PORT]

Every mistake ends in one line on stderr and never a traceback: a usage mistake (argparse's
``kkt-hil probe: ...``, or ``kkt-hil: ...``) exits 2; a broken link, a refusing device, an
environment problem (a file that cannot be written) or Ctrl-C (``kkt-hil: interrupted``) exits
1; a bug is ``kkt-hil: internal error: TYPE: MESSAGE (run with --debug for the traceback)``,
exit 1.  ``kkt-hil --debug COMMAND`` (or ``--debug`` after any command but ``run``, where it is
pytest's own) prints the traceback before that line.  ``probe --json`` puts the error on stdout
as one JSON object, ``{"ok": false, "error": "..."}``, with the same exit status.  A reader that
leaves early (``kkt-hil devices | head -1``) ends the command quietly, exit 0.

One module per group of commands: ``serve`` (emulate, hub, standin, ofd: long-running servers),
``probe`` (probe, devices), ``run`` (run, report), ``compare`` (compare, matrix), ``faults``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import traceback
from collections.abc import Sequence

from .. import families
from ..errors import KktError, UsageError
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STATUS,
    EXIT_USAGE,
    ArgumentUsageError,
    CliParser,
    one_line,
)
from .compare import add_compare_parsers, cmd_compare, cmd_matrix
from .faults import add_faults_parser, cmd_faults
from .probe import add_probe_parsers, cmd_devices, cmd_probe
from .run import add_run_parsers, cmd_report, cmd_run
from .serve import ALLOW_LAN_HELP, EMULATE_DESCRIPTION, SET_HELP, cmd_emulate, cmd_hub, cmd_ofd, cmd_standin

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

_EPILOG = f"""\
{EXIT_STATUS}.
Every mistake is one line on stderr; kkt-hil --debug COMMAND ... shows its traceback as well.

first steps:
  kkt-hil emulate kf --listen tcp://127.0.0.1:50003 &      an emulated Касса Ф on loopback TCP
  kkt-hil probe socket://127.0.0.1:50003 --model kf         what it says about itself
  kkt-hil devices                                           what is plugged into this host
  kkt-hil run --kkt emulator:kf -k no_paper                 one scenario on it, then the HTML report
  kkt-hil COMMAND --help                                    every option of COMMAND, with examples
"""

HUB_EPILOG = """\
output: the first line is `listening http://127.0.0.1:PORT` (flushed); Ctrl-C or SIGTERM stops it.

examples:
  kkt-hil hub --listen tcp://127.0.0.1:8080
  kkt-hil emulate kf --listen tcp://127.0.0.1:50003 --hub http://127.0.0.1:8080
  kkt-hil hub --listen tcp://0.0.0.0:8080 --allow-lan     a lab register on the LAN polls it (no authentication!)
"""
OFD_EPILOG = """\
output: the first line is `listening tcp://127.0.0.1:PORT` (flushed); Ctrl-C or SIGTERM stops it.

examples:
  kkt-hil ofd --listen tcp://127.0.0.1:7777
  kkt-hil emulate kf --listen tcp://127.0.0.1:50003 --set ofd=tcp://127.0.0.1:7777
"""
STANDIN_EPILOG = """\
output: `inventory FILE`, then `device ID` (flushed), once the register is ready.

example:
  kkt-hil standin kf --inventory lab.toml &
  kkt-hil run --inventory lab.toml --kkt lab:standin-kf --allow-destructive
"""

RUN = "run"  # its unknown options go to pytest, its --debug too


def build_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="kkt-hil",
        description="HIL test stand for Russian online cash registers (54-ФЗ)",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error, not only its line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CliParser)

    emulate = sub.add_parser(
        "emulate", help="serve an emulated register on loopback TCP or a pty", description=EMULATE_DESCRIPTION
    )
    emulate.add_argument(
        "model", metavar="MODEL", help="model id from the catalogue: " + ", ".join(families.model_ids())
    )
    where = emulate.add_mutually_exclusive_group()
    where.add_argument(
        "--listen", metavar="URL", help="tcp://127.0.0.1:PORT (PORT 0 picks a free one; another host: --allow-lan)"
    )
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
    emulate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)
    emulate.add_argument("--allow-lan", action="store_true", help=ALLOW_LAN_HELP)

    hub = sub.add_parser(
        "hub",
        help="serve the Dreamkas hub (Кабинет) emulator over HTTP",
        description="The Dreamkas cloud (Кабинет) a register polls for its deferred re-registration task, "
        "with an admin API to schedule, withhold and read tasks.",
        epilog=HUB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    hub.add_argument(
        "--listen",
        default="tcp://127.0.0.1:0",
        metavar="URL",
        help="tcp://127.0.0.1:PORT (default tcp://127.0.0.1:0: a free port)",
    )
    hub.add_argument("--allow-lan", action="store_true", help=ALLOW_LAN_HELP)

    add_probe_parsers(sub)

    standin = sub.add_parser(
        "standin",
        help="a stand-in lab register: emulator on a pty, simulated bench supply, OFD, scripted operator",
        description="A lab register without hardware: the emulator on a pseudo-terminal, a simulated SCPI "
        "bench supply, the OFD through the harness proxy and a scripted operator; its [[device]] entry is "
        "written into the inventory and removed on exit (Ctrl-C).",
        epilog=STANDIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    standin.add_argument(
        "model", metavar="MODEL", help="model id from the catalogue: " + ", ".join(families.model_ids())
    )
    standin.add_argument("--inventory", required=True, metavar="FILE", help="write its [[device]] entry into FILE")
    standin.add_argument(
        "--sacrificial", choices=["yes", "no"], default="yes", help="mark its ФН sacrificial (default yes)"
    )
    standin.add_argument("--id", metavar="ID", help="inventory id (default standin-MODEL)")
    standin.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="emulator setting (repeatable)"
    )

    ofd = sub.add_parser(
        "ofd",
        help="serve the emulated OFD (acknowledges every document)",
        description="The emulated OFD: takes every document a register sends and acknowledges it.",
        epilog=OFD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ofd.add_argument(
        "--listen",
        default="tcp://127.0.0.1:0",
        metavar="URL",
        help="tcp://127.0.0.1:PORT (default tcp://127.0.0.1:0: a free port)",
    )
    ofd.add_argument("--allow-lan", action="store_true", help=ALLOW_LAN_HELP)

    add_run_parsers(sub)
    add_faults_parser(sub)
    add_compare_parsers(sub)
    for name, command in sub.choices.items():
        if name != RUN:  # `kkt-hil run --debug` is pytest's own option
            command.add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help="print the traceback of an error too"
            )
    return parser


HANDLERS = {
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
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug, as_json = _read_ahead(args_list)  # for a mistake before the arguments are parsed
    try:
        parser = build_parser()  # reads the catalogue: a broken family entry point is a usage error
        args, extra = parser.parse_known_args(args_list)
        debug = debug or bool(getattr(args, "debug", False))
        if extra and args.command != RUN:  # only run's unknown arguments go on (to pytest)
            prog = f"kkt-hil {args.command}" if args.command else "kkt-hil"
            raise ArgumentUsageError(prog, "unrecognized arguments: " + " ".join(extra))
        if not args.command:
            parser.print_help()
            return EXIT_USAGE
        code = HANDLERS[args.command](args, extra)
        sys.stdout.flush()  # here, not at exit: a reader that left is seen below
        return code
    except SystemExit:  # --help
        raise
    except BaseException as exc:  # noqa: BLE001 - every way out is one line (and an exit status)
        return _fail(exc, debug=debug, as_json=as_json)


def _read_ahead(args: list[str]) -> tuple[bool, bool]:
    """(--debug, probe --json) from the raw arguments, for an error argparse raises
    before they are parsed.  After ``run`` a ``--debug`` is pytest's."""
    command = next((arg for arg in args if not arg.startswith("-")), None)
    before = args[: args.index(command)] if command is not None else args
    after = args[len(before) + 1 :]
    debug = "--debug" in before or (command != RUN and "--debug" in after)
    return debug, command == "probe" and "--json" in after


def _fail(exc: BaseException, *, debug: bool, as_json: bool) -> int:
    """The one line (or JSON object) of ``exc`` and its exit status; with ``debug`` the traceback first."""
    if isinstance(exc, BrokenPipeError) and _stdout_gone():
        # `kkt-hil devices | head -1`: the reader left; not an error of ours, and nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    code, line = _line_of(exc, debug=debug)
    if as_json:
        message = line.removeprefix("kkt-hil: ")
        print(json.dumps({"ok": False, "error": message}, ensure_ascii=False), flush=True)
    else:
        print(line, file=sys.stderr, flush=True)
    return code


def _line_of(exc: BaseException, *, debug: bool) -> tuple[int, str]:
    text = one_line(str(exc))
    if isinstance(exc, ArgumentUsageError):
        return EXIT_USAGE, f"{exc.prog}: {text} (see {exc.prog} --help)"
    if isinstance(exc, UsageError):
        return EXIT_USAGE, f"kkt-hil: {text}"
    if isinstance(exc, KktError):  # a broken link, a refusing register, a harness problem
        return EXIT_FAILED, f"kkt-hil: {text}"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_FAILED, "kkt-hil: interrupted"
    if isinstance(exc, OSError):  # the environment: a file that cannot be written, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_FAILED, f"kkt-hil: {where}{exc.strerror or text}"
    hint = "" if debug else " (run with --debug for the traceback)"
    return EXIT_FAILED, f"kkt-hil: internal error: {type(exc).__name__}: {text}{hint}"


def _stdout_gone() -> bool:
    """Whether stdout is a pipe whose reader has left (POLLERR on its write end)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return True  # no usable stdout at all: nothing to tell it


if __name__ == "__main__":
    sys.exit(main())
