"""The emulator's control channel: faults and time, usable in and out of process.

One JSON object per line in, one JSON reply per line out (``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``) over loopback TCP.  In-process users (the pytest plugin) call
:meth:`ControlHandler.handle` directly: the same code answers both.  Unknown ops and bad
arguments get ``ok: false`` with a message — never a dropped connection.

Bounds on what a peer may send: a line of at most :data:`MAX_LINE_BYTES` (a longer one is
skipped up to its newline and answered with one error), JSON per :mod:`harness.bounded_json`
(UTF-8, nesting depth, number sizes); every error reply is one line, echoed values cut short.
"""

from __future__ import annotations

import dataclasses
import socketserver
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from harness.device import PaperState, TaxSystem

from .core import FiscalCore
from .defects import DEFECTS

__all__ = ["ControlClient", "ControlError", "ControlHandler", "ControlServer"]
from harness.bounded_json import BadJson, dumps_line, loads, one_line
from harness.control import ControlClient
from harness.net import check_loopback, parse_tcp_url

Reply = dict[str, Any]
MAX_ADVANCE = 100 * 365.25 * 86400
YEARS = (2000, 2099)  # Pirit ddmmyy, АТОЛ BCD YY: what the wire can carry
MAX_LINE_BYTES = 1 << 20
UTC_OFFSETS = (2, 12)  # Russia's zones: Kaliningrad UTC+2 .. Kamchatka UTC+12 (no DST since 2014, R9.4)


class ControlError(ValueError):
    """A bad control request (unknown op, bad argument)."""


class ControlHandler:
    def __init__(self, core: FiscalCore) -> None:
        self.core = core
        self.extra_ops: dict[str, Callable[[dict[str, Any]], Reply]] = {}  # e.g. the hub link (fisGo)
        self._ops: dict[str, Callable[[dict[str, Any]], Reply]] = {
            "state": self._state,
            "paper": self._paper,
            "cover": self._cover,
            "ofd": self._ofd,
            "clock": self._clock,
            "power": self._power,
            "firmware": self._firmware,
            "defects": self._defects,
            "journal": self._journal,
            "tape": self._tape,
            "fn": self._fn,
            "zone": self._zone,
            "setting": self._setting,
            "ops": self._list_ops,
        }

    def handle(self, request: Any) -> Reply:
        """Answer one request; never raises."""
        try:
            if not isinstance(request, dict):
                raise ControlError("request must be a JSON object")
            op = request.get("op")
            handler = (self._ops.get(op) or self.extra_ops.get(op)) if isinstance(op, str) else None
            if handler is None:
                known = ", ".join(sorted({*self._ops, *self.extra_ops}))
                raise ControlError(f"unknown op {op!r} (known: {known})")
            reply = handler(request)
            return {"ok": True, **reply}
        except (ControlError, ValueError, TypeError, KeyError, ArithmeticError) as exc:
            return {"ok": False, "error": one_line(str(exc) or type(exc).__name__)}
        except Exception as exc:  # noqa: BLE001 - never drop the connection, whatever the request did
            return {"ok": False, "error": one_line(f"internal error: {type(exc).__name__}: {exc}")}

    def handle_line(self, line: bytes) -> bytes:
        """One request line in, one reply line out (never raises)."""
        try:
            request = loads(line)
        except BadJson as exc:
            reply: Reply = {"ok": False, "error": f"bad JSON: {exc}"}
        else:
            reply = self.handle(request)
        try:
            return dumps_line(reply)
        except (TypeError, ValueError) as exc:  # a reply that is not JSON: an op's bug, still one line
            return dumps_line({"ok": False, "error": one_line(f"internal error: reply not JSON: {exc}")})

    # ------------------------------------------------------------------------------ ops

    def _state(self, _: dict[str, Any]) -> Reply:
        return {"state": self.core.snapshot()}

    def _paper(self, req: dict[str, Any]) -> Reply:
        state = _choice(req, "state", [p.value for p in PaperState])
        after = req.get("after_lines")
        if after is not None and (not isinstance(after, int) or isinstance(after, bool) or after < 0):
            raise ControlError("after_lines must be a non-negative integer")
        if after is not None and state != PaperState.OK.value:
            raise ControlError("after_lines goes with state 'ok' (paper present, runs out later)")
        self.core.set_paper(PaperState(state), after_lines=after)
        return {"paper": self.core.printer.paper.value}

    def _cover(self, req: dict[str, Any]) -> Reply:
        self.core.set_cover(_bool(req, "open"))
        return {"cover_open": self.core.printer.cover_open}

    def _ofd(self, req: dict[str, Any]) -> Reply:
        self.core.set_ofd(_bool(req, "online"))
        return {"online": self.core.ofd_online, "unsent": len(self.core.undelivered())}

    def _clock(self, req: dict[str, Any]) -> Reply:
        if "set" in req:
            value = req["set"]
            try:
                when = datetime.fromisoformat(str(value))
            except ValueError:
                raise ControlError(f"clock set takes ISO local time like 2020-12-31T23:50:00, not {value!r}") from None
            if when.tzinfo is not None:
                raise ControlError("clock set takes device local time without a zone")
            if not YEARS[0] <= when.year <= YEARS[1]:
                raise ControlError(
                    f"clock set takes a time in {YEARS[0]}..{YEARS[1]} (the registers' dates have two-digit years)"
                )
            rtc_only = req.get("rtc_only", False)
            if not isinstance(rtc_only, bool):
                raise ControlError("clock rtc_only takes true or false")
            self.core.lab_clock_set(when, rtc_only=rtc_only)
        elif "advance" in req:
            seconds = req["advance"]
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= MAX_ADVANCE:
                raise ControlError("clock advance takes a non-negative number of seconds, at most 100 years")
            if (self.core.now() + timedelta(seconds=seconds)).year > YEARS[1]:
                raise ControlError(f"clock advance would pass {YEARS[1]} (the registers' dates have two-digit years)")
            self.core.lab_clock_advance(float(seconds))
        elif len(req) > 1:
            raise ControlError("clock takes 'set' (ISO local time) or 'advance' (seconds)")
        return {"now": self.core.now().isoformat(), "fn_seconds": self.core.clock.fn_seconds()}

    def _power(self, req: dict[str, Any]) -> Reply:
        action = _choice(req, "action", ["off", "on", "cycle"])
        if action in ("off", "cycle"):
            self.core.set_power(False)
        if action in ("on", "cycle"):
            self.core.set_power(True)
        return {"powered": self.core.powered}

    def _firmware(self, req: dict[str, Any]) -> Reply:
        version = req.get("version")
        if not isinstance(version, str):
            raise ControlError("firmware takes 'version' like \"2.25.0\"")
        self.core.set_firmware(version)
        return {"firmware": self.core.firmware}

    def _defects(self, req: dict[str, Any]) -> Reply:
        enable = req.get("enable", [])
        disable = req.get("disable", [])
        if not all(isinstance(x, list) and all(isinstance(n, str) for n in x) for x in (enable, disable)):
            raise ControlError("defects takes lists of names 'enable' and/or 'disable'")
        self.core.set_defects(set(enable), set(disable))
        return {"defects": sorted(self.core.defects), "known": DEFECTS}

    def _fn(self, req: dict[str, Any]) -> Reply:
        """Lab-only ФН set-up: ``activated`` (ISO local time) ages the ФН, ``registrations_done``
        uses up registrations — what a scenario needs to reach "ФН incompatible" states; ``kind``
        (fn15, fn36) makes it a ФН of that model."""
        if "kind" in req:
            if not isinstance(req["kind"], str):
                raise ControlError("fn kind takes fn15 or fn36")
            self.core.lab_fn(kind=req["kind"])
        if "activated" in req:
            try:
                when = datetime.fromisoformat(str(req["activated"]))
            except ValueError:
                raise ControlError(f"fn activated takes ISO local time, not {req['activated']!r}") from None
            self.core.lab_fn(activated=when)
        if "registrations_done" in req:
            count = req["registrations_done"]
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ControlError("fn registrations_done takes a positive integer")
            self.core.lab_fn(registrations_done=count)
        if "tax_systems" in req:  # the regime the (prepared) ФН is registered on
            names = req["tax_systems"]
            if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
                raise ControlError('fn tax_systems takes a list of names like ["usn_income"]')
            self.core.lab_fn(tax_systems=TaxSystem.from_names(names))
        fn = self.core.snapshot()["fn"]
        keys = ("activated_at", "valid_until", "registrations_done", "registrations_left", "kind")
        return {"fn": {**{k: fn[k] for k in keys}, "tax_systems": TaxSystem(fn["tax_systems"]).names}}

    def _zone(self, req: dict[str, Any]) -> Reply:
        """The device time zone (the profile's ``utc_offset_hours``: fisGo's local date and the
        local time it reports to the Кабинет); without ``utc_offset_hours`` it answers the current one."""
        if "utc_offset_hours" in req:
            hours = req["utc_offset_hours"]
            low, high = UTC_OFFSETS
            if not isinstance(hours, int) or isinstance(hours, bool) or not low <= hours <= high:
                raise ControlError(
                    f"zone takes 'utc_offset_hours' an integer {low}..{high} (Russia's zones), not {hours!r}"
                )
            with self.core.lock:
                self.core.profile = dataclasses.replace(self.core.profile, utc_offset_hours=hours)
                self.core.log("lab zone", f"UTC+{hours}")
        elif len(req) > 1:
            raise ControlError("zone takes 'utc_offset_hours' (an integer hours east of UTC) or nothing")
        return {"utc_offset_hours": self.core.profile.utc_offset_hours}

    def _setting(self, req: dict[str, Any]) -> Reply:
        """A profile setting changed at run time, as ``--set name=value`` would start it
        (``{"op": "setting", "name": "auto_open_shift", "value": "1"}``); identity is refused."""
        name, value = req.get("name"), req.get("value")
        if not isinstance(name, str) or not isinstance(value, str):
            raise ControlError("setting takes 'name' and 'value' strings, like --set name=value")
        with self.core.lock:
            self.core.profile = self.core.profile.with_overrides({name: value})
            self.core.log("lab setting", f"{name}={value}")
        return {"settings": self.core.profile.settings_help()}

    def _journal(self, _: dict[str, Any]) -> Reply:
        return {
            "journal": [{"at": e.at.isoformat(), "event": e.event, "detail": e.detail} for e in list(self.core.journal)]
        }

    def _tape(self, _: dict[str, Any]) -> Reply:
        return {"tape": list(self.core.tape)}

    def _list_ops(self, _: dict[str, Any]) -> Reply:
        return {"ops": sorted({*self._ops, *self.extra_ops})}


def _choice(req: dict[str, Any], key: str, allowed: list[str]) -> str:
    value = req.get(key)
    if value not in allowed:
        raise ControlError(f"{req.get('op')} takes {key!r} one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _bool(req: dict[str, Any], key: str) -> bool:
    value = req.get(key)
    if not isinstance(value, bool):
        raise ControlError(f"{req.get('op')} takes {key!r} true or false, not {value!r}")
    return value


# ---------------------------------------------------------------------------------- TCP server


class _LineHandler(socketserver.StreamRequestHandler):
    timeout = 300  # an idle control client is dropped after 5 min

    def handle(self) -> None:
        server = self.server
        assert isinstance(server, _Server)
        handler = server.control
        while True:
            try:
                line = self.rfile.readline(MAX_LINE_BYTES + 1)
                if len(line) > MAX_LINE_BYTES:
                    self._skip_line(line)
                    reply = dumps_line({"ok": False, "error": f"line longer than {MAX_LINE_BYTES} bytes"})
                elif not line:
                    return
                elif not line.strip():
                    continue
                else:
                    reply = handler.handle_line(line)
                self.wfile.write(reply)
                self.wfile.flush()
            except OSError:  # also the idle timeout
                return

    def _skip_line(self, start: bytes) -> None:
        """Read and drop the rest of an overlong line, up to and including its newline."""
        chunk = start
        while chunk and not chunk.endswith(b"\n"):
            chunk = self.rfile.readline(MAX_LINE_BYTES)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    control: ControlHandler


class ControlServer:
    """Serves a :class:`ControlHandler` on ``tcp://127.0.0.1:PORT`` (loopback only, unless
    ``allow_lan``: the user asked for another address explicitly; nothing authenticates a client)."""

    def __init__(self, handler: ControlHandler, url: str = "tcp://127.0.0.1:0", *, allow_lan: bool = False) -> None:
        host, port = parse_tcp_url(url)
        if not allow_lan:
            check_loopback(host)
        self._server = _Server((host, port), _LineHandler)
        self._server.control = handler
        self._thread = threading.Thread(target=self._server.serve_forever, name="kkt-control", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"tcp://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
