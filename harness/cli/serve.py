"""The long-running commands: ``emulate``, ``hub``, ``standin``, ``ofd``.  Each prints its
``listening <url>`` (and for the stand-in ``inventory FILE`` / ``device ID``) line first, flushed,
then runs until SIGINT/SIGTERM and exits 0."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import families
from ..errors import HarnessError, UsageError
from ..net import check_loopback, parse_tcp_url
from .common import EXIT_OK, block_stop_signals, settings_of, unblock_stop_signals, wait_for_stop_signal

if TYPE_CHECKING:
    from ..families import Emulated, KeptState


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
    block_stop_signals()  # before the first thread (OFD link, state saver) starts: threads inherit the mask
    try:
        try:
            emulated = families.family(model.family).start_emulator(
                model.id, settings, flowing_clock=not args.frozen_clock
            )
            if args.control:
                host, _port = parse_tcp_url(args.control)
                check_loopback(host)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        kept = None
        try:
            if args.state:  # a path that cannot be written or a damaged file: refused before anything listens
                kept = _keep_state(emulated, args)
            _serve_emulated(emulated, args, listen)
        finally:
            if kept is not None:
                kept.save()  # first, while the servers still run: a SIGKILL now loses nothing
            emulated.close()
            if kept is not None:
                _close_state(kept, args.state)
    finally:
        unblock_stop_signals()
    return EXIT_OK


def _serve_emulated(emulated: Emulated, args: argparse.Namespace, listen: str) -> None:
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
    wait_for_stop_signal()


def _keep_state(emulated: Emulated, args: argparse.Namespace) -> KeptState:
    """``--state FILE`` (devices/emulator/durable.py); what the command line says explicitly wins
    over a loaded state."""
    explicit: list[dict[str, Any]] = []
    if args.firmware:
        explicit.append({"op": "firmware", "version": args.firmware})
    if args.defect:
        explicit.append({"op": "defects", "enable": list(args.defect)})
    if args.clock:
        explicit.append({"op": "clock", "set": args.clock})

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


def _serve_until_stopped(listen: str, start: Callable[[str, int], Any]) -> int:
    """``start(host, port)`` a server on ``--listen``, print ``listening URL``, wait for
    SIGINT/SIGTERM, close it; a bad or busy address is one usage line."""
    try:
        host, port = parse_tcp_url(listen)
    except ValueError as exc:
        raise UsageError(f"--listen: {exc}") from None
    block_stop_signals()
    try:
        try:
            server = start(host, port)
        except ValueError as exc:
            raise UsageError(f"--listen: {exc}") from None
        except OSError as exc:
            raise UsageError(f"cannot listen on {listen}: {exc}") from None
        try:
            print(f"listening {server.url}", flush=True)
            wait_for_stop_signal()
        finally:
            server.close()
    finally:
        unblock_stop_signals()
    return EXIT_OK


def cmd_hub(args: argparse.Namespace, _: list[str]) -> int:
    return _serve_until_stopped(args.listen, families.cloud("dreamkas").serve_hub)


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

    return _serve_until_stopped(args.listen, OfdServer)
