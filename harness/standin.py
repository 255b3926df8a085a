"""A stand-in lab register: try the lab path of the stand without hardware.

``kkt-hil standin MODEL --inventory FILE`` starts, in one process:

* an emulated register on a pseudo-terminal, with a flowing (real-time) clock, as a register on
  a USB serial port would be;
* a simulated SCPI bench supply on loopback TCP (``TCPIP::127.0.0.1::PORT::SOCKET``, as a LAN
  supply on port 5025 would be); its output state is the register's power;
* an emulated OFD server; the register sends its documents to the address where the harness's
  OFD proxy will listen ([device.ofd] of the entry), so the OFD link is cut while no run holds it;
* a Dreamkas hub the register polls every second, when the model takes Кабинет tasks;
* a scripted operator on loopback TCP — the only thing that touches the emulator's control
  channel, as a person's hands would: paper, cover, swapping a prepared ФН, flashing firmware.

It writes the register's ``[[device]]`` entry into FILE (other entries are kept) and prints
``inventory FILE`` and ``device ID`` as its first two lines.  The harness then reaches it only
through the inventory, like hardware.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from . import families
from .fiscal import FN_REGISTRATION_LIMIT
from .inventory import LabDevice, OfdLink, Supply

HUB_POLL_SECONDS = 1.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ScriptedOperator:
    """Does what the lab asks, through the emulator's control channel (one JSON line each)."""

    def __init__(self, control: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self._control = control
        self._lab_fn: dict[str, Any] | None = None  # the stand-in's own ФН, while a prepared one is in

    def _fn_state(self) -> dict[str, Any]:
        fn = self._control({"op": "fn"})["fn"]
        return {
            "activated": fn["activated_at"],
            "registrations_done": fn["registrations_done"],
            "tax_systems": fn["tax_systems"],
        }

    def handle(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("args", {}), dict):
            return {"ok": False, "error": "request must be {action, args, text}"}
        action, args = request.get("action"), dict(request.get("args") or {})
        if action == "paper":
            return self._control({"op": "paper", **args})
        if action == "cover":
            return self._control({"op": "cover", **args})
        if action == "power":
            return self._control({"op": "power", "action": args.get("state")})
        if action == "firmware":
            return self._control({"op": "firmware", **args})
        if action == "fn_setup":  # put a prepared ФН in; the stand-in's own one is kept aside
            if self._lab_fn is None:
                self._lab_fn = self._fn_state()
            return self._control({"op": "fn", **args})
        if action == "fn_restore":  # the stand-in's own ФН back, as it was
            if self._lab_fn is None:
                return {"ok": True}
            reply = self._control({"op": "fn", **self._lab_fn})
            self._lab_fn = None
            return reply
        if action == "fn_replace":  # a fresh sacrificial ФН: registrations back to one
            return self._control({"op": "fn", "registrations_done": 1})
        return {"ok": False, "error": f"the operator cannot {action!r}"}


class _Lines(socketserver.StreamRequestHandler):
    timeout = 30

    def handle(self) -> None:
        server: _OperatorServer = self.server  # type: ignore[assignment]  # socketserver types it as BaseServer
        line = self.rfile.readline(1 << 16)
        try:
            reply = server.operator.handle(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            reply = {"ok": False, "error": f"bad JSON: {exc}"}
        self.wfile.write((json.dumps(reply, ensure_ascii=False) + "\n").encode("utf-8"))


class _OperatorServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, operator: ScriptedOperator) -> None:
        self.operator = operator
        super().__init__(("127.0.0.1", 0), _Lines)


@dataclass
class StandIn:
    entry: LabDevice
    emulated: families.Emulated | None = None  # for diagnosing the stand-in itself; the harness never uses it
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        while self._closers:
            try:
                self._closers.pop()()
            except Exception:  # noqa: BLE001 - closing the rest matters more than one failure
                pass


def start_standin(
    model_id: str, *, device_id: str, sacrificial: bool, settings: dict[str, str] | None = None
) -> StandIn:
    """Start every part; ValueError/UsageError with one line for bad settings."""
    from .instruments.sim_supply import SimulatedSupply
    from .ofd.server import OfdServer

    model = families.model(model_id)
    proxy_port = free_port()  # where the harness's OFD proxy will listen during a run
    emulated = families.family(model.family).start_emulator(
        model.id, {**(settings or {}), "ofd": f"tcp://127.0.0.1:{proxy_port}"}, flowing_clock=True
    )
    standin = StandIn(entry=None, emulated=emulated)  # type: ignore[arg-type]  # entry: filled in once every part is up
    standin._closers.append(emulated.close)
    try:
        url = emulated.serve("pty")
        supply = SimulatedSupply(
            on_output=lambda on: _checked(emulated.control({"op": "power", "action": "on" if on else "off"}))
        )
        standin._closers.append(supply.close)
        ofd = OfdServer()
        standin._closers.append(ofd.close)
        hub_url = _start_hub(emulated, standin) if families.cloud_of(model.id) is not None else None
        operator = _OperatorServer(ScriptedOperator(emulated.control))
        threading.Thread(target=operator.serve_forever, name="standin-operator", daemon=True).start()

        def stop_operator() -> None:
            operator.shutdown()
            operator.server_close()

        standin._closers.append(stop_operator)
        host, port = operator.server_address[:2]
        standin.entry = LabDevice(
            id=device_id,
            model=model.id,
            url=url,
            usb_serial=None,
            port=None,
            serial=emulated.serial,
            fn=emulated.fn_kind,
            sacrificial=sacrificial,
            rereg_floor=2,
            fn_registration_limit=FN_REGISTRATION_LIMIT,  # what the emulated ФН allows (R5.6)
            utc_offset=timedelta(hours=3),
            operator=f"tcp://{host!s}:{port}",
            hub=hub_url,
            hub_poll_seconds=HUB_POLL_SECONDS if hub_url else None,
            baud=None,
            supply=Supply(resource=supply.resource, channel=1),
            ofd=OfdLink(listen=f"tcp://127.0.0.1:{proxy_port}", upstream=ofd.url),
            source="stand-in",
        )
    except BaseException:
        standin.close()
        raise
    return standin


def _checked(reply: dict[str, Any]) -> None:
    if not reply.get("ok"):
        raise RuntimeError(str(reply.get("error")))


def _start_hub(emulated: families.Emulated, standin: StandIn) -> str:
    """A hub for the register, and the register's own poll schedule (every second, real time)."""
    cloud = families.cloud_of(emulated.model.id)
    assert cloud is not None
    hub = cloud.serve_hub()
    standin._closers.append(hub.close)
    emulated.attach_cloud(hub.url, poll_interval=HUB_POLL_SECONDS)
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(HUB_POLL_SECONDS):
            emulated.control({"op": "hub", "poll": True})

    thread = threading.Thread(target=ticker, name="standin-hub-poll", daemon=True)
    thread.start()

    def stop_polling() -> None:
        stop.set()
        thread.join(timeout=5)

    standin._closers.append(stop_polling)
    return str(hub.url)
