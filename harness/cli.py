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
from typing import TYPE_CHECKING, Any, NoReturn

from . import families
from .errors import HarnessError, KktError, LinkError, UsageError
from .net import check_loopback, parse_tcp_url

if TYPE_CHECKING:
    from devices.models import Model

    from .families import Emulated

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_RESULTS = Path("reports/allure-results")
DEFAULT_REPORT = Path("reports/allure-report")


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
        help="keep the register's state in FILE: loaded at start if it exists, written on exit",
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

    sub.add_parser("devices", help="list serial ports and known USB registers")

    run = sub.add_parser("run", help="run the scenario suite, then build the HTML report")
    run.add_argument("--kkt", action="append", default=[], metavar="SPEC", help="device spec (default emulator:all)")
    run.add_argument(
        "--results", type=Path, default=DEFAULT_RESULTS, help=f"allure results dir (default {DEFAULT_RESULTS})"
    )
    run.add_argument("--report", type=Path, default=DEFAULT_REPORT, help=f"HTML report dir (default {DEFAULT_REPORT})")

    report = sub.add_parser("report", help="build the Allure HTML report")
    report.add_argument("results", nargs="?", type=Path, default=DEFAULT_RESULTS)
    report.add_argument("--output", type=Path, default=DEFAULT_REPORT)
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
    model = families.model(args.model)
    try:
        emulated = families.family(model.family).start_emulator(model.id, settings, flowing_clock=not args.frozen_clock)
        listen = (
            "pty" + (f":{args.pty}" if args.pty else "")
            if args.pty is not None
            else (args.listen or "tcp://127.0.0.1:0")
        )
        if args.control:
            host, _port = parse_tcp_url(args.control)
            check_loopback(host)
        if args.state and Path(args.state).exists():
            _restore_state(emulated, args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _block_stop_signals()
    try:
        try:
            url = emulated.serve(listen)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        except OSError as exc:
            raise UsageError(f"cannot listen on {listen}: {exc}") from None
        control = None
        if args.control:
            try:
                control = emulated.serve_control(args.control)
            except (ValueError, OSError) as exc:
                raise UsageError(f"--control: {exc}") from None
        if args.hub:
            try:
                emulated.attach_cloud(args.hub)
            except ValueError as exc:
                raise UsageError(f"--hub: {exc}") from None
        print(f"listening {url}", flush=True)
        if control:
            print(f"control {control}", flush=True)
        _wait_for_stop_signal()
    finally:
        emulated.close()
        if args.state:
            _write_state(Path(args.state), emulated.snapshot())
        _unblock_stop_signals()
    return EXIT_OK


def _restore_state(emulated: Emulated, args: argparse.Namespace) -> None:
    """Load ``--state FILE``; what the command line says explicitly wins over the saved state."""
    try:
        emulated.restore(json.loads(Path(args.state).read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"--state {args.state}: cannot read it: {exc}") from None
    except ValueError as exc:
        raise UsageError(f"--state {args.state}: {exc}") from None
    explicit: list[dict[str, Any]] = []
    if args.firmware:
        explicit.append({"op": "firmware", "version": args.firmware})
    if args.defect:
        explicit.append({"op": "defects", "enable": list(args.defect)})
    if args.clock:
        explicit.append({"op": "clock", "set": args.clock})
    for request in explicit:
        reply = emulated.control(request)
        if not reply.get("ok"):
            raise UsageError(f"--{request['op']}: {reply.get('error')}")


def _write_state(path: Path, snapshot: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(snapshot, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)


def cmd_hub(args: argparse.Namespace, _: list[str]) -> int:
    try:
        host, port = parse_tcp_url(args.listen)
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None
    cloud = families.cloud("dreamkas")
    _block_stop_signals()
    try:
        try:
            server = cloud.serve_hub(host, port)
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
    from .connect import open_kkt
    from .spec import parse_spec

    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    families.model(args.model)  # unknown model: one line naming the known ones
    (spec,) = parse_spec(f"url:{args.url}#model={args.model}")
    with open_kkt(spec, link_timeout=args.timeout, timeout_scale=min(1.0, args.timeout / 5.0)) as handle:
        kkt = handle.kkt
        result = {
            "info": kkt.info(),
            "status": kkt.status(),
            "fn": kkt.fn(),
            "ofd_queue": kkt.ofd_queue(),
            "clock": kkt.clock(),
        }
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
            return value.names
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
        models = _usb_models(port.vid, port.pid)
        hint = f"  ({models[0].title}: try --model {models[0].id})" if models else ""
        print(f"{port.device}  usb {vid}  {port.description}{hint}")
    vendors = sorted({usb_id.vendor for m in families.catalogue().values() for usb_id in m.usb_ids})
    try:
        import usb.core

        for vendor in vendors:
            for dev in list(usb.core.find(find_all=True, idVendor=vendor) or []):
                titles = ", ".join(m.title for m in _usb_models(dev.idVendor, dev.idProduct))
                print(f"usb {dev.idVendor:04x}:{dev.idProduct:04x} bus {dev.bus} address {dev.address}  {titles}")
    except Exception as exc:  # noqa: BLE001 - no libusb backend on this machine: say so, list the rest
        print(f"usb: not scanned ({type(exc).__name__}: {exc})")
    return EXIT_OK


def _usb_models(vendor: int | None, product: int | None) -> list[Model]:
    return [m for m in families.catalogue().values() if any(u.matches(vendor, product) for u in m.usb_ids)]


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
