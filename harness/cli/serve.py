"""The long-running commands: ``emulate``, ``hub``, ``standin``, ``ofd``.  Each prints its
``listening <url>`` (and for the stand-in ``inventory FILE`` / ``device ID``) line first, flushed,
then runs until SIGINT/SIGTERM and exits 0.

They listen on loopback.  Another address (``0.0.0.0``, a LAN address: a lab register pointed at
the harness hub or OFD, a POS on another machine) only when the user asks for it explicitly with
``--allow-lan``; then one warning line on stderr says that nothing authenticates who connects.
Without ``--allow-lan`` such an address is one usage line (exit 2) before anything is bound."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import families
from ..errors import HarnessError, UsageError
from ..net import is_loopback, parse_tcp_url
from .common import EXIT_OK, block_stop_signals, settings_of, unblock_stop_signals, wait_for_stop_signal

if TYPE_CHECKING:
    from ..families import Emulated, KeptState


#: ``kkt-hil emulate --help``: what a POS developer needs before the options
EMULATE_DESCRIPTION = (
    "Serve an emulated register for cash software: its wire protocol on loopback TCP or a pty, and with "
    "--control its control channel (faults and time, one JSON object per line).  Its OFD link is up: "
    "documents reach the emulated OFD at once.  Start it down with --set ofd=offline (documents queue "
    'until {"op": "ofd", "online": true}), or send them to a `kkt-hil ofd` with --set ofd=tcp://127.0.0.1:PORT.'
)
SET_HELP = (
    "profile setting (repeatable), e.g. ofd=offline (the OFD link starts down; default: online) or "
    "ofd=tcp://127.0.0.1:PORT; an unknown key lists them all"
)
#: the ``--allow-lan`` help of every command that listens
ALLOW_LAN_HELP = (
    "allow --listen (and --control) on an address beyond loopback, e.g. tcp://0.0.0.0:PORT or a LAN address; "
    "nothing authenticates who connects"
)


def _beyond_loopback(url: str, option: str, allow_lan: bool) -> bool:
    """Check a ``tcp://HOST:PORT`` to listen on: True when HOST is beyond loopback (only with
    ``--allow-lan``); a bad URL or a refused host is one usage line."""
    try:
        host, _port = parse_tcp_url(url)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None
    if is_loopback(host):
        return False
    if not allow_lan:
        raise UsageError(
            f"{option}: {host} is not a loopback address (127.0.0.1); add --allow-lan to listen on it "
            "(nothing authenticates who connects)"
        )
    return True


def _warn_open(what: list[str], who: str) -> None:
    """The one warning line of a listen beyond loopback."""
    verb = "are" if len(what) > 1 else "is"
    print(
        f"kkt-hil: warning: {' and '.join(what)} {verb} open to the network with no authentication: "
        f"anyone on that network can {who}",
        file=sys.stderr,
        flush=True,
    )


def _check_hub_url(url: str) -> None:
    """``--hub``: an http(s)://HOST[:PORT] address, or one usage line."""
    parts = urlsplit(url)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise UsageError(f"--hub takes the hub's address like http://127.0.0.1:PORT (kkt-hil hub), not {url!r}")


def cmd_emulate(args: argparse.Namespace, _: list[str]) -> int:
    settings = settings_of(args.set)
    if args.firmware:
        settings["firmware"] = args.firmware
    if args.fn:
        settings["fn"] = args.fn
    if args.defect:
        settings["defects"] = ",".join(args.defect)
    if args.clock:
        settings["clock"] = args.clock
    model = families.model(args.model)
    listen = (
        "pty" + (f":{args.pty}" if args.pty else "") if args.pty is not None else (args.listen or "tcp://127.0.0.1:0")
    )
    # addresses first: a refused one is one line before anything is built or bound
    open_wire = not _is_pty(listen) and _beyond_loopback(listen, "--listen", args.allow_lan)
    open_control = bool(args.control) and _beyond_loopback(args.control, "--control", args.allow_lan)
    if args.hub is not None:
        _check_hub_url(args.hub)
    if args.state is not None and not args.state.strip():
        raise UsageError("--state takes a file path")
    block_stop_signals()  # before the first thread (OFD link, state saver) starts: threads inherit the mask
    try:
        try:
            emulated = families.family(model.family).start_emulator(
                model.id, settings, flowing_clock=not args.frozen_clock
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        kept = None
        try:
            if args.state:  # a path that cannot be written or a damaged file: refused before anything listens
                kept = _keep_state(emulated, args, settings)
            _serve_emulated(emulated, args, listen, open_wire=open_wire, open_control=open_control)
        finally:
            if kept is not None:
                kept.save()  # first, while the servers still run: a SIGKILL now loses nothing
            emulated.close()
            if kept is not None:
                _close_state(kept, args.state)
    finally:
        unblock_stop_signals()
    return EXIT_OK


def _is_pty(listen: str) -> bool:
    return listen == "pty" or listen.startswith("pty:")


def _serve_emulated(
    emulated: Emulated, args: argparse.Namespace, listen: str, *, open_wire: bool, open_control: bool
) -> None:
    try:
        url = emulated.serve(listen, allow_lan=open_wire)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"cannot listen on {listen}: {exc}") from None
    control = None
    if args.control:
        try:
            control = emulated.serve_control(args.control, allow_lan=open_control)
        except (ValueError, OSError) as exc:
            raise UsageError(f"--control: {exc}") from None
    if args.hub:
        try:
            emulated.attach_cloud(args.hub)
        except ValueError as exc:
            raise UsageError(f"--hub: {exc}") from None
    exposed = [f"the register's port ({url})"] if open_wire else []
    if open_control:
        owner = "its" if exposed else "the register's"
        exposed.append(f"{owner} control channel ({control})")
    if exposed:
        _warn_open(exposed, "drive the register" + (" and its faults, clock and power" if open_control else ""))
    print(f"listening {url}", flush=True)
    if control:
        print(f"control {control}", flush=True)
    wait_for_stop_signal()


def _keep_state(emulated: Emulated, args: argparse.Namespace, settings: dict[str, str]) -> KeptState:
    """``--state FILE`` (devices/emulator/durable.py); what the command line says explicitly wins
    over a loaded state."""
    explicit: list[dict[str, Any]] = []
    if args.firmware:
        explicit.append({"op": "firmware", "version": args.firmware})
    if args.defect:
        explicit.append({"op": "defects", "enable": list(args.defect)})
    if args.clock:
        explicit.append({"op": "clock", "set": args.clock})
    ofd = settings.get("ofd", "").strip().lower()
    if ofd in ("online", "offline"):  # --set ofd=offline: the link starts down, saved state or not
        explicit.append({"op": "ofd", "online": ofd == "online"})

    def apply_explicit() -> None:
        for request in explicit:
            reply = emulated.control(request)
            if not reply.get("ok"):
                raise UsageError(f"--{request['op']}: {reply.get('error')}")

    try:
        return emulated.persist(args.state, after_load=apply_explicit)
    except ValueError as exc:
        raise UsageError(f"--state {args.state}: {exc}") from None


def _close_state(kept: KeptState, path: str) -> None:
    try:
        kept.close()
    except OSError as exc:
        raise HarnessError(
            f"--state {path}: the final snapshot was not written ({exc.strerror or exc}); "
            f"every ФН document is in {path}.journal and loads at the next start"
        ) from None


def _serve_until_stopped(
    args: argparse.Namespace, start: Callable[[str, int, bool], Any], *, exposed: str, who: str
) -> int:
    """``start(host, port, allow_lan)`` a server on ``--listen``, print ``listening URL``, wait for
    SIGINT/SIGTERM, close it; a bad, busy or (without ``--allow-lan``) non-loopback address is
    one usage line; a listen beyond loopback one warning line: ``exposed`` (with ``{url}``) is
    open to the network, anyone on it can ``who``."""
    listen = args.listen
    lan = _beyond_loopback(listen, "--listen", args.allow_lan)
    host, port = parse_tcp_url(listen)
    block_stop_signals()
    try:
        try:
            server = start(host, port, lan)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
        except OSError as exc:
            raise UsageError(f"cannot listen on {listen}: {exc}") from None
        try:
            if lan:
                _warn_open([exposed.format(url=server.url)], who)
            print(f"listening {server.url}", flush=True)
            wait_for_stop_signal()
        finally:
            server.close()
    finally:
        unblock_stop_signals()
    return EXIT_OK


def cmd_hub(args: argparse.Namespace, _: list[str]) -> int:
    cloud = families.cloud("dreamkas")
    return _serve_until_stopped(
        args,
        lambda host, port, lan: cloud.serve_hub(host, port, allow_lan=lan),
        exposed="the hub's admin API ({url}/admin)",
        who="drive the hub (schedule, withhold, cancel its tasks, cut registers off, reset it)",
    )


def cmd_standin(args: argparse.Namespace, _: list[str]) -> int:
    from ..standin import start_standin
    from ..standin_entry import check_inventory, default_serial, write_entry

    model = families.model(args.model)
    device_id = args.id or f"standin-{model.id}"
    path = Path(args.inventory)
    settings = settings_of(args.set)
    settings = {**check_inventory(path, device_id, settings.get("serial") or default_serial(model.id)), **settings}
    block_stop_signals()
    try:
        try:
            standin = start_standin(
                model.id, device_id=device_id, sacrificial=args.sacrificial == "yes", settings=settings
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        try:
            remove = write_entry(path, standin.entry)
            try:
                print(f"inventory {path}", flush=True)
                print(f"device {device_id}", flush=True)
                wait_for_stop_signal()
            finally:
                remove()
        finally:
            standin.close()
    finally:
        unblock_stop_signals()
    return EXIT_OK


def cmd_ofd(args: argparse.Namespace, _: list[str]) -> int:
    from ..ofd.server import OfdServer

    return _serve_until_stopped(
        args,
        lambda host, port, lan: OfdServer(host, port, allow_lan=lan),
        exposed="the emulated OFD ({url})",
        who="send it documents",
    )
