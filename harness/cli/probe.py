"""``kkt-hil probe`` (one register's info, status, ФН and OFD queue) and ``kkt-hil devices``
(discovery: every serial port and inventory entry probed with every registered family)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from .. import families
from ..errors import HarnessError, LinkCorrupted, LinkDisconnected, LinkError, LinkTimeout, UsageError
from .common import EXIT_OK, EXIT_STATUS, check_device_url, check_timeout, one_line

if TYPE_CHECKING:
    from devices.models import Identified, Model

    from ..link import Deadline, Matcher

T = TypeVar("T")

# = harness.connect.DEFAULT_LINK_TIMEOUT: at 5 s the vendor's per-command deadlines apply as they are
PROBE_TIMEOUT = 5.0
DEVICES_TIMEOUT = 1.0

_PROBE_DESCRIPTION = """\
Read what one register says about itself: info (model, serial, firmware, ФН), status (shift,
document, paper, cover), the ФН, the OFD queue and the clock.  Reads only, plus the "start of
work" a Pirit register just powered up needs before it answers anything else (with the host's
time, as every cash program sends it first)."""

_PROBE_EPILOG = """\
The answer deadlines are the vendor's own read timeouts per command (Pirit: status 1.5 s, most
commands 10 s, ФН queries 20 s; АТОЛ: 10 s, the opening ABORT 3 s), multiplied by TIMEOUT/5:
the default 5 keeps them as the vendor set them, --timeout 1 gives up five times sooner on a
silent port, --timeout 10 waits twice as long on a slow link.  A silent port fails after three
status requests and one short look at what is there (about 5.5 s for a Pirit at the default).

--json prints one JSON object on stdout: {"ok": true, "info": {...}, "status": {...},
"fn": {...}, "ofd_queue": {...}, "clock": "..."}; a mistake or a failure is
{"ok": false, "error": "..."} there too, with the same exit status.

exit status: 0 read; 1 nothing answered, something else answered (shown), the link broke or the
register refused; 2 a usage mistake: an unknown model, a register of another model, a bad URL or
number.

examples:
  kkt-hil probe /dev/ttyUSB0 --model kf                       a Касса Ф on a USB serial adapter
  kkt-hil probe socket://127.0.0.1:50003 --model kf --json    an emulator (kkt-hil emulate kf --listen ...)
  kkt-hil probe rfc2217://lab-host:4001 --model atol --timeout 10    through ser2net, a slow link
  kkt-hil devices                                             not sure what is plugged in, or which model?
"""

_DEVICES_DESCRIPTION = """\
Find the registers plugged into this host: every serial port (and every entry of the lab
inventory) is asked by every protocol family within a short deadline.  Reads only, plus the
"start of work" a Pirit register just powered up needs (with the host's time; for an inventory
entry, with the clock skew the lab left on it)."""

_DEVICES_EPILOG = f"""\
output, one line per port: PORT  WHERE  WHAT ANSWERED, where WHAT ANSWERED is
  pirit: kf  serial 0497123456  firmware 2.26.0  ФН 9999078900012345  = lab:bench1
      (family, catalogue models it can be, factory serial, firmware, ФН, the inventory entry it is)
  nothing answered (tried pirit, atol within 1 s)
  something answered, but not as pirit or atol: 48 54 54 50 ... ("HTTP/1.1 400 Bad Request")
  cannot open /dev/ttyS4: Permission denied
then "usb: ..." (registers seen on USB by vendor id) and, with --suggest, a [[device]] block for
each register the inventory does not know yet.

The inventory is --inventory FILE, else $KKT_HIL_INVENTORY, else ./kkt-hil.toml if it exists
(the first line says which).

{EXIT_STATUS}.

A port leased by a test or run (harness.leases) is not asked: "in use by ..." names the holder.
--leases lists the leases instead, one line each: REGISTER HOLDER TEST AGE HEARTBEAT STATE, where
STATE is held, expired (held, but the holder's heartbeat stopped: it hangs or is stopped) or free
(a lease its killed holder left); "no leases" when there are none.  --json (with --leases): one
JSON object: ok, dir and leases, each with register, url, state, holder (host, pid, user, worker,
test, since, heartbeat: seconds since the epoch), age, heartbeat_age (seconds) and lease (its file).

examples:
  kkt-hil devices                                  every serial port of this host
  kkt-hil devices --leases                         who holds which register now
  kkt-hil devices --inventory lab.toml --suggest   also the lab's registers, and entries for new ones
  kkt-hil devices --timeout 3                      slow registers (the default asks each for 1 s)
"""


def add_probe_parsers(sub: Any) -> None:
    models = ", ".join(families.model_ids())
    probe = sub.add_parser(
        "probe",
        help="read info, status, ФН, OFD queue and clock of one register",
        description=_PROBE_DESCRIPTION,
        epilog=_PROBE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s URL --model MODEL [--json] [--timeout S]",
    )
    probe.add_argument(
        "url",
        metavar="URL",
        help="where the register is, a pyserial URL: /dev/ttyUSB0 (a serial port), "
        "socket://127.0.0.1:50003 (TCP), rfc2217://lab-host:4001 (ser2net)",
    )
    probe.add_argument(
        "--model",
        required=True,
        help=f"the model the register must be (required; it picks the protocol): {models}",
    )
    probe.add_argument("--json", action="store_true", help="one JSON object on stdout, errors too (see below)")
    probe.add_argument(
        "--timeout",
        type=float,
        default=PROBE_TIMEOUT,
        metavar="S",
        help=f"seconds to open the port and for each write (default {PROBE_TIMEOUT:g}); "
        "the answer deadlines scale with it (see below)",
    )

    devices = sub.add_parser(
        "devices",
        help="find registers: probe serial ports and inventory entries with every protocol family",
        description=_DEVICES_DESCRIPTION,
        epilog=_DEVICES_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    devices.add_argument(
        "--inventory",
        metavar="FILE",
        help="the lab inventory (TOML): its entries are probed too, and a register found is marked "
        "with its entry (default: $KKT_HIL_INVENTORY, else ./kkt-hil.toml if it exists)",
    )
    devices.add_argument(
        "--suggest", action="store_true", help="print a ready [[device]] entry for each register the inventory lacks"
    )
    devices.add_argument(
        "--timeout",
        type=float,
        default=DEVICES_TIMEOUT,
        metavar="S",
        help=f"seconds each family has to answer on each port (default {DEVICES_TIMEOUT:g})",
    )
    devices.add_argument(
        "--leases",
        action="store_true",
        help="list the registers' leases (held, expired, free) in the lease directory "
        "($KKT_HIL_LEASE_DIR, else /tmp/kkt-hil-leases) instead of probing",
    )
    devices.add_argument("--json", action="store_true", help="with --leases: one JSON object on stdout")


# -------------------------------------------------------------------------------------- probe


def cmd_probe(args: argparse.Namespace, _: list[str]) -> int:
    from ..connect import open_kkt
    from ..spec import parse_spec

    check_timeout(args.timeout)
    check_device_url(args.url)
    model = families.model(args.model)  # unknown model: one line naming the known ones
    (spec,) = parse_spec(f"url:{args.url}#model={model.id}")
    scale = args.timeout / PROBE_TIMEOUT
    try:
        with open_kkt(spec, link_timeout=args.timeout, timeout_scale=scale) as handle:
            kkt = handle.kkt
            result = {
                "info": kkt.info(),
                "status": kkt.status(),
                "fn": kkt.fn(),
                "ofd_queue": kkt.ofd_queue(),
                "clock": kkt.clock(),
            }
    except (LinkTimeout, LinkDisconnected) as exc:
        raise _what_answered(exc, args.url, families.family(model.family), scale, args.timeout) from exc
    plain = _plain(result)
    if args.json:
        print(json.dumps({"ok": True, **plain}, ensure_ascii=False, indent=2))
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


def _what_answered(exc: LinkError, url: str, family: families.Family, scale: float, link_timeout: float) -> LinkError:
    """A probe that met silence or a hang-up: was it silence?  The driver asks a status again
    after a garbled answer and may then time out, so the port is asked once more, briefly, with a
    trace of its own: whatever came back that was no frame of the family is named, with its first
    bytes (an HTTP server, a console, another protocol).  Else the original error."""
    if isinstance(exc, LinkDisconnected) and not str(exc).startswith(("read from", "write to")):
        return exc  # could not open the port: asking again would only wait again
    if url.startswith("faulty:"):
        return exc  # injected faults make garbage on purpose
    try:
        _, junk = _ask(url, family, scale=scale, link_timeout=link_timeout, host_clock=None)
    except LinkError:
        return exc
    if not junk:
        return exc
    article = "an" if family.title[:1].upper() in "AEIOUАЕЁИОУЭЮЯ" else "a"
    return LinkCorrupted(f"{url} answered with something that is not {article} {family.title} frame: {_show(junk)}")


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


# ------------------------------------------------------------------------------ asking a port


def _ask(
    url: str,
    family: families.Family,
    *,
    scale: float,
    link_timeout: float,
    host_clock: Callable[[], datetime] | None,
) -> tuple[Identified | None, bytes]:
    """Is a register of ``family`` at ``url``?  (what it is, b"") — or (None, what answered there
    when none of it was an answer of the family; b"" for silence).  LinkError if the port cannot
    be opened.  The transport is guarded like every other (reads and "start of work" only)."""
    from ..link import Link
    from ..trace import Trace
    from ..transport import open_transport

    class WatchedLink(Link):
        answered = False  # some exchange got an answer of the family (a refusal is one too)

        def receive(self, matcher: Matcher[T], deadline: Deadline, *, what: str) -> T:
            answer = super().receive(matcher, deadline, what=what)
            self.answered = True
            return answer

    trace = Trace()
    transport = open_transport(
        url, baudrate=family.models[0].baudrate, timeout=link_timeout, trace=trace, scanner=family.scan
    )
    link = WatchedLink(transport, timeout_scale=scale)
    try:
        found = family.detect_on(link, host_clock=host_clock)
    finally:
        transport.close()
    if found is not None or link.answered:
        return found, b""
    return None, b"".join(record.raw for record in trace.records if record.direction == "RX")


def _show(raw: bytes, limit: int = 16) -> str:
    """The first bytes in hex, and as text when they read as text (``("HTTP/1.1 400 Bad Request")``)."""
    text = raw.hex(" ", 1)[: limit * 3 - 1] + (" ..." if len(raw) > limit else "")
    head = raw[:64].split(b"\n", 1)[0].rstrip(b"\r")
    if head and sum(32 <= b < 127 for b in head) >= 0.8 * len(head):
        text += " (" + json.dumps(head.decode("ascii", "replace")) + ")"
    return text


# ------------------------------------------------------------------------------------ devices


def cmd_devices(args: argparse.Namespace, _: list[str]) -> int:
    """Every serial port (and inventory entry) probed with every family, within a short deadline."""
    from serial.tools import list_ports

    from ..inventory import ENV_VAR, Inventory, inventory_path, load_inventory, suggest_entry
    from ..lab_open import DeviceClock

    if args.leases:
        return _list_leases(args.json)
    if args.json:
        raise UsageError("--json goes with --leases (the port listing is text)")
    check_timeout(args.timeout)
    path = inventory_path(args.inventory)
    inventory: Inventory | None = load_inventory(path) if path is not None else None
    if inventory is None:
        print(f"inventory: none (--inventory FILE, ${ENV_VAR} or ./kkt-hil.toml)")
    else:
        source = "--inventory" if args.inventory else f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "./kkt-hil.toml"
        count = len(inventory.devices)
        print(f"inventory: {path} (from {source}, {count} register{'' if count == 1 else 's'})")
    ports = list(list_ports.comports())
    candidates: dict[str, str] = {port.device: _port_where(port) for port in ports}
    clocks: dict[str, Callable[[], datetime]] = {}
    missing: list[tuple[str, str]] = []
    for entry in inventory.devices.values() if inventory is not None else ():
        try:
            url = entry.resolve_url(ports)
        except UsageError as exc:
            missing.append((f"lab:{entry.id}", f"not found: {one_line(str(exc))}"))
            continue
        candidates.setdefault(url, f"inventory lab:{entry.id} ({entry.source})")
        assert inventory is not None
        clocks[url] = DeviceClock(inventory, entry.id).now  # the skew the lab left on it
    if not candidates and not missing:
        print("serial ports: none found")
    else:
        width = max(len(name) for name in [*candidates, *(name for name, _ in missing), "PORT"])
        where_width = max(len(where) for where in [*candidates.values(), "WHERE"])
        print(f"{'PORT':<{width}}  {'WHERE':<{where_width}}  WHAT ANSWERED")
        for name, problem in missing:
            print(f"{name:<{width}}  {problem}")
    suggestions = []
    for url, where in candidates.items():
        found, problem = _identify_unleased(url, args.timeout, clocks.get(url))
        print(f"{url:<{width}}  {where:<{where_width}}  {problem or _found_line(found, inventory)}", flush=True)
        if found is not None and found.serial and (inventory is None or inventory.match(found.serial) is None):
            model = found.candidates[0] if found.candidates else None
            if model is not None and args.suggest:
                name = f"{model}-{found.serial[-4:]}"
                suggestions.append(suggest_entry(id=name, model=model, serial=found.serial, url=url))
    _list_usb()
    for block in suggestions:
        print("\n" + block.rstrip())
    return EXIT_OK


def _identify_unleased(
    url: str, timeout: float, host_clock: Callable[[], datetime] | None
) -> tuple[Identified | None, str]:
    """:func:`_identify`, under the port's lease: a port a test drives now is not asked."""
    from .. import leases

    try:
        lease = leases.acquire(url, f"url:{url}", url, 0)
    except leases.LeaseBusy as exc:
        return None, one_line(str(exc)).replace(f"{url}: {url} is in use", "in use", 1)
    except HarnessError:  # no lease directory to be had here: the port is asked all the same
        return _identify(url, timeout, host_clock)
    with lease:
        return _identify(url, timeout, host_clock)


def _list_leases(as_json: bool) -> int:
    from .. import leases

    folder = leases.lease_dir()
    found = leases.list_leases(folder)
    if as_json:
        print(json.dumps({"ok": True, "dir": str(folder), "leases": [s.as_json() for s in found]}, ensure_ascii=False))
        return EXIT_OK
    print(f"leases: {folder}")
    if not found:
        print("no leases")
        return EXIT_OK
    rows = [("REGISTER", "HOLDER", "TEST", "AGE", "HEARTBEAT", "STATE")]
    for s in found:
        h = s.holder
        holder = f"{h.user}@{h.host} pid {h.pid}" + (f" {h.worker}" if h.worker else "") if h else "?"
        live = s.state != "free"
        rows.append(
            (
                s.register if s.register != "?" else s.path.name,
                holder if live or h is None else f"(was {holder})",
                (h.test if h else "") or "-",
                _age(s.age) if live else "-",
                f"{_age(s.heartbeat_age)} ago" if live and s.heartbeat_age is not None else "-",
                s.state,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)) + "  " + row[5])
    return EXIT_OK


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _port_where(port: Any) -> str:
    """What the host knows of a serial port: a USB adapter (vendor:product, its serial number and
    USB port, the names an inventory entry can use), or a serial port that is not USB."""
    description = port.description if port.description and port.description not in ("n/a", port.name) else ""
    if port.vid is None:
        return "serial port, not USB" + (f" ({description})" if description else "")
    parts = [f"USB {port.vid:04x}:{port.pid:04x}"]
    if port.serial_number:
        parts.append(f"usb_serial {port.serial_number}")
    if port.location:
        parts.append(f"port {port.location}")
    if description:
        parts.append(description)
    models = _usb_models(port.vid, port.pid)
    return " ".join(parts) + (f" — {models[0].title}?" if models else "")


def _identify(url: str, timeout: float, host_clock: Callable[[], datetime] | None) -> tuple[Identified | None, str]:
    """The first family that recognises a register at ``url`` (reads, and the start of work a
    register just powered up needs: the guard refuses the rest), or what the port said instead."""
    tried = list(families.families().values())
    junk = b""
    for family in tried:
        try:
            found, answered = _ask(
                url, family, scale=timeout / DEVICES_TIMEOUT, link_timeout=timeout, host_clock=host_clock
            )
        except LinkError as exc:
            return None, one_line(str(exc))
        if found is not None:
            return found, ""
        junk = junk or answered
    names = " or ".join(family.name for family in tried)
    if junk:
        return None, f"something answered, but not as {names}: {_show(junk)}"
    return None, f"nothing answered (tried {', '.join(f.name for f in tried)} within {timeout:g} s)"


def _found_line(found: Identified | None, inventory: Any) -> str:
    if found is None:
        return "nothing answered"
    if not found.serial:
        return f"{found.family}: {found.note}"
    names = ", ".join(found.candidates) or "no catalogue model"
    line = (
        f"{found.family}: {names}  serial {found.serial}  firmware {found.firmware or '?'}  ФН {found.fn_serial or '?'}"
    )
    entry = inventory.match(found.serial) if inventory is not None else None
    return line + (f"  = lab:{entry.id}" if entry is not None else "")


def _list_usb() -> None:
    vendors = sorted({usb_id.vendor for m in families.catalogue().values() for usb_id in m.usb_ids})
    try:
        import usb.core

        for vendor in vendors:
            for dev in list(usb.core.find(find_all=True, idVendor=vendor) or []):
                titles = ", ".join(m.title for m in _usb_models(dev.idVendor, dev.idProduct))
                print(f"usb {dev.idVendor:04x}:{dev.idProduct:04x} bus {dev.bus} address {dev.address}  {titles}")
    except Exception as exc:  # noqa: BLE001 - no libusb backend on this machine: say so, list the rest
        if type(exc).__name__ == "NoBackendError":
            print("usb: not scanned (pyusb finds no libusb on this host: install libusb-1.0); serial ports above")
        else:
            print(f"usb: not scanned ({type(exc).__name__}: {one_line(str(exc))})")


def _usb_models(vendor: int | None, product: int | None) -> list[Model]:
    return [m for m in families.catalogue().values() if any(u.matches(vendor, product) for u in m.usb_ids)]
