"""Typed answer data of the application layer (reference §3.5.1–§3.5.4).

3Fh :class:`StatusBlock` with :class:`StatusFlags` (and the project's
:data:`STATUS_PRINT_PENDING`), 45h :class:`StateAnswer`, A5h :class:`DeviceType`, 9Dh
:class:`FirmwareVersion`, and the A4h FN queries: :class:`ShiftParams` (10h),
:class:`OfdExchangeStatus` (20h), :class:`FnStatus` (30h), :class:`FnValidity` (32h),
:class:`RegistrationTotals` (43h, [inferred]).  Each has ``encode()`` and ``decode()``.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from decimal import Decimal
from enum import IntFlag
from typing import Final

from ._base import CodecError, check_byte, hex_text, need
from .commands import FnPhase, Interface, Mode, NumberEncoding, ShiftState, mode_byte
from .numbers import (
    bcd_date,
    bcd_time,
    bin_date,
    bin_datetime,
    decode_text,
    encode_bcd_date,
    encode_bcd_time,
    encode_bin_date,
    encode_bin_datetime,
    encode_text,
    from_bcd,
    from_le,
    money_from_bcd,
    money_to_bcd,
    to_bcd,
    to_le,
)

# --- 3Fh status block ---------------------------------------------------------------------------


class StatusFlags(IntFlag):
    """3Fh flags byte (offset 9)."""

    NONE = 0
    FISCAL = 0x01
    SHIFT_OPEN = 0x02
    CASH_DRAWER_OPEN = 0x04
    """[conflict]: S6/S8 "cash drawer open"; S7 reads bit 2 as "paper in presenter"."""
    PAPER_PRESENT = 0x08
    """1 = paper OK."""
    BIT4 = 0x10
    """Unused / unknown."""
    COVER_OPEN = 0x20
    FN_ACTIVATED = 0x40
    BATTERY_LOW = 0x80


STATUS_BLOCK_SIZE: Final = 30


@dataclass(frozen=True)
class StatusBlock:
    """The 3Fh answer: ``'D'`` and 29 bytes (§3.5.1).

    ``shift_number`` is the last *closed* shift (the open one is that + 1).  ``receipt_sum`` is
    scaled by ``decimal_point`` digits.  Bytes beyond offset 29 (newer firmware) go to ``extra``.
    """

    date: _dt.date = _dt.date(2000, 1, 1)
    time: _dt.time = _dt.time(0, 0, 0)
    cashier: int = 0
    number_in_hall: int = 1
    flags: StatusFlags = StatusFlags.NONE
    serial: int = 0
    model: int = 0
    version: bytes = b"\x00\x00"
    mode: int = Mode.SELECT
    submode: int = 0
    receipt_number: int = 0
    shift_number: int = 0
    receipt_state: int = 0
    receipt_sum: Decimal = Decimal("0.00")
    decimal_point: int = 2
    interface: int = Interface.USB
    extra: bytes = b""

    @property
    def datetime(self) -> _dt.datetime:
        return _dt.datetime.combine(self.date, self.time)

    @property
    def serial_text(self) -> str:
        """Serial number as the 8 BCD digits on the wire."""
        return f"{self.serial:08d}"

    @property
    def receipt_open(self) -> bool:
        return self.receipt_state != 0

    def encode(self) -> bytes:
        if len(self.version) != 2:
            raise CodecError("StatusBlock.version must be 2 bytes")
        out = bytearray(b"D")
        out += to_bcd(self.cashier, 1)
        out.append(check_byte(self.number_in_hall, "number in hall"))
        out += encode_bcd_date(self.date)
        out += encode_bcd_time(self.time)
        out.append(check_byte(int(self.flags), "flags"))
        out += to_bcd(self.serial, 4)
        out.append(check_byte(self.model, "model"))
        out += self.version
        out.append(mode_byte(self.mode, self.submode))
        out += to_bcd(self.receipt_number, 2)
        out += to_bcd(self.shift_number, 2)
        out.append(check_byte(self.receipt_state, "receipt state"))
        out += money_to_bcd(self.receipt_sum, 5, self.decimal_point)
        out.append(check_byte(self.decimal_point, "decimal point"))
        out.append(check_byte(self.interface, "interface"))
        return bytes(out) + self.extra

    @classmethod
    def decode(cls, payload: bytes) -> StatusBlock:
        """Decode the full 3Fh answer payload (starting with ``'D'``)."""
        payload = bytes(payload)
        need(payload, STATUS_BLOCK_SIZE, "3Fh status block")
        if payload[0] != 0x44:
            raise CodecError(f"3Fh status block must start with 'D': {hex_text(payload)}")
        point = payload[28]
        return cls(
            cashier=from_bcd(payload[1:2]),
            number_in_hall=payload[2],
            date=bcd_date(payload[3:6]),
            time=bcd_time(payload[6:9]),
            flags=StatusFlags(payload[9]),
            serial=from_bcd(payload[10:14]),
            model=payload[14],
            version=payload[15:17],
            mode=payload[17] & 0x0F,
            submode=payload[17] >> 4,
            receipt_number=from_bcd(payload[18:20]),
            shift_number=from_bcd(payload[20:22]),
            receipt_state=payload[22],
            receipt_sum=money_from_bcd(payload[23:28], point),
            decimal_point=point,
            interface=payload[29],
            extra=payload[STATUS_BLOCK_SIZE:],
        )


# --- 45h state code ------------------------------------------------------------------------------


class PrinterFlags(IntFlag):
    """45h printer flags."""

    NONE = 0
    NO_PAPER = 0x01
    NO_PRINTER_LINK = 0x02
    MECHANICAL_ERROR = 0x04
    CUTTER_ERROR = 0x08
    HEAD_OVERHEAT = 0x10
    PAPER_JAM = 0x20
    PRESENTER_ERROR = 0x40
    PAPER_NEAR_END = 0x80


@dataclass(frozen=True)
class StateAnswer:
    """45h answer data (after ``'U'``): mode byte, printer flags."""

    mode: int = Mode.SELECT
    submode: int = 0
    flags: PrinterFlags = PrinterFlags.NONE

    def encode(self) -> bytes:
        return bytes([mode_byte(self.mode, self.submode), check_byte(int(self.flags), "flags")])

    @classmethod
    def decode(cls, data: bytes) -> StateAnswer:
        need(data, 2, "45h state")
        return cls(data[0] & 0x0F, data[0] >> 4, PrinterFlags(data[1]))


# --- A5h device type -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceType:
    """A5h answer data (after the error byte).

    ``firmware`` is kept raw: its 5-byte layout is not pinned down by the sources.
    """

    protocol_version: int = 0
    device_type: int = 0
    model: int = 0
    mode: int = Mode.SELECT
    submode: int = 0
    firmware: bytes = bytes(5)
    name: str = ""

    @property
    def firmware_text(self) -> str:
        return ".".join(f"{b:02X}" for b in self.firmware)

    def encode(self) -> bytes:
        if len(self.firmware) != 5:
            raise CodecError("DeviceType.firmware must be 5 bytes")
        return (
            bytes(
                [
                    check_byte(self.protocol_version, "protocol version"),
                    check_byte(self.device_type, "device type"),
                    check_byte(self.model, "model"),
                    check_byte(self.mode, "mode"),
                    check_byte(self.submode, "sub-mode"),
                ]
            )
            + self.firmware
            + encode_text(self.name)
        )

    @classmethod
    def decode(cls, data: bytes) -> DeviceType:
        data = bytes(data)
        need(data, 10, "A5h device type")
        return cls(data[0], data[1], data[2], data[3], data[4], data[5:10], decode_text(data[10:]))


# --- 9Dh firmware version ------------------------------------------------------------------------


@dataclass(frozen=True)
class FirmwareVersion:
    """9Dh answer data (after ``'U' err``): version, sub-version, language, build (BCD)."""

    version: int = 0
    subversion: int = 0
    language: int = 0
    build: int = 0

    @property
    def text(self) -> str:
        return f"{self.version}.{self.subversion}.{self.language}.{self.build}"

    def encode(self, *, reserved_byte: bool = False) -> bytes:
        body = to_bcd(self.version, 1) + to_bcd(self.subversion, 1) + to_bcd(self.language, 1) + to_bcd(self.build, 2)
        return (b"\x00" + body) if reserved_byte else body

    @classmethod
    def decode(cls, data: bytes, *, reserved_byte: bool = False) -> FirmwareVersion:
        """``reserved_byte=True``: atol4j's layout with one extra byte before the version."""
        data = bytes(data)
        if reserved_byte:
            need(data, 1, "9Dh firmware version")
            data = data[1:]
        need(data, 5, "9Dh firmware version")
        return cls(from_bcd(data[0:1]), from_bcd(data[1:2]), from_bcd(data[2:3]), from_bcd(data[3:5]))


# --- A4h FN queries ------------------------------------------------------------------------------


def _encode_num2(value: int, encoding: NumberEncoding) -> bytes:
    if encoding == NumberEncoding.BINARY_LE:
        return to_le(value, 2)
    if encoding == NumberEncoding.BCD_LE:
        return to_bcd(value, 2)[::-1]
    return to_bcd(value, 2)


def _decode_num2(data: bytes, encoding: NumberEncoding) -> int:
    if encoding == NumberEncoding.BINARY_LE:
        return from_le(data)
    if encoding == NumberEncoding.BCD_LE:
        return from_bcd(bytes(data)[::-1])
    return from_bcd(data)


@dataclass(frozen=True)
class ShiftParams:
    """A4h/10h answer data: shift state, shift number, receipt number."""

    state: int = ShiftState.CLOSED
    shift_number: int = 0
    receipt_number: int = 0

    def encode(self, encoding: NumberEncoding = NumberEncoding.BINARY_LE) -> bytes:
        return (
            bytes([check_byte(self.state, "shift state")])
            + _encode_num2(self.shift_number, encoding)
            + _encode_num2(self.receipt_number, encoding)
        )

    @classmethod
    def decode(cls, data: bytes, encoding: NumberEncoding = NumberEncoding.BINARY_LE) -> ShiftParams:
        data = bytes(data)
        need(data, 5, "A4h/10h shift parameters")
        return cls(data[0], _decode_num2(data[1:3], encoding), _decode_num2(data[3:5], encoding))


class OfdFlags(IntFlag):
    """A4h/20h exchange status bits."""

    NONE = 0
    TRANSPORT_CONNECTED = 0x01
    MESSAGE_WAITING = 0x02
    AWAITING_RECEIPT = 0x04
    OFD_COMMAND = 0x08
    SETTINGS_CHANGED = 0x10
    AWAITING_COMMAND_ANSWER = 0x20


@dataclass(frozen=True)
class OfdExchangeStatus:
    """A4h/20h answer data; ``first_unsent_at`` is None when the FN sends all zeros."""

    flags: OfdFlags = OfdFlags.NONE
    read_started: int = 0
    unsent_count: int = 0
    first_unsent_number: int = 0
    first_unsent_at: _dt.datetime | None = None

    def encode(self) -> bytes:
        return (
            bytes([check_byte(int(self.flags), "flags"), check_byte(self.read_started, "read started")])
            + to_le(self.unsent_count, 2)
            + to_le(self.first_unsent_number, 4)
            + encode_bin_datetime(self.first_unsent_at)
        )

    @classmethod
    def decode(cls, data: bytes) -> OfdExchangeStatus:
        data = bytes(data)
        need(data, 13, "A4h/20h OFD exchange status")
        return cls(OfdFlags(data[0]), data[1], from_le(data[2:4]), from_le(data[4:8]), bin_datetime(data[8:13]))


class FnWarnings(IntFlag):
    """A4h/30h FN warning flags."""

    NONE = 0
    URGENT_REPLACEMENT = 0x01
    RESOURCE_LOW = 0x02
    """Less than 30 days of FN life left."""
    MEMORY_90 = 0x04
    OFD_TIMEOUT = 0x08
    CRITICAL = 0x80


@dataclass(frozen=True)
class FnStatus:
    """A4h/30h answer data (the FN's own status record)."""

    phase: int = FnPhase.FISCAL
    current_document: int = 0
    document_data_received: bool = False
    shift_open: bool = False
    warnings: FnWarnings = FnWarnings.NONE
    last_document_at: _dt.datetime | None = None
    fn_number: str = ""
    last_fd_number: int = 0

    def encode(self) -> bytes:
        try:
            number = self.fn_number.encode("ascii")
        except UnicodeEncodeError as exc:
            raise CodecError(f"FN number must be ASCII: {self.fn_number!r}") from exc
        if len(number) > 16:
            raise CodecError(f"FN number longer than 16 characters: {self.fn_number!r}")
        return (
            bytes(
                [
                    check_byte(self.phase, "phase"),
                    check_byte(self.current_document, "document"),
                    int(self.document_data_received),
                    int(self.shift_open),
                    check_byte(int(self.warnings), "warnings"),
                ]
            )
            + encode_bin_datetime(self.last_document_at)
            + number.ljust(16, b" ")
            + to_le(self.last_fd_number, 4)
        )

    @classmethod
    def decode(cls, data: bytes) -> FnStatus:
        data = bytes(data)
        need(data, 30, "A4h/30h FN status")
        return cls(
            data[0],
            data[1],
            bool(data[2]),
            bool(data[3]),
            FnWarnings(data[4]),
            bin_datetime(data[5:10]),
            data[10:26].decode("ascii", "replace").rstrip("\x00 "),
            from_le(data[26:30]),
        )


@dataclass(frozen=True)
class FnValidity:
    """A4h/32h answer data: FN end date (binary YY MM DD), re-registrations left / done."""

    valid_until: _dt.date | None = None
    registrations_left: int = 0
    registrations_done: int = 0

    def encode(self) -> bytes:
        return encode_bin_date(self.valid_until) + bytes(
            [
                check_byte(self.registrations_left, "registrations left"),
                check_byte(self.registrations_done, "registrations done"),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> FnValidity:
        data = bytes(data)
        need(data, 5, "A4h/32h FN validity")
        return cls(bin_date(data[0:3]), data[3], data[4])


@dataclass(frozen=True)
class RegistrationTotals:
    """A4h/43h answer data [inferred]: the last (re-)registration.

    A4h/30h..33h pass the ФН's own 30h..33h answers through (§3.5.4); by the same analogy 43h is
    the ФН's "registration totals": date-time (5, binary), INN (12 ASCII), RNM (20 ASCII), tax
    systems (1, tag 1062 bits), work mode (1), FD number (4 LE), fiscal sign (4 LE).
    """

    at: _dt.datetime | None = None
    inn: str = ""
    rnm: str = ""
    tax_systems: int = 0
    work_mode: int = 0
    fd_number: int = 0
    fiscal_sign: int = 0

    def encode(self) -> bytes:
        try:
            inn = self.inn.encode("ascii")
            rnm = self.rnm.encode("ascii")
        except UnicodeEncodeError as exc:
            raise CodecError(f"INN/RNM must be ASCII: {self.inn!r} {self.rnm!r}") from exc
        if len(inn) > 12 or len(rnm) > 20:
            raise CodecError(f"INN (12) or RNM (20) too long: {self.inn!r} {self.rnm!r}")
        return (
            encode_bin_datetime(self.at)
            + inn.ljust(12, b" ")
            + rnm.ljust(20, b" ")
            + bytes([check_byte(self.tax_systems, "tax systems"), check_byte(self.work_mode, "work mode")])
            + to_le(self.fd_number, 4)
            + to_le(self.fiscal_sign, 4)
        )

    @classmethod
    def decode(cls, data: bytes) -> RegistrationTotals:
        data = bytes(data)
        need(data, 47, "A4h/43h registration totals")
        return cls(
            bin_datetime(data[0:5]),
            data[5:17].decode("ascii", "replace").strip(),
            data[17:37].decode("ascii", "replace").strip(),
            data[37],
            data[38],
            from_le(data[39:43]),
            from_le(data[43:47]),
        )


STATUS_PRINT_PENDING: Final = StatusFlags.BIT4
"""[inferred] 3Fh flags bit 4 (unused per the sources): a document is committed in the ФН but its
printout is unfinished (paper ran out); 95h finishes it.  Set by the emulator only."""
