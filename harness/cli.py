"""The ``kkt-hil`` command (a contract: lab scripts and tests depend on its output lines).

    kkt-hil emulate MODEL [--listen tcp://127.0.0.1:PORT | --pty] [--control tcp://127.0.0.1:PORT] ...
    kkt-hil hub [--listen tcp://127.0.0.1:PORT]
    kkt-hil probe URL --model MODEL [--json]
    kkt-hil devices
    kkt-hil run [--kkt SPEC ...] [pytest args]
    kkt-hil report [RESULTS_DIR]

User mistakes end in one line on stderr and exit code 2; a broken link or a refusing device in
one line and exit code 1; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from .errors import HarnessError, KktError, LinkError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_RESULTS = Path("reports/allure-results")
DEFAULT_REPORT = Path("reports/allure-report")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kkt-hil", description="HIL test stand for Russian online cash registers (54-ФЗ)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    emulate = sub.add_parser("emulate", help="serve an emulated register on loopback TCP or a pty")
    emulate.add_argument("model", help="kf, dkf, start, atol …")
    where = emulate.add_mutually_exclusive_group()
    where.add_argument("--listen", metavar="URL", help="tcp://127.0.0.1:PORT (PORT 0 picks a free one)")
    where.add_argument("--pty", nargs="?", const="", metavar="LINK", help="serve on a pseudo-terminal (optional symlink path)")
    emulate.add_argument("--control", metavar="URL", help="control channel, tcp://127.0.0.1:PORT")
    emulate.add_argument("--firmware", metavar="X.Y.Z", help="firmware version the register reports")
    emulate.add_argument("--fn", metavar="KIND", help="ФН kind: fn15 | fn36")
    emulate.add_argument("--defect", action="append", default=[], metavar="NAME", help="seeded firmware defect (repeatable)")
    emulate.add_argument("--hub", metavar="URL", help="Dreamkas hub (Кабинет) to poll")
    emulate.add_argument("--state", metavar="FILE", help="keep the register's state in FILE: loaded at start if it exists, written on exit")
    emulate.add_argument("--clock", metavar="ISO", help="device local time at start (default: now)")
    emulate.add_argument("--frozen-clock", action="store_true", help="virtual time moves only through the control channel")
    emulate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="profile setting (repeatable)")

    hub = sub.add_parser("hub", help="serve the Dreamkas hub (Кабинет) emulator over HTTP")
    hub.add_argument("--listen", default="tcp://127.0.0.1:0", metavar="URL", help="tcp://127.0.0.1:PORT")

    probe = sub.add_parser("probe", help="read info, status, ФН and OFD queue of a device")
    probe.add_argument("url", help="pyserial URL: /dev/ttyUSB0, socket://127.0.0.1:50003, rfc2217://…")
    probe.add_argument("--model", required=True, help="kf, dkf, start, atol …")
    probe.add_argument("--json", action="store_true", help="machine-readable output")
    probe.add_argument("--timeout", type=float, default=5.0, help="link timeout in seconds (default 5)")

    sub.add_parser("devices", help="list serial ports and known USB registers")

    run = sub.add_parser("run", help="run the scenario suite, then build the HTML report")
    run.add_argument("--kkt", action="append", default=[], metavar="SPEC", help="device spec (default emulator:all)")
    run.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help=f"allure results dir (default {DEFAULT_RESULTS})")
    run.add_argument("--report", type=Path, default=DEFAULT_REPORT, help=f"HTML report dir (default {DEFAULT_REPORT})")

    report = sub.add_parser("report", help="build the Allure HTML report")
    report.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    report.add_argument("--output", type=Path, default=DEFAULT_REPORT)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
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


# ------------------------------------------------------------------------------------ emulate


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _block_stop_signals() -> None:
    """Block SIGINT/SIGTERM in this thread *before* any server thread starts (threads inherit
    the mask), so a stop request that arrives right after the banner is never lost and no
    handler can run inside a lock."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _wait_for_stop_signal() -> None:
    signal.sigwait(STOP_SIGNALS)


def _unblock_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def cmd_emulate(args: argparse.Namespace, _: list[str]) -> int:
    from devices.emulator.build import build_emulator
    from devices.emulator.control import ControlServer
    from devices.emulator.serve import check_loopback, parse_tcp_url, serve
    from devices.registry import load_family

    settings: dict[str, str] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE, not {item!r}")
        settings[key.strip()] = value.strip()
    if args.firmware:
        settings["firmware"] = args.firmware
    if args.fn:
        settings["fn"] = args.fn
    if args.defect:
        settings["defects"] = ",".join(args.defect)
    if args.clock:
        settings["clock"] = args.clock
    try:
        emulator = build_emulator(args.model, settings, flowing_clock=not args.frozen_clock)
        family = load_family(emulator.profile.protocol)
        listen = "pty" + (f":{args.pty}" if args.pty else "") if args.pty is not None else (args.listen or "tcp://127.0.0.1:0")
        if args.control:
            host, _ = parse_tcp_url(args.control)
            check_loopback(host)
        if args.state and Path(args.state).exists():
            from devices.emulator.core import restore_core

            try:
                restore_core(emulator.core, json.loads(Path(args.state).read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError) as exc:
                raise UsageError(f"--state {args.state}: cannot read it: {exc}") from None
            except ValueError as exc:
                raise UsageError(f"--state {args.state}: {exc}") from None
            # what the command line says explicitly wins over the saved state
            if args.firmware:
                emulator.core.set_firmware(args.firmware)
            if args.defect:
                emulator.core.set_defects(set(args.defect))
            if args.clock:
                emulator.core.lab_clock_set(datetime.fromisoformat(args.clock))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _block_stop_signals()
    server = control = None
    try:
        try:
            server = serve(lambda: family.make_frontend(emulator.core), listen)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"cannot listen on {listen}: {exc}") from None
        if args.control:
            try:
                control = ControlServer(emulator.control, args.control)
            except (ValueError, OSError) as exc:
                raise UsageError(f"--control: {exc}") from None
        if args.hub:
            from devices.dreamkas.fisgo import attach_fisgo

            try:
                attach_fisgo(emulator, args.hub)
            except ValueError as exc:
                raise UsageError(f"--hub: {exc}") from None
        print(f"listening {server.url}", flush=True)
        if control:
            print(f"control {control.url}", flush=True)
        _wait_for_stop_signal()
    finally:
        if control:
            control.close()
        if server:
            server.close()
        if args.state:
            _write_state(Path(args.state), emulator.core.snapshot())
        _unblock_stop_signals()
    return EXIT_OK


def _write_state(path: Path, snapshot: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(snapshot, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)


def cmd_hub(args: argparse.Namespace, _: list[str]) -> int:
    from devices.dreamkas.hub import Hub, serve
    from devices.emulator.serve import parse_tcp_url

    try:
        host, port = parse_tcp_url(args.listen)
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None
    _block_stop_signals()
    try:
        try:
            server = serve(Hub(), host=host, port=port)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
        except OSError as exc:
            raise UsageError(f"cannot listen on {args.listen}: {exc}") from None
        try:
            print(f"listening {server.url}", flush=True)
            _wait_for_stop_signal()
        finally:
            server.close()
    finally:
        _unblock_stop_signals()
    return EXIT_OK


# ------------------------------------------------------------------------------------ probe


def cmd_probe(args: argparse.Namespace, _: list[str]) -> int:
    from .connect import open_device
    from .spec import parse_spec

    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    from .plugin import _known_models

    if args.model not in _known_models():
        raise UsageError(f"unknown model {args.model!r} (known: {', '.join(_known_models())})")
    (spec,) = parse_spec(f"url:{args.url}#model={args.model}", known_models=_known_models())
    handle = open_device(spec, link_timeout=args.timeout, timeout_scale=min(1.0, args.timeout / 5.0))
    try:
        kkt = handle.kkt
        result = {"info": kkt.info(), "status": kkt.status(), "fn": kkt.fn(), "ofd_queue": kkt.ofd_queue(), "clock": kkt.clock()}
    finally:
        handle.close()
    plain = _plain(result)
    if args.json:
        print(json.dumps(plain, ensure_ascii=False, indent=2))
    else:
        for section, values in plain.items():
            if isinstance(values, dict):
                print(f"{section}:")
                for key, value in values.items():
                    if key != "raw":
                        print(f"  {key}: {value}")
            else:
                print(f"{section}: {values}")
    return EXIT_OK


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Enum):
        if hasattr(value, "names"):  # TaxSystem
            return value.names  # type: ignore[attr-defined]
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


# ------------------------------------------------------------------------------------ devices


def cmd_devices(args: argparse.Namespace, _: list[str]) -> int:
    from serial.tools import list_ports

    ports = list(list_ports.comports())
    if not ports:
        print("serial ports: none found")
    for port in ports:
        vid = f"{port.vid:04x}:{port.pid:04x}" if port.vid is not None else "-"
        hint = "  (АТОЛ: try --model atol)" if port.vid == 0x2912 else ""
        print(f"{port.device}  usb {vid}  {port.description}{hint}")
    try:
        import usb.core

        found = list(usb.core.find(find_all=True, idVendor=0x2912) or [])
        for dev in found:
            print(f"usb {dev.idVendor:04x}:{dev.idProduct:04x} bus {dev.bus} address {dev.address}  АТОЛ")
    except Exception as exc:  # no libusb backend on this machine
        print(f"usb: not scanned ({type(exc).__name__}: {exc})")
    return EXIT_OK


# ------------------------------------------------------------------------------------ run, report


def scenarios_dir() -> Path:
    import scenarios

    return Path(scenarios.__file__).parent


def cmd_run(args: argparse.Namespace, extra: list[str]) -> int:
    paths = [a for a in extra if not a.startswith("-") and Path(a.split("::")[0]).exists()]
    command = [
        sys.executable,
        "-m",
        "pytest",
        *([] if paths else [str(scenarios_dir())]),
        "--rootdir",
        str(scenarios_dir().parent),
        f"--alluredir={args.results}",
        "--clean-alluredir",
        *[f"--kkt={spec}" for spec in args.kkt],
        *extra,
    ]
    print("run: " + " ".join(command[2:]), flush=True)
    code = subprocess.call(command)
    if code in (2, 3, 4):  # interrupted, internal error, usage error: no report worth building
        return EXIT_USAGE if code == 4 else EXIT_FAILED
    index = _build_report(args.results, args.report)
    print(f"report: {index}", flush=True)
    if code == 5:
        print("kkt-hil: no scenario ran", file=sys.stderr)
        return EXIT_FAILED
    return code


def cmd_report(args: argparse.Namespace, _: list[str]) -> int:
    if not args.results.is_dir():
        raise UsageError(f"no results directory {args.results}")
    print(f"report: {_build_report(args.results, args.output)}", flush=True)
    return EXIT_OK


def _build_report(results: Path, output: Path) -> Path:
    from . import report

    return report.generate_html(results, output)


if __name__ == "__main__":
    sys.exit(main())
