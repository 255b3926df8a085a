"""Service commands: the settings table (0x11/0x12, :mod:`.settings_table`), pictures and logos
(two-stage uploads 0x15/0x17/0x18/0x55/0x67, 0x16, 0x19), the drawer and the beeper (0x80-0x82),
the wifi module (0x85-0x87, FM16 FFD 1.2), memory and service data (0x91, 0x94), the serial speed
(0x93), the OFD server (0x9E, 0x9F, 0xA5; dropped from the manual in 2021-02), the Кабинет
commands (0xA6-0xA9) and services activation (0xAA).

State lives in ``core.wire_memory`` under ``pirit_*`` keys (logo, design, pictures — number →
``{"id", "width", "height", "offset", "data"}``, for 0x56 —, drawer pulses, serial speed, wifi,
Кабинет flag, services).  ``wire_memory`` is not in ``--state`` snapshots: after a restart the
emulator has no pictures and default settings [decided: none of it is fiscal data].

Choices where the manual is silent [inferred]:

* 0x81: the emulated drawer has no sensor and springs shut after its pulse, so it always reports
  0 (closed) — as the FM16 manual says every Вики Принт 57 does; 0x80 only journals the pulse.
* 0x55 prints "in the document": it needs an open document (0x01, extended 8 otherwise) and a
  ready printer; the picture becomes a line of the document.  0x67 (PNG) goes into the open
  document if there is one, else straight onto the tape.  Both check the paper width: 336 dots
  on 57 mm models (0x02/16 = 1), else 512.  The second stage checks the image's signature
  (0x1B for a logo, the PNG signature for 0x67): a wrong one is 0x03.
* 0x18 numbers start at 1 (0x19 answers 0 for "not found"; Пирит 2Ф: 1..10, as its 0x56);
  loading an id again under another number moves it.
* 0x91 reads zeros: the emulator has no firmware memory to show.
* 0x93 records the speed (journal and ``pirit_baud``); the link itself keeps going (a pty or TCP
  link has no baud rate to change).
* 0x94 prints on the tape; it needs a ready printer and no open document.
* 0xA5: 2 if the OFD address (settings 77) or port (78) is not set, else 1 while the core's OFD
  link is up (``core.ofd_online``), 0 when it is down.
* 0x86 and 0xAA answer their data without echoing the request number (their tables list none).
* 0xAA: the emulator has no licence server; any non-empty key puts every known service into the
  key (bit 0), and a service becomes active (bit 1) once a shift is opened after the activation
  ("Функционал услуг активируется после открытия новой смены").  Known services: those of
  settings element 88 (tag 1200 printing, FFD changes of 29.08.2019), all permanent (no date).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from math import ceil
from typing import Any

from harness.errors import ErrorKind

from ...emulator.core import CoreError
from ...emulator.profiles import FN_KINDS
from ...emulator.records import CUT
from ..catalogue import PIRIT2F
from ..protocol import Field, Request
from .fields import Fields, ParamError, handles
from .settings_table import SettingsCommands

SERIAL_SPEEDS = 6  # 0x93 takes a speed code 0..5 (the manual's table of line rates)
LOGO_MAX = 1 + 62 + 576 // 8 * 220  # 0x1B + a monochrome BMP of 576 × 220 dots
DESIGN_MAX = 65535  # [inferred]: the manual gives no limit
PICTURE_MAX = 65530  # 0x18
GRAPHICS_MAX = 20000  # 0x55
PNG_MAX_HEIGHT = 512
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SERVICES = {1: "Печать тега 1200", 2: "Правки ФФД от 29.08.2019"}  # [inferred] from settings 88
SERVICES_PROTOCOL = 1  # 0xAA/4 protocol version [inferred]


class ServiceCommands(SettingsCommands, Fields):
    edition: str  # the manual edition (set by the front-end)

    @property
    def _svc_memory(self) -> dict[str, Any]:
        return self.core.wire_memory

    # -------------------------------------------------------------------------- uploads

    def _upload(self, request: Request, data: bytes | None, *, first_stage: bool) -> list[Field]:
        """A two-stage upload: at the first stage, the byte count to take; then the answer."""
        stages: dict[int, Callable[[Request, bytes | None], list[Field]]] = {
            0x15: self._logo_stage,
            0x17: self._design_stage,
            0x18: self._picture_stage,
            0x55: self._graphics_stage,
            0x67: self._png_stage,
        }
        return stages[request.command](request, None if first_stage else (data or b""))

    @handles(0x15)
    def _logo(self, request: Request) -> list[Field]:
        return self._upload(request, None, first_stage=True)

    @handles(0x17)
    def _design(self, request: Request) -> list[Field]:
        return self._upload(request, None, first_stage=True)

    @handles(0x18)
    def _picture(self, request: Request) -> list[Field]:
        return self._upload(request, None, first_stage=True)

    @handles(0x55)
    def _graphics(self, request: Request) -> list[Field]:
        return self._upload(request, None, first_stage=True)

    @handles(0x67)
    def _png(self, request: Request) -> list[Field]:
        return self._upload(request, None, first_stage=True)

    def _svc_size(self, request: Request, high: int) -> int:
        size = self._int(request, 0, 0)
        if not 0 < size <= high:
            raise ParamError(f"0x{request.command:02X}: {size} bytes (1..{high})")
        return size

    def _logo_stage(self, request: Request, data: bytes | None) -> list[Field]:
        if data is None:
            return [self._svc_size(request, LOGO_MAX)]
        if data[:1] != b"\x1b":
            raise ParamError("logo image does not start with 0x1B")
        self._svc_memory["pirit_logo"] = data
        self.core.log("logo loaded", f"{len(data)} bytes")
        return []

    def _design_stage(self, request: Request, data: bytes | None) -> list[Field]:
        if data is None:
            return [self._svc_size(request, DESIGN_MAX)]
        self._svc_memory["pirit_design"] = data
        self.core.log("receipt design loaded", f"{len(data)} bytes")
        return []

    def _svc_max_width(self) -> int:
        return 336 if self.core.profile.model_code in range(1, 5) else 512  # 57 mm paper: 0x02/16 = 1

    def _svc_bitmap(self, request: Request, max_width: int, max_size: int) -> tuple[int, int, int, int]:
        """Width, height, offset (0..2) of a 1-bit picture, and its byte count ceil(w/8)·h."""
        width, height, offset = self._int(request, 0, 0), self._int(request, 1, 0), self._int(request, 2, 0)
        if not 0 < width <= max_width or height <= 0:
            raise ParamError(f"picture {width}×{height}: width 1..{max_width}, height ≥ 1")
        if offset not in (0, 1, 2):
            raise ParamError(f"picture offset {offset} (0..2)")
        size = ceil(width / 8) * height
        if size > max_size:
            raise ParamError(f"picture of {size} bytes (at most {max_size})")
        return width, height, offset, size

    def _picture_stage(self, request: Request, data: bytes | None) -> list[Field]:
        width, height, offset, size = self._svc_bitmap(request, 512, PICTURE_MAX)
        ident = self._field(request, 3)
        number = self._int(request, 4, 0)
        if not 1 <= len(ident) <= 100:
            raise ParamError("picture id: 1..100 characters")
        if number < 1 or (self.edition == PIRIT2F and number > 10):
            raise ParamError(f"picture number {number} (from 1; Пирит 2Ф: 1..10)")
        if data is None:
            return [size]
        pictures: dict[int, dict[str, Any]] = self._svc_memory.setdefault("pirit_pictures", {})
        for old in [n for n, p in pictures.items() if p["id"] == ident]:
            del pictures[old]
        pictures[number] = {"id": ident, "width": width, "height": height, "offset": offset, "data": data}
        self.core.log("picture loaded", f"#{number} {ident!r} {width}×{height}")
        return []

    @handles(0x19)
    def _find_picture(self, request: Request) -> list[Field]:
        ident = self._field(request, 0)
        if not 1 <= len(ident) <= 100:
            raise ParamError("picture id: 1..100 characters")
        pictures: dict[int, dict[str, Any]] = self._svc_memory.get("pirit_pictures", {})
        return [next((n for n, p in sorted(pictures.items()) if p["id"] == ident), 0)]

    @handles(0x16)
    def _delete_logo(self, _: Request) -> list[Field]:
        self._svc_memory.pop("pirit_logo", None)
        return []

    def _graphics_stage(self, request: Request, data: bytes | None) -> list[Field]:
        width, height, _, size = self._svc_bitmap(request, self._svc_max_width(), GRAPHICS_MAX)
        self.core.current_document()  # 0x55 prints inside an open document
        if data is None:
            self.core._require_printer()
            return [size]
        self.core.add_text(f"[графика {width}×{height}]")
        return []

    def _png_stage(self, request: Request, data: bytes | None) -> list[Field]:
        size = self._int(request, 0, 0)
        width, height, offset = self._int(request, 1, 0), self._int(request, 2, 0), self._int(request, 3, 0)
        if size <= 0:
            raise ParamError(f"PNG file of {size} bytes")
        if not 0 < width <= self._svc_max_width() or width % 8 or not 0 < height <= PNG_MAX_HEIGHT:
            raise ParamError(f"PNG {width}×{height}: width a multiple of 8 up to {self._svc_max_width()}, height ≤ 512")
        if offset not in (0, 1, 2):
            raise ParamError(f"PNG offset {offset} (0..2)")
        if data is None:
            self.core._require_printer()
            return [size]
        if not data.startswith(PNG_SIGNATURE):
            raise ParamError("not a PNG file")
        line = f"[PNG {width}×{height}]"
        if self.core.document is not None:
            self.core.add_text(line)
        else:
            self.core.tape.append(line)
        return []

    # -------------------------------------------------------------------------- peripherals

    @handles(0x80)
    def _open_drawer(self, request: Request) -> list[Field]:
        pulse = self._int(request, 0, 150)
        if not 50 <= pulse <= 500:
            raise ParamError(f"drawer pulse {pulse} ms (50..500)")
        self._svc_memory["pirit_drawer_pulses"] = self._svc_memory.get("pirit_drawer_pulses", 0) + 1
        self.core.log("drawer opened", f"{pulse} ms pulse")
        return []

    @handles(0x81)
    def _drawer_state(self, _: Request) -> list[Field]:
        return [0]  # no sensor: shut again right after the pulse (module docstring)

    @handles(0x82)
    def _beep(self, request: Request) -> list[Field]:
        duration = self._int(request, 0, -1)
        if not 10 <= duration <= 2000:
            raise ParamError(f"beep of {duration} ms (10..2000)")
        self.core.log("beep", f"{duration} ms")
        return []

    @property
    def _svc_wifi(self) -> dict[str, Any]:
        return self._svc_memory.setdefault("pirit_wifi", {"log_level": 0})  # type: ignore[no-any-return]

    def _svc_text(self, request: Request, index: int, high: int, what: str) -> str:
        value = self._field(request, index)
        if len(value) > high:
            raise ParamError(f"{what}: at most {high} characters")
        return value

    @handles(0x85)
    def _wifi_settings(self, request: Request) -> list[Field]:
        n = self._int(request, 0, -1)
        wifi = self._svc_wifi
        if n in (0, 1):
            key = "network" if n == 0 else "access_point"
            wifi[key] = (self._svc_text(request, 1, 32, "ssid"), self._svc_text(request, 2, 64, "password"))
        elif n == 2:
            wifi["udp_log"] = (self._svc_text(request, 1, 16, "ip address"), self._int(request, 2, 0))
        elif n == 3:
            wifi.pop("udp_log", None)
        elif n == 4:
            level = self._int(request, 1, -1)
            if not 0 <= level <= 5:
                raise ParamError(f"log level {level} (0..5)")
            wifi["log_level"] = level
        else:
            raise ParamError(f"0x85 request {n} not in the manual")
        return []

    @handles(0x86)
    def _wifi_info(self, request: Request) -> list[Field]:
        n = self._int(request, 0, -1)
        wifi = self._svc_wifi
        if n == 0:  # connected once a network is set [inferred]; the address is settings 73
            ssid = wifi.get("network", ("", ""))[0]
            return [ssid, self.table_value(73) if ssid else ""]
        if n == 1:
            return [wifi.get("access_point", (f"VIKI-{self.core.serial[-6:]}", ""))[0], "192.168.4.1"]
        if n == 2:
            tail = self.core.serial[-6:].rjust(6, "0")
            return ["02:00:00:" + ":".join(tail[i : i + 2] for i in range(0, 6, 2))]
        if n == 3:
            return [f"vikiprint-{self.core.serial[-6:]}"]
        raise ParamError(f"0x86 request {n} not in the manual")

    @handles(0x87)
    def _wifi_update(self, request: Request) -> list[Field]:
        n = self._int(request, 0, -1)
        if n not in (0, 1):
            raise ParamError(f"0x87 request {n} not in the manual")
        url, md5 = self._svc_text(request, 1, 200, "url"), self._svc_text(request, 2, 33, "md5")
        if not url:
            raise ParamError("0x87: no update url")
        # [inferred]: the emulator has no firmware to flash; the update is journaled and changes nothing
        self.core.log("wifi update", f"{'wifi module' if n == 0 else 'fm16'} from {url} md5 {md5}")
        return []

    # -------------------------------------------------------------------------- service

    @handles(0x91)
    def _memory_block(self, request: Request) -> list[Field]:
        kind, address, count = self._int(request, 0, -1), self._int(request, 1, -1), self._int(request, 2, -1)
        if not 1 <= kind <= 6 or address < 0 or not 1 <= count <= 64:
            raise ParamError(f"0x91: type {kind} (1..6), address {address}, {count} bytes (1..64)")
        return ["00" * count]

    @handles(0x93)
    def _serial_speed(self, request: Request) -> list[Field]:
        speed = self._int(request, 0, -1)
        if not 0 <= speed < SERIAL_SPEEDS:
            raise ParamError(f"serial speed {speed} (0..5)")
        self._svc_memory["pirit_baud"] = speed
        self.core.log("serial speed", f"code {speed} (recorded; the link is unchanged)")
        return []

    @handles(0x94)
    def _print_service_data(self, _: Request) -> list[Field]:
        core = self.core
        if core.document is not None:
            raise CoreError(ErrorKind.DOCUMENT_OPEN, "service data: a document is open")
        core._require_printer()
        core.tape.extend(
            [
                "СЕРВИСНЫЕ ДАННЫЕ",
                core.profile.model_name,
                f"ЗН ККТ {core.serial}  ПО {core.firmware}",
                f"ФН {core.fn.serial}  ФФД {core.profile.ffd}",
                f"ИНН {core.fn.inn}  РН ККТ {core.fn.rnm}",
                f"ОФД {self.table_value(77)}:{self.table_value(78)}",
                f"СКОРОСТЬ {self._svc_memory.get('pirit_baud', 'по умолчанию')}",
                *(f"НАСТРОЙКА {n}: {self.table_value(n)}" for n in range(1, 7)),
                CUT,
            ]
        )
        return []

    # -------------------------------------------------------------------------- OFD server

    @handles(0x9E)
    def _ofd_url(self, _: Request) -> list[Field]:
        return [self.table_value(77)]

    @handles(0x9F)
    def _set_ofd_url(self, request: Request) -> list[Field]:
        self._table_store[(77, 0)] = self._svc_text(request, 0, 64, "OFD server URL")
        return []

    @handles(0xA5)
    def _ofd_reachable(self, _: Request) -> list[Field]:
        if not self.table_value(77) or not self.table_value(78):
            return [2]
        return [1 if self.core.ofd_online else 0]

    # -------------------------------------------------------------------------- Кабинет

    @handles(0xA6)
    def _cash_info(self, _: Request) -> list[Field]:
        core, fn = self.core, self.core.fn
        name = " ".join(str(self.table_value(30, i)) for i in (0, 1)).strip()
        address = " ".join(str(self.table_value(30, i)) for i in (2, 3)).strip()
        return [
            name,
            address,
            fn.inn,
            fn.serial,
            core.profile.ffd,
            _fn_title(fn.kind),
            fn.rnm,
            int(fn.tax_systems),
            1 if fn.work_mode & 0x02 else 0,  # work mode bit 1: autonomous (tag 1002)
            self.table_value(81),
            self.table_value(71),
            self.table_value(77),
            self.table_value(78),
            self.table_value(83),
            fn.work_mode,
            f"{core.fn_valid_until():%Y-%m-%d}",
            f"{core.now():%Y-%m-%dT%H:%M:%S}",
            self.table_value(85),
        ]

    @handles(0xA7)
    def _register_info(self, _: Request) -> list[Field]:
        core = self.core
        return [
            str(uuid.uuid5(uuid.NAMESPACE_OID, f"kkt-hil/{core.profile.id}/{core.serial}")),
            str(core.profile.model_code),
            core.profile.model_name,
            core.profile.title,
            core.profile.model_name,
            core.serial,
            "1",  # a ФН is installed
        ]

    @handles(0xA8)
    def _set_cabinet_flag(self, request: Request) -> list[Field]:
        flag = self._int(request, 0, -1)
        if not 0 <= flag <= 0xFFFF:
            raise ParamError(f"Кабинет flag {flag} is not a 16-bit number")
        self._svc_memory["pirit_cabinet_flag"] = flag
        return []

    @handles(0xA9)
    def _cabinet_flag(self, _: Request) -> list[Field]:
        return [self._svc_memory.get("pirit_cabinet_flag", 0)]

    @handles(0xAA)
    def _services(self, request: Request) -> list[Field]:
        n = self._int(request, 0, -1)
        if n == 1:
            key = self._field(request, 1)
            if not key:
                raise ParamError("0xAA/1: no key")
            self._svc_memory["pirit_services"] = {"key": key, "shift": self.core.shift.number}
            return []
        if n == 2:
            number = self._int(request, 1, -1)
            if number not in SERVICES:
                raise ParamError(f"0xAA/2: unknown service {number}")
            return [self._svc_service_status(), SERVICES[number]]
        if n == 3:
            self.core._require_printer()
            status = self._svc_service_status()
            self.core.tape.extend(["АКТИВИРОВАННЫЕ УСЛУГИ", *(f"{k} {t}: {status}" for k, t in SERVICES.items()), CUT])
            return []
        if n == 4:
            status = self._svc_service_status()
            listing = "".join(f"{k};{t};{status};;" for k, t in SERVICES.items())
            return [SERVICES_PROTOCOL, len(SERVICES), listing]
        raise ParamError(f"0xAA request {n} not in the manual")

    def _svc_service_status(self) -> int:
        """Bit 0: the service is in the key; bit 1: active (a shift opened since the activation)."""
        activation = self._svc_memory.get("pirit_services")
        if activation is None:
            return 0
        opened_since = self.core.shift.number > activation["shift"]
        return 0b11 if opened_since else 0b01


def _fn_title(kind: str) -> str:
    found = FN_KINDS.get(kind)
    return found.title if found is not None else kind
