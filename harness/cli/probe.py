"""``kkt-hil probe`` (one register's info, status, ФН and OFD queue) and ``kkt-hil devices``
(discovery: every serial port and inventory entry probed with every registered family)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from .. import families
from ..errors import LinkError, UsageError
from .common import EXIT_OK, check_timeout

if TYPE_CHECKING:
    from devices.models import Identified, Model


def cmd_probe(args: argparse.Namespace, _: list[str]) -> int:
    from ..connect import open_kkt
    from ..spec import parse_spec

    check_timeout(args.timeout)
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
    """Every serial port (and inventory entry) probed with every family, within a short deadline."""
    from serial.tools import list_ports

    from ..inventory import Inventory, inventory_path, load_inventory, suggest_entry
    from ..lab_open import DeviceClock

    check_timeout(args.timeout)
    path = inventory_path(args.inventory)
    inventory: Inventory | None = load_inventory(path) if path is not None else None
    ports = list(list_ports.comports())
    candidates: dict[str, str] = {port.device: _port_line(port) for port in ports}
    clocks: dict[str, Callable[[], datetime]] = {}
    for entry in inventory.devices.values() if inventory is not None else ():
        try:
            url = entry.resolve_url(ports)
        except UsageError as exc:
            print(f"lab:{entry.id}  not found: {exc}")
            continue
        candidates.setdefault(url, f"lab:{entry.id} ({entry.source})")
        assert inventory is not None
        clocks[url] = DeviceClock(inventory, entry.id).now  # the skew the lab left on it
    if not candidates:
        print("serial ports: none found")
    suggestions = []
    for url, where in candidates.items():
        found, problem = _identify(url, args.timeout, clocks.get(url))
        print(f"{url}  {where}  {problem or _found_line(found, inventory)}")
        if found is not None and found.serial and (inventory is None or inventory.match(found.serial) is None):
            model = found.candidates[0] if found.candidates else None
            if model is not None and args.suggest:
                name = f"{model}-{found.serial[-4:]}"
                suggestions.append(suggest_entry(id=name, model=model, serial=found.serial, url=url))
    _list_usb()
    for block in suggestions:
        print("\n" + block.rstrip())
    return EXIT_OK


def _port_line(port: Any) -> str:
    vid = f"{port.vid:04x}:{port.pid:04x}" if port.vid is not None else "-"
    models = _usb_models(port.vid, port.pid)
    hint = f" — {models[0].title}?" if models else ""
    return f"usb {vid} {port.description}{hint}"


def _identify(url: str, timeout: float, host_clock: Callable[[], datetime] | None) -> tuple[Identified | None, str]:
    """The first family that recognises a register at ``url`` (reads, and the start of work a
    register just powered up needs: the guard refuses the rest), or why the port could not be tried."""
    from ..link import Link
    from ..transport import open_transport

    for family in families.families().values():
        try:
            transport = open_transport(url, baudrate=family.models[0].baudrate, timeout=timeout, scanner=family.scan)
        except LinkError as exc:
            return None, str(exc)
        try:
            found = family.detect_on(Link(transport, timeout_scale=timeout), host_clock=host_clock)
        finally:
            transport.close()
        if found is not None:
            return found, ""
    return None, ""


def _found_line(found: Identified | None, inventory: Any) -> str:
    if found is None:
        return "no register answered (tried: " + ", ".join(families.families()) + ")"
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
        print(f"usb: not scanned ({type(exc).__name__}: {exc})")


def _usb_models(vendor: int | None, product: int | None) -> list[Model]:
    return [m for m in families.catalogue().values() if any(u.matches(vendor, product) for u in m.usb_ids)]
