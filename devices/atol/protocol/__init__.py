"""Pure codec for the ATOL "Протокол ККТ 3.x" (platform 2.5 registers: 30Ф, 55Ф, 90Ф, 91Ф, 92Ф ...).

No I/O, no threads, no clocks: bytes in, values out (and back).  Everything here follows
``/work/shared/reference/protocols.md`` §3 and §4; section numbers below refer to it.  Import
every name from the package (``from devices.atol.protocol import X``); the modules are its seams.

Layers, bottom up
=================

* :mod:`._base` -- :class:`CodecError` (a :class:`ValueError`) and the byte checks all layers share.
* :mod:`.numbers` -- BCD, little-endian integers, money, quantities, CP866 text, BCD and binary
  dates (§3.5 "Numbers").
* :mod:`.v3` -- **v3 transport** (§3.2): framing, CRC-8, escaping, :class:`V3Reader`.
* :mod:`.buffer` -- **v3 task buffer** (§3.3): :class:`BufferCmd` / :class:`BufferStatus`
  payloads; an ADD carries a task, i.e. an application-layer request.
* :mod:`.v2` -- **v2 (legacy) transport** (§3.4): STX/ETX, DLE stuffing, LRC, :class:`V2Reader`.
* :mod:`.commands` -- **application layer** envelopes (§3.5): command bytes and field enums,
  T5 timeouts, :func:`encode_command` / :func:`decode_command`, :func:`parse_answer`.
* :mod:`.answers` -- typed answer data (§3.5.1–§3.5.4): 3Fh, 45h, A5h, 9Dh, A4h sub-commands.
* :mod:`.params` -- typed request parameters (§3.5.5): sale path, E8h/E9h TLV requisites, A6h,
  date and time.
* :mod:`.registers` -- diagnostic reads: 58h last shift totals, B3h last error, 91h registers
  (register 55 = the extended error); layouts beyond §3.5.3 marked [inferred] there.
* :mod:`.trace` -- :func:`describe`, a one-line, never-raising rendering of wire bytes.
* errors (§3.7) -- the one table is :mod:`devices.atol.errors`; :data:`ATOL_ERRORS` and
  :func:`error_text` are re-exported here.  FFD codes come from :mod:`harness.fiscal`.

Choices on the reference's open points
======================================

* Synchronous task-buffer answers (A1..A5, A8, B1..B4) carry **no** TId (the reference marks it
  **[not found]**; atol4j cannot map a synchronous result to a TId).  Only A6/A7 carry it.
  :func:`decode_buffer_answer` and :func:`encode_status` take ``sync_tid=True`` to switch
  A1..A5/A8 to the "TId follows the status byte" layout if a real device proves otherwise.
* 3Fh flags bit 2 **[conflict]**: named :attr:`StatusFlags.CASH_DRAWER_OPEN` (S6 and S8 agree);
  S7 reads it as "paper in presenter".
* A4h/10h number encoding **[conflict]**: :class:`NumberEncoding` parameter, default
  ``BINARY_LE`` (S7); atol4j reads the same bytes as BCD with the low byte first (``BCD_LE``).
  :data:`NUMBER_ENCODINGS` names them for the ``atol_a4_10_encoding`` setting (``binary`` /
  ``bcd``).
* 9Dh layout **[conflict]**: default per S7 (``'U' err version subversion language build(2)``),
  ``reserved_byte=True`` gives atol4j's reading with one extra byte after the error.  Fields are
  BCD as atol4j decodes them.
* 45h answers ``'U' mode flags`` with **no** error byte (S6/S7/S8 agree); :func:`parse_answer`
  reports ``error=0`` for it.
* Money is BCD with 2 implied decimals, quantities 3 (E6h quantity scale is [inferred]).
* A frame's length field is limited to :data:`MAX_PAYLOAD_LEN` (0x7EFF) so that the high length
  byte can never be 0xFE -- otherwise the "0xFE only ever starts a frame" rule would break.
* Layouts the reference leaves open, fixed for driver and emulator alike, all **[inferred]**:
  E8h/E9h requisites as FN-style TLVs (:class:`WriteRequisite`, :class:`ReadRequisite`,
  :func:`encode_tlv`, :class:`Tag`), A6h ``kind [tax mask]`` (:class:`Registration`), A4h/43h
  registration totals (:class:`RegistrationTotals`), EDh ``DD MM YY hh mm ss`` BCD, the E6h tax
  byte in libfptr numbering (:class:`TaxType`) and 3Fh flags bit 4 as "printout pending"
  (:data:`STATUS_PRINT_PENDING`).

Malformed input raises :class:`CodecError`; readers report corrupt frames as values instead of
raising.
"""

from __future__ import annotations

from harness.fiscal import FFD_CODES, FFD_NAMES

from ..errors import ATOL_ERRORS, error_text
from ._base import CodecError
from .answers import (
    STATUS_BLOCK_SIZE,
    STATUS_PRINT_PENDING,
    DeviceType,
    FirmwareVersion,
    FnStatus,
    FnValidity,
    FnWarnings,
    OfdExchangeStatus,
    OfdFlags,
    PrinterFlags,
    RegistrationTotals,
    ShiftParams,
    StateAnswer,
    StatusBlock,
    StatusFlags,
)
from .buffer import (
    ASYNC_STATUSES,
    AddFlags,
    BufferAnswer,
    BufferCmd,
    BufferCommand,
    BufferStatus,
    decode_buffer_answer,
    decode_buffer_command,
    encode_abort,
    encode_ack,
    encode_ack_add,
    encode_add,
    encode_req,
    encode_status,
)
from .commands import (
    COMMAND_TIMEOUTS,
    DEFAULT_TIMEOUT,
    NO_ERROR_BYTE_COMMANDS,
    NUMBER_ENCODINGS,
    Answer,
    AnswerForm,
    Cmd,
    CommandRequest,
    FnPhase,
    FnQuery,
    Interface,
    Mode,
    NumberEncoding,
    PaymentType,
    ReceiptType,
    ShiftState,
    answer_timeout,
    decode_command,
    encode_command,
    parse_answer,
)
from .numbers import (
    TEXT_ENCODING,
    decode_text,
    encode_text,
    from_bcd,
    from_le,
    money_from_bcd,
    money_to_bcd,
    quantity_from_bcd,
    quantity_to_bcd,
    to_bcd,
    to_le,
)
from .params import (
    POSITION_PARAMS_SIZE,
    CloseReceipt,
    EnterMode,
    OpenReceipt,
    Payment,
    PaymentResult,
    Position,
    ReadRequisite,
    Registration,
    RegistrationKind,
    Tag,
    TaxType,
    WriteRequisite,
    decode_date_params,
    decode_datetime_params,
    decode_time_params,
    decode_tlvs,
    encode_date_params,
    encode_datetime_params,
    encode_time_params,
    encode_tlv,
)
from .registers import (
    PAYMENTS_WIDTH,
    RECEIPT_COUNT_WIDTH,
    REGISTER_PARAMS,
    WRONG_REGISTER,
    ExtendedError,
    LastError,
    LastShiftTotals,
    ReadRegister,
    ReceiptStateRegister,
    Register,
    decode_datetime_register,
    encode_datetime_register,
    encode_read_register,
)
from .trace import describe
from .v2 import (
    ACK,
    DLE,
    ENQ,
    EOT,
    ETX,
    NAK,
    V2_STX,
    V2Control,
    V2Corrupt,
    V2Frame,
    V2Reader,
    encode_v2_frame,
    lrc,
)
from .v3 import (
    ASYNC_ID,
    MAX_HOST_ID,
    MAX_PAYLOAD_LEN,
    V3_ESC,
    V3_STX,
    CorruptReason,
    V3Corrupt,
    V3Frame,
    V3Reader,
    crc8,
    encode_frame,
    escape_v3,
)

__all__ = [
    "ACK",
    "ASYNC_ID",
    "ASYNC_STATUSES",
    # errors table and trace
    "ATOL_ERRORS",
    "COMMAND_TIMEOUTS",
    "DEFAULT_TIMEOUT",
    "DLE",
    "ENQ",
    "EOT",
    "ETX",
    "FFD_CODES",
    "FFD_NAMES",
    "MAX_HOST_ID",
    "MAX_PAYLOAD_LEN",
    "NAK",
    "NO_ERROR_BYTE_COMMANDS",
    "NUMBER_ENCODINGS",
    "PAYMENTS_WIDTH",
    "POSITION_PARAMS_SIZE",
    "RECEIPT_COUNT_WIDTH",
    "REGISTER_PARAMS",
    "STATUS_BLOCK_SIZE",
    "STATUS_PRINT_PENDING",
    "TEXT_ENCODING",
    # v2 transport
    "V2_STX",
    "V3_ESC",
    # v3 transport
    "V3_STX",
    "WRONG_REGISTER",
    "AddFlags",
    "Answer",
    "AnswerForm",
    "BufferAnswer",
    # task buffer
    "BufferCmd",
    "BufferCommand",
    "BufferStatus",
    "CloseReceipt",
    # application layer
    "Cmd",
    # errors
    "CodecError",
    "CommandRequest",
    "CorruptReason",
    "DeviceType",
    "EnterMode",
    "ExtendedError",
    "FirmwareVersion",
    "FnPhase",
    "FnQuery",
    "FnStatus",
    "FnValidity",
    "FnWarnings",
    "Interface",
    "LastError",
    "LastShiftTotals",
    "Mode",
    "NumberEncoding",
    "OfdExchangeStatus",
    "OfdFlags",
    "OpenReceipt",
    "Payment",
    "PaymentResult",
    "PaymentType",
    "Position",
    "PrinterFlags",
    "ReadRegister",
    "ReadRequisite",
    "ReceiptStateRegister",
    "ReceiptType",
    "Register",
    "Registration",
    "RegistrationKind",
    "RegistrationTotals",
    "ShiftParams",
    "ShiftState",
    "StateAnswer",
    "StatusBlock",
    "StatusFlags",
    "Tag",
    "TaxType",
    "V2Control",
    "V2Corrupt",
    "V2Frame",
    "V2Reader",
    "V3Corrupt",
    "V3Frame",
    "V3Reader",
    "WriteRequisite",
    "answer_timeout",
    "crc8",
    "decode_buffer_answer",
    "decode_buffer_command",
    "decode_command",
    "decode_date_params",
    "decode_datetime_params",
    "decode_datetime_register",
    "decode_text",
    "decode_time_params",
    "decode_tlvs",
    "describe",
    "encode_abort",
    "encode_ack",
    "encode_ack_add",
    "encode_add",
    "encode_command",
    "encode_date_params",
    "encode_datetime_params",
    "encode_datetime_register",
    "encode_frame",
    "encode_read_register",
    "encode_req",
    "encode_status",
    "encode_text",
    "encode_time_params",
    "encode_tlv",
    "encode_v2_frame",
    "error_text",
    "escape_v3",
    "from_bcd",
    "from_le",
    "lrc",
    "money_from_bcd",
    "money_to_bcd",
    "parse_answer",
    "quantity_from_bcd",
    "quantity_to_bcd",
    # numbers and text
    "to_bcd",
    "to_le",
]
