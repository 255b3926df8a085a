"""The lab inventory: one TOML file describing the registers of a lab, schema-checked.

Every problem is one line ``FILE:LINE: what is wrong`` (:class:`InventoryError`), never a
traceback.  A register is named by a stable identity — a pyserial URL, the USB serial number of
its adapter or its USB port location — never by a bare ``/dev/ttyUSB0`` (those move between
reboots).  A complete entry (keys marked *required* must be there; one connection key exactly)::

    [[device]]
    id = "bench1"                      # required, unique, [a-z0-9_-]+
    model = "kf"                       # required, a catalogue model id (harness.families.model_ids())
    url = "socket://127.0.0.1:50003"   # the connection, exactly one of: url (any pyserial URL:
    # usb_serial = "AB12CD"            #   socket://, rfc2217://, loop://, /dev/serial/by-id/…, a
    # port = "1-1.4"                   #   stand-in's /dev/pts/N, COMn), usb_serial or port (pyserial's
    #                                  #   `location`): both resolved to the current tty
    # labgrid = "kf1"                  #   or a labgrid place ("kf1?coordinator=HOST:PORT"; else
    #                                  #   LG_COORDINATOR): acquired for the run (harness.labgrid)
    serial = "0497123456"              # required, 10+ digits: the factory number the register reports
    fn = "fn36"                        # required, the ФН kind: fn15 | fn36
    sacrificial = false                # required: true only for a test ФН that may be burnt
    rereg_floor = 2                    # re-registrations that must stay left on the ФН (>= 0; default 2)
    fn_registration_limit = 30         # optional: registrations the ФН allows in all; needed for a
                                       #   (re-)registration where the register counts only those done (Pirit)
    timezone = "+03:00"                # device local time, UTC offset +HH:MM / -HH:MM (default +03:00)
    operator = "tty"                   # required: "tty", "none" or "tcp://127.0.0.1:PORT" (scripted)
    hub = "http://127.0.0.1:8080"      # optional: the harness hub this register polls (http/https)
    hub_poll_seconds = 300             # optional, > 0, only with hub
    baud = 57600                       # optional, > 0, for serial ports
    pool = "kf-lab"                    # optional: a pool of equivalent registers (one model), run as
                                       #   --kkt pool:kf-lab: each test leases whichever member is free

    [device.supply]                    # optional bench supply
    resource = "TCPIP::192.168.0.50::5025::SOCKET"   # required, a VISA resource string
    channel = 1                        # >= 1 (default 1)
    voltage = 12.0                     # optional, > 0
    current_limit = 2.0                # optional, > 0

    [device.ofd]                       # optional: the OFD link through the harness proxy
    listen = "tcp://127.0.0.1:7779"    # required: where the harness proxy listens
    upstream = "tcp://127.0.0.1:7777"  # required: the real (or emulated) OFD

Unknown keys, wrong types, duplicate ids, serials or connections are errors.  tomllib keeps no
positions, so LINE comes from a small index of the file's lines (:func:`_line_index`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from . import families
from .errors import UsageError
from .net import parse_tcp_url

ENV_VAR = "KKT_HIL_INVENTORY"
DEFAULT_FILE = "kkt-hil.toml"
FN_KINDS = ("fn15", "fn36")
LINKS = ("url", "usb_serial", "port", "labgrid")
DEVICE_KEYS: tuple[str, ...] = (
    "id",
    "model",
    "url",
    "usb_serial",
    "port",
    "serial",
    "fn",
    "sacrificial",
    "rereg_floor",
    "fn_registration_limit",
    "timezone",
)
DEVICE_KEYS += ("operator", "hub", "hub_poll_seconds", "baud", "supply", "ofd")
DEVICE_KEYS += ("pool",)
DEVICE_KEYS += ("labgrid",)
SUPPLY_KEYS = ("resource", "channel", "voltage", "current_limit")
OFD_KEYS = ("listen", "upstream")
PYSERIAL_SCHEMES = ("socket", "rfc2217", "loop", "spy", "hwgrep", "alt", "cp2110")
_UNSTABLE = re.compile(r"/dev/tty(USB|ACM|S)\d*")
_ID = re.compile(r"[a-z0-9_-]+")
_LOCATION = re.compile(r"\d+-[\d.]+(:[\w.]+)?")
_TZ = re.compile(r"([+-])(\d\d):(\d\d)")
_VISA = re.compile(r"(TCPIP|USB|ASRL|GPIB|VXI|PXI)\d*::\S+", re.IGNORECASE)
_HEADER = re.compile(r"\s*(\[\[?)([^\[\]]+)\]\]?\s*(#.*)?")
_KEY_PART = r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'"""
_KEY = re.compile(rf"\s*((?:{_KEY_PART})(?:\s*\.\s*(?:{_KEY_PART}))*)\s*=")
Path_ = tuple[int | str, ...]


class InventoryError(UsageError):
    """A bad inventory file or entry: one line, ``FILE:LINE: what is wrong``."""


@dataclass(frozen=True)
class Supply:
    resource: str  # VISA resource string
    channel: int = 1
    voltage: float | None = None
    current_limit: float | None = None


@dataclass(frozen=True)
class OfdLink:
    listen: str  # where the harness proxy listens (the register is configured to use it)
    upstream: str  # the real (or emulated) OFD


@dataclass(frozen=True)
class LabDevice:
    id: str
    model: str
    url: str | None
    usb_serial: str | None
    port: str | None
    serial: str
    fn: str
    sacrificial: bool
    rereg_floor: int
    fn_registration_limit: int | None
    utc_offset: dt.timedelta
    operator: str
    hub: str | None
    hub_poll_seconds: float | None
    baud: int | None
    supply: Supply | None
    ofd: OfdLink | None
    source: str  # "FILE:LINE" of its [[device]] header
    pool: str | None = None  # the pool of equivalent registers it belongs to (--kkt pool:NAME)
    labgrid: str | None = None  # its labgrid place: "PLACE" or "PLACE?coordinator=HOST:PORT"

    def resolve_url(self, ports: list[Any] | None = None) -> str:
        """The pyserial URL: ``url`` as written, or the tty now behind ``usb_serial`` / ``port``,
        or the serial port of the ``labgrid`` place this run holds."""
        if self.url is not None:
            return self.url
        if self.labgrid is not None:
            from .labgrid import entry_url

            return entry_url(self)
        if ports is None:
            from serial.tools.list_ports import comports

            ports = list(comports())
        if self.usb_serial is not None:
            wanted = f"USB serial number {self.usb_serial!r}"
            found = [p for p in ports if p.serial_number == self.usb_serial]
        else:
            wanted = f"USB port {self.port!r}"
            found = [p for p in ports if p.location == self.port or str(p.location).startswith(f"{self.port}:")]
        if len(found) == 1:
            return str(found[0].device)
        if not found:
            plugged = ", ".join(_describe_port(p) for p in ports) or "none"
            raise InventoryError(f"{self.source}: {self.id}: no serial port with {wanted} (plugged in: {plugged})")
        many = ", ".join(_describe_port(p) for p in found)
        raise InventoryError(f"{self.source}: {self.id}: {len(found)} serial ports match {wanted}: {many}")


def _describe_port(port: Any) -> str:
    usb = f", {port.vid:04x}:{port.pid:04x}" if port.vid is not None and port.pid is not None else ""
    return f"{port.device} (serial {port.serial_number}, port {port.location}{usb})"


@dataclass(frozen=True)
class Inventory:
    path: Path
    devices: dict[str, LabDevice]

    def device(self, device_id: str) -> LabDevice:
        if device_id not in self.devices:
            known = ", ".join(self.devices) or "none"
            raise UsageError(f"{self.path}: no device {device_id!r} in the inventory (known: {known})")
        return self.devices[device_id]

    def pool(self, name: str) -> list[LabDevice]:
        """The members of the pool ``name``, in the file's order."""
        members = [d for d in self.devices.values() if d.pool == name]
        if not members:
            known = ", ".join(sorted({d.pool for d in self.devices.values() if d.pool})) or "none"
            raise UsageError(
                f'{self.path}: no pool {name!r} in the inventory (pools: {known}; a member says pool = "{name}")'
            )
        return members

    def match(self, serial: str) -> LabDevice | None:
        """The entry of the register whose factory number is ``serial``."""
        return next((d for d in self.devices.values() if d.serial == serial), None)


def _key_parts(text: str) -> list[str]:
    return [p.strip("\"'") for p in re.findall(_KEY_PART, text)]


def _line_index(text: str) -> dict[Path_, int]:
    """Path → first line: ``(i,)`` is the i-th ``[[device]]`` header, ``(i, "supply")`` its
    ``[device.supply]``, ``(i, "supply", "channel")`` a ``key =`` line in it; other tables and
    top-level keys are keyed by their names.  Dotted keys also index their prefixes."""
    index: dict[Path_, int] = {}
    current: Path_ = ()
    devices = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.fullmatch(line):
            parts = _key_parts(header[2])
            if header[1] == "[[" and parts == ["device"]:
                devices += 1
                current = (devices,)
                index.setdefault(("device",), number)
            elif parts[:1] == ["device"] and len(parts) > 1 and devices >= 0:
                current = (devices, *parts[1:])
            else:
                current = tuple(parts)
            parts, base = [], current
        elif key := _KEY.match(line):
            parts, base = _key_parts(key[1]), current
        else:
            continue
        for n in range(1, len(base) + len(parts) + 1):  # a line also stands for the tables it opens
            index.setdefault((*base, *parts)[:n], number)
    return index


def _find(index: dict[Path_, int], path: Path_) -> int:
    """The line of ``path``, else of its nearest indexed parent, else of the first device."""
    return next((index[path[:n]] for n in range(len(path), 0, -1) if path[:n] in index), index.get(("device",), 1))


class _Table:
    """One TOML table of the inventory being checked, with the way to its lines."""

    def __init__(self, file: str, index: dict[Path_, int], path: Path_, data: Any, known: tuple[str, ...]) -> None:
        self.file, self.index, self.path, self.prefix = file, index, path, ""
        if path[1:]:
            self.prefix = ".".join(str(p) for p in path[1:]) + "."
        if not isinstance(data, dict):
            self.fail(None, f"{self.prefix.rstrip('.') or 'device'} must be a table, not {_describe(data)}")
        self.data: dict[str, Any] = data
        for key in data:
            if key not in known:
                self.fail(key, f"unknown key {self.prefix}{key} (known: {', '.join(known)})")

    def line(self, key: str | None = None) -> int:
        return _find(self.index, (*self.path, key) if key else self.path)

    def fail(self, key: str | None, message: str) -> NoReturn:
        raise InventoryError(f"{self.file}:{self.line(key)}: {message}")

    def get(self, key: str, kind: str, *, required: bool = False, default: Any = None, minimum: int = 0) -> Any:
        """The value of ``key`` checked for its type (and for integers ``>= minimum``, numbers ``> minimum``)."""
        if key not in self.data:
            if required:
                self.fail(None, f"missing required key {self.prefix}{key}")
            return default
        value, name = self.data[key], self.prefix + key
        number = isinstance(value, int | float) and not isinstance(value, bool)
        types = {"a string": isinstance(value, str), "true or false": isinstance(value, bool)}
        if not types.get(kind, number) or (kind == "an integer" and not isinstance(value, int)):
            self.fail(key, f"{name} must be {kind}, not {_describe(value)}")
        if isinstance(value, str) and not value.strip():
            self.fail(key, f"{name} is empty")
        if number and (value < minimum or not math.isfinite(value) or (value == minimum and kind == "a number")):
            self.fail(key, f"{name} must be {'>' if kind == 'a number' else '>='} {minimum}, not {value!r}")
        return float(value) if kind == "a number" else value

    def url(self, key: str, schemes: tuple[str, ...], required: bool = False) -> Any:
        """A ``scheme://HOST:PORT`` value (None when absent and not required)."""
        value = self.get(key, "a string", required=required)
        if value is not None:
            try:
                parts = urlsplit(value)
                ok = parts.scheme in schemes and bool(parts.hostname) and 0 < (parts.port or 0) < 65536
                if parts.scheme == "tcp":
                    parse_tcp_url(value)
            except ValueError:
                ok = False
            if not ok:
                self.fail(key, f"{self.prefix}{key}: expected {schemes[0]}://HOST:PORT, not {value!r}")
        return value


def _describe(value: Any) -> str:
    names = {str: "the string ", bool: "", int: "the integer ", float: "the number ", dict: "a table", list: "an array"}
    simple = isinstance(value, str | int | float)
    return names.get(type(value), "a date/time") + (_toml_value(value) if simple else "")


def _device(file: str, index: dict[Path_, int], number: int, data: Any) -> LabDevice:
    t = _Table(file, index, (number,), data, DEVICE_KEYS)
    v: dict[str, Any] = {k: t.get(k, "a string", required=True) for k in ("id", "model")}
    if not _ID.fullmatch(v["id"]):
        t.fail("id", f"id {v['id']!r} must be lower-case letters, digits, _ and - only")
    try:
        v["model"] = families.model(v["model"]).id
    except UsageError as exc:
        t.fail("model", str(exc))
    given = [key for key in LINKS if key in t.data]
    if len(given) != 1:
        t.fail(
            given[1] if given else None,
            f"give exactly one of url, usb_serial, port (given: {', '.join(given) or 'none'}), or labgrid",
        )
    v |= {k: t.get(k, "a string") for k in LINKS}
    if v["labgrid"] is not None:
        from .spec import parse_spec

        text = f"labgrid:{v['labgrid']}"
        try:
            parse_spec(text)
        except UsageError as exc:
            t.fail("labgrid", f"labgrid {v['labgrid']!r}: {str(exc).split(f'{text!r}: ', 1)[-1]}")
        if "#" in v["labgrid"]:
            t.fail("labgrid", f"labgrid {v['labgrid']!r}: the entry's model says the model, not #model=")
    url = v["url"] or ""
    if _UNSTABLE.fullmatch(url):
        t.fail("url", f"url {url!r} is unstable across reboots: use usb_serial or port, or a /dev/serial/by-id/ path")
    if url.startswith("faulty:"):  # a replayed frame would reach the register below the guard
        t.fail("url", f"url {url!r}: a lab register is never reached through fault injection (faulty://)")
    if "://" in url and url.partition("://")[0] not in PYSERIAL_SCHEMES:
        t.fail("url", f"url {url!r}: not a pyserial URL (schemes: {', '.join(PYSERIAL_SCHEMES)})")
    if url.startswith(("socket:", "rfc2217:")):
        t.url("url", (url.partition(":")[0],))
    if v["port"] is not None and not _LOCATION.fullmatch(v["port"]):
        t.fail("port", f"port {v['port']!r} is not a USB location like 1-1.4 (python -m serial.tools.list_ports -v)")
    v |= {k: t.get(k, "a string", required=True) for k in ("serial", "fn", "operator")}
    if not (v["serial"].isascii() and v["serial"].isdigit() and len(v["serial"]) >= 10):
        t.fail("serial", f"serial {v['serial']!r} must be 10 or more digits (the factory number)")
    if v["fn"] not in FN_KINDS:
        t.fail("fn", f"fn must be one of {', '.join(FN_KINDS)}, not {v['fn']!r}")
    if v["operator"] not in ("tty", "none"):
        if not v["operator"].startswith("tcp:"):
            t.fail("operator", f'operator must be "tty", "none" or tcp://127.0.0.1:PORT, not {v["operator"]!r}')
        t.url("operator", ("tcp",))
    v["sacrificial"] = t.get("sacrificial", "true or false", required=True)
    v["rereg_floor"] = t.get("rereg_floor", "an integer", default=2)
    v["fn_registration_limit"] = t.get("fn_registration_limit", "an integer", minimum=1)
    zone = _TZ.fullmatch(t.get("timezone", "a string", default="+03:00"))
    if not zone or int(zone[2]) > 14 or int(zone[3]) > 59:
        t.fail("timezone", f"timezone must be a UTC offset like +03:00 or -05:00, not {t.data['timezone']!r}")
    v["utc_offset"] = dt.timedelta(hours=int(zone[2]), minutes=int(zone[3])) * (-1 if zone[1] == "-" else 1)
    v["hub"] = t.url("hub", ("http", "https"))
    v["hub_poll_seconds"] = t.get("hub_poll_seconds", "a number")
    if v["hub_poll_seconds"] is not None and v["hub"] is None:
        t.fail("hub_poll_seconds", "hub_poll_seconds without hub")
    v["baud"] = t.get("baud", "an integer", minimum=1)
    v["supply"] = v["ofd"] = None
    if "supply" in t.data:
        s = _Table(file, index, (number, "supply"), t.data["supply"], SUPPLY_KEYS)
        resource = s.get("resource", "a string", required=True)
        if not _VISA.fullmatch(resource):
            s.fail("resource", f"supply.resource {resource!r} is not a VISA resource (TCPIP::HOST::PORT::SOCKET)")
        voltage, limit = (s.get(k, "a number") for k in ("voltage", "current_limit"))
        v["supply"] = Supply(resource, s.get("channel", "an integer", default=1, minimum=1), voltage, limit)
    if "ofd" in t.data:
        o = _Table(file, index, (number, "ofd"), t.data["ofd"], OFD_KEYS)
        v["ofd"] = OfdLink(*(o.url(key, ("tcp",), required=True) for key in OFD_KEYS))
    v["pool"] = t.get("pool", "a string")
    if v["pool"] is not None and not _ID.fullmatch(v["pool"]):
        t.fail("pool", f"pool {v['pool']!r} must be lower-case letters, digits, _ and - only")
    return LabDevice(**v, source=f"{file}:{t.line()}")


def parse_text(text: str, path: Path) -> Inventory:
    """``text`` checked as the inventory ``path`` would be (InventoryError, FILE:LINE, if bad)."""
    return _parse(text, path)


def _parse(text: str, path: Path) -> Inventory:
    file = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", str(exc))
        line = int(where[1]) if where else max(1, len(text.splitlines()))
        message = str(exc)[: where.start()] + f" (column {where[2]})" if where else str(exc)
        raise InventoryError(f"{file}:{line}: not valid TOML: {message}") from None
    index = _line_index(text)
    top = _Table(file, index, (), data, ("device",))
    entries = data.get("device", [])
    if not isinstance(entries, list):
        top.fail("device", "device must be an array of tables: write [[device]], not [device]")
    devices: dict[str, LabDevice] = {}
    for number, entry in enumerate(entries):
        device = _device(file, index, number, entry)
        for other in devices.values():
            for key in ("id", "serial", *LINKS):
                value = getattr(device, key)
                if value is not None and value == getattr(other, key) and not str(value).startswith("loop:"):
                    line = _find(index, (number, key))
                    raise InventoryError(f"{file}:{line}: {key} {value!r} is used by {other.id} too ({other.source})")
        _check_pool(file, index, number, device, devices)
        devices[device.id] = device
    return Inventory(path, devices)


def _check_pool(file: str, index: dict[Path_, int], number: int, new: LabDevice, old: dict[str, LabDevice]) -> None:
    """The members of a pool are equivalent registers: one model."""
    first = next((d for d in old.values() if new.pool is not None and d.pool == new.pool), None)
    if first is not None and first.model != new.model:
        where = f"{file}:{_find(index, (number, 'pool'))}: pool {new.pool!r}"
        raise InventoryError(f"{where} holds {first.model} registers ({first.id}, {first.source}), not {new.model}")


def load_inventory(path: str | Path) -> Inventory:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read the inventory: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InventoryError(f"{path}:{line}: not UTF-8 text") from None
    return _parse(text, path)


def inventory_path(option: str | None) -> Path | None:
    """``--inventory``, else ``$KKT_HIL_INVENTORY``, else ``./kkt-hil.toml`` if it exists, else None."""
    if option:
        return Path(option)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    local = Path.cwd() / DEFAULT_FILE
    return local if local.is_file() else None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")  # a JSON string is a TOML one


def _block(header: str, values: Mapping[str, Any], comments: Mapping[str, str] | None = None) -> list[str]:
    lines = [header]
    for key, value in values.items():
        if value is not None:
            note = (comments or {}).get(key)
            lines.append(f"{key} = {_toml_value(value)}" + (f"  # {note}" if note else ""))
    return lines


def entry_toml(device: LabDevice) -> str:
    """The ``[[device]]`` block of ``device``, as :func:`load_inventory` reads it back."""
    minutes = int(device.utc_offset.total_seconds()) // 60
    zone = f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    values = {k: zone if k == "timezone" else getattr(device, k) for k in DEVICE_KEYS if k not in ("supply", "ofd")}
    comments = {
        "sacrificial": "set true ONLY for a test ФН that may be burnt by destructive scenarios",
        "operator": '"tty": prompt at this terminal; "none": skip operator steps; tcp://127.0.0.1:PORT: scripted',
    }
    lines = _block("[[device]]", values, comments)
    if device.supply is not None:
        lines += _block("[device.supply]", {k: getattr(device.supply, k) for k in SUPPLY_KEYS})
    if device.ofd is not None:
        lines += _block("[device.ofd]", {k: getattr(device.ofd, k) for k in OFD_KEYS})
    return "\n".join(lines) + "\n"


def suggest_entry(
    *,
    id: str,
    model: str,
    serial: str,
    url: str | None = None,
    usb_serial: str | None = None,
    port: str | None = None,
    fn: str = "fn36",
) -> str:
    """A ready ``[[device]]`` block for a register found on this host (checked: InventoryError if bad)."""
    link = {"url": url, "usb_serial": usb_serial, "port": port}
    fields = {"id": id, "model": model, **link, "serial": serial, "fn": fn, "sacrificial": False}
    text = "\n".join(_block("[[device]]", {**fields, "rereg_floor": 2, "timezone": "+03:00", "operator": "none"}))
    parsed = _parse(text + "\n", Path("<suggested entry>"))
    return entry_toml(next(iter(parsed.devices.values())))


def write_inventory(path: str | Path, devices: list[str]) -> Inventory:
    """Write ``[[device]]`` blocks as one inventory file, atomically, after checking them together."""
    path = Path(path)
    text = "\n".join(block.strip() + "\n" for block in devices)
    inventory = _parse(text, path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)  # readers see the old file or the new one, never half of it
    return inventory
