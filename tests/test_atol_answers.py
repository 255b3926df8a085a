"""The ATOL application layer of the pure codec (devices/atol/protocol): commands and answer forms,
the 3Fh status block (hand-built and round-tripped), the other answers and parameter layouts,
the error table of the reference, and ``describe()`` (exact for known frames, never raising).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.atol import protocol as p
from devices.atol.protocol import (
    ASYNC_ID,
    ATOL_ERRORS,
    Answer,
    AnswerForm,
    BufferStatus,
    Cmd,
    CodecError,
    DeviceType,
    FirmwareVersion,
    FnStatus,
    FnValidity,
    FnWarnings,
    Mode,
    NumberEncoding,
    OfdExchangeStatus,
    OfdFlags,
    Position,
    PrinterFlags,
    ReceiptType,
    ShiftParams,
    StateAnswer,
    StatusBlock,
    StatusFlags,
)

from .atol_common import h, packet_ids

# ------------------------------------------------------------------------------------------------
# application layer
# ------------------------------------------------------------------------------------------------


def test_encode_command_and_decode() -> None:
    assert p.encode_command(Cmd.STATUS) == h("00 00 3F")
    assert p.encode_command(Cmd.ENTER_MODE, h("01 00 00 00 30"), password=1234) == h("12 34 56 01 00 00 00 30")
    req = p.decode_command(h("12 34 56 01 00 00 00 30"))
    assert (req.password, req.code, req.params) == (1234, Cmd.ENTER_MODE, h("01 00 00 00 30"))
    assert req.encode() == h("12 34 56 01 00 00 00 30")
    assert p.EnterMode(Mode.REGISTRATION, 30).encode() == h("01 00 00 00 30")
    assert p.EnterMode.decode(h("03 00 00 00 30")) == p.EnterMode(Mode.Z_REPORT, 30)


def test_command_codes_and_enums() -> None:
    expected = {
        "STATUS": 0x3F,
        "STATE": 0x45,
        "DEVICE_TYPE": 0xA5,
        "FIRMWARE": 0x9D,
        "FN": 0xA4,
        "ENTER_MODE": 0x56,
        "EXIT_MODE": 0x48,
        "OPEN_SHIFT": 0x9A,
        "OPEN_RECEIPT": 0x92,
        "REGISTER_POSITION": 0xE6,
        "PAYMENT": 0x99,
        "CLOSE_RECEIPT": 0x4A,
        "CANCEL_RECEIPT": 0x59,
        "Z_REPORT": 0x5A,
        "X_REPORT": 0x67,
        "SET_DATE": 0x64,
        "SET_TIME": 0x4B,
        "SET_DATETIME": 0xED,
        "REGISTRATION": 0xA6,
        "WRITE_REQUISITE": 0xE8,
        "READ_REQUISITE": 0xE9,
        "REPRINT_LAST": 0x95,
    }
    assert {name: Cmd[name].value for name in expected} == expected
    assert [m.value for m in Mode] == list(range(7))
    assert (ReceiptType.SALE, ReceiptType.SALE_RETURN, ReceiptType.EXPENSE, ReceiptType.EXPENSE_RETURN) == (1, 2, 4, 5)
    assert p.answer_timeout(Cmd.Z_REPORT) == 40.0
    assert p.answer_timeout(Cmd.STATUS) == p.DEFAULT_TIMEOUT


def test_parse_answer_forms() -> None:
    assert p.parse_answer(h("55 67 00"), Cmd.CLOSE_RECEIPT) == Answer(AnswerForm.U, 103, h("00"))
    assert p.parse_answer(h("55 67 00")).error_text == "no paper"
    assert p.parse_answer(h("55 00 00")).form == "U"
    assert p.parse_answer(h("55 01 81"), Cmd.STATE) == Answer(AnswerForm.U, 0, h("01 81"))
    assert p.parse_answer(h("00 01 00 3D"), Cmd.DEVICE_TYPE) == Answer(AnswerForm.A5, 0, h("01 00 3D"))
    assert p.parse_answer(h("7A"), Cmd.DEVICE_TYPE).error == 122
    assert p.parse_answer(h("44") + bytes(29), Cmd.STATUS).form == AnswerForm.D
    assert p.parse_answer(h("55 8C 00"), Cmd.STATUS) == Answer(AnswerForm.U, 140, h("00"))
    assert p.parse_answer(h("4D 00 00 00 00 01 00 00"), Cmd.CASH_IN_DRAWER).form == AnswerForm.M
    for bad, cmd in ((b"", None), (h("55"), None), (h("44 00"), Cmd.PAYMENT), (h("99"), Cmd.STATUS)):
        with pytest.raises(CodecError):
            p.parse_answer(bad, cmd)


@pytest.mark.parametrize(
    ("answer", "command"),
    [
        (Answer(AnswerForm.U, 156, h("00")), Cmd.OPEN_SHIFT),
        (Answer(AnswerForm.U, 0, h("01 80")), Cmd.STATE),
        (Answer(AnswerForm.A5, 0, h("01 00 3D 00 00")), Cmd.DEVICE_TYPE),
        (Answer(AnswerForm.D, 0, bytes(29)), Cmd.STATUS),
    ],
)
def test_answer_encode_round_trip(answer: Answer, command: int) -> None:
    assert p.parse_answer(answer.encode(command), command) == answer


# --- 3Fh status block ---------------------------------------------------------------------------

HAND_BUILT_3F = h(
    "44"  # 'D'
    "05"  # cashier 5 (BCD)
    "01"  # number in hall 1
    "24 03 15"  # 2024-03-15 (BCD)
    "13 45 59"  # 13:45:59 (BCD)
    "4B"  # flags: fiscal | shift open | paper | FN activated
    "00 12 34 56"  # serial 00123456 (BCD)
    "3D"  # model 61 (30Ф)
    "00 00"  # reserved
    "21"  # sub-mode 2, mode 1
    "00 42"  # receipt number 42 (BCD)
    "01 07"  # shift number 107 (BCD)
    "01"  # receipt state: sale
    "00 00 01 23 45"  # receipt sum 123.45
    "02"  # decimal point
    "04"  # interface USB
)


def test_status_block_hand_built_decode() -> None:
    assert len(HAND_BUILT_3F) == p.STATUS_BLOCK_SIZE == 30
    block = StatusBlock.decode(HAND_BUILT_3F)
    assert block == StatusBlock(
        cashier=5,
        number_in_hall=1,
        date=dt.date(2024, 3, 15),
        time=dt.time(13, 45, 59),
        flags=StatusFlags.FISCAL | StatusFlags.SHIFT_OPEN | StatusFlags.PAPER_PRESENT | StatusFlags.FN_ACTIVATED,
        serial=123456,
        model=61,
        version=h("00 00"),
        mode=Mode.REGISTRATION,
        submode=2,
        receipt_number=42,
        shift_number=107,
        receipt_state=ReceiptType.SALE,
        receipt_sum=Decimal("123.45"),
        decimal_point=2,
        interface=p.Interface.USB,
    )
    assert block.serial_text == "00123456"
    assert block.receipt_open
    assert block.datetime == dt.datetime(2024, 3, 15, 13, 45, 59)
    assert StatusFlags.COVER_OPEN not in block.flags
    assert block.encode() == HAND_BUILT_3F


def test_status_block_rejects_bad_input() -> None:
    with pytest.raises(CodecError):
        StatusBlock.decode(HAND_BUILT_3F[:-1])
    with pytest.raises(CodecError):
        StatusBlock.decode(b"U" + HAND_BUILT_3F[1:])
    with pytest.raises(CodecError):
        StatusBlock.decode(HAND_BUILT_3F[:3] + h("24 13 15") + HAND_BUILT_3F[6:])  # month 13


status_blocks = st.builds(
    StatusBlock,
    date=st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)),
    time=st.times().map(lambda t: t.replace(microsecond=0)),
    cashier=st.integers(0, 99),
    number_in_hall=st.integers(0, 255),
    flags=st.integers(0, 255).map(StatusFlags),
    serial=st.integers(0, 99_999_999),
    model=st.integers(0, 255),
    version=st.binary(min_size=2, max_size=2),
    mode=st.integers(0, 15),
    submode=st.integers(0, 15),
    receipt_number=st.integers(0, 9999),
    shift_number=st.integers(0, 9999),
    receipt_state=st.integers(0, 255),
    receipt_sum=st.decimals(0, Decimal("99999999.99"), places=2),
    decimal_point=st.just(2),
    interface=st.integers(0, 255),
    extra=st.binary(max_size=4),
)


@given(status_blocks)
def test_status_block_round_trip(block: StatusBlock) -> None:
    wire = block.encode()
    assert len(wire) == 30 + len(block.extra)
    assert StatusBlock.decode(wire) == block


# --- other answers ------------------------------------------------------------------------------


@given(st.integers(0, 15), st.integers(0, 15), st.integers(0, 255).map(PrinterFlags))
def test_state_answer_round_trip(mode: int, submode: int, flags: PrinterFlags) -> None:
    state = StateAnswer(mode, submode, flags)
    assert StateAnswer.decode(state.encode()) == state


def test_state_answer_hand_built() -> None:
    state = StateAnswer.decode(p.parse_answer(h("55 31 81"), Cmd.STATE).data)
    assert (state.mode, state.submode) == (Mode.REGISTRATION, 3)
    assert state.flags == PrinterFlags.NO_PAPER | PrinterFlags.PAPER_NEAR_END
    assert int(PrinterFlags.PAPER_NEAR_END) == 0x80


def test_device_type_round_trip() -> None:
    info = DeviceType(
        protocol_version=3, device_type=1, model=72, mode=1, submode=0, firmware=h("03 00 00 57 99"), name="АТОЛ 90Ф"
    )
    data = info.encode()
    assert data[:10] == h("03 01 48 01 00 03 00 00 57 99")
    assert DeviceType.decode(data) == info
    assert p.parse_answer(b"\x00" + data, Cmd.DEVICE_TYPE).data == data


def test_firmware_version_both_layouts() -> None:
    fw = FirmwareVersion(3, 0, 0, 5799)
    assert fw.encode() == h("03 00 00 57 99")
    assert FirmwareVersion.decode(h("03 00 00 57 99")) == fw
    assert FirmwareVersion.decode(h("00 03 00 00 57 99"), reserved_byte=True) == fw
    assert FirmwareVersion.decode(fw.encode(reserved_byte=True), reserved_byte=True) == fw
    assert fw.text == "3.0.0.5799"


@pytest.mark.parametrize(
    ("encoding", "wire"),
    [
        (NumberEncoding.BINARY_LE, "01 0C 00 22 01"),
        (NumberEncoding.BCD_LE, "01 12 00 90 02"),
        (NumberEncoding.BCD_BE, "01 00 12 02 90"),
    ],
)
def test_shift_params_encodings(encoding: NumberEncoding, wire: str) -> None:
    params = ShiftParams(p.ShiftState.OPEN, 12, 290)
    assert params.encode(encoding) == h(wire)
    assert ShiftParams.decode(h(wire), encoding) == params


def test_shift_params_default_is_binary_le() -> None:
    assert ShiftParams.decode(h("00 0C 00 22 01")) == ShiftParams(0, 12, 290)


def test_ofd_exchange_status_round_trip_and_layout() -> None:
    status = OfdExchangeStatus(
        OfdFlags.TRANSPORT_CONNECTED | OfdFlags.MESSAGE_WAITING, 0, 3, 0x0102, dt.datetime(2024, 1, 31, 23, 59)
    )
    data = status.encode()
    assert data == h("03 00 03 00 02 01 00 00 18 01 1F 17 3B")
    assert OfdExchangeStatus.decode(data) == status
    assert OfdExchangeStatus.decode(bytes(13)) == OfdExchangeStatus()


def test_fn_status_round_trip_and_layout() -> None:
    status = FnStatus(
        p.FnPhase.FISCAL,
        0,
        False,
        True,
        FnWarnings.OFD_TIMEOUT,
        dt.datetime(2024, 5, 1, 10, 30),
        "9999078900012345",
        77,
    )
    data = status.encode()
    assert len(data) == 30
    assert data[:10] == h("03 00 00 01 08 18 05 01 0A 1E")
    assert data[10:26] == b"9999078900012345"
    assert data[26:] == h("4D 00 00 00")
    assert FnStatus.decode(data) == status


def test_fn_validity_round_trip_and_layout() -> None:
    validity = FnValidity(dt.date(2026, 7, 31), 11, 1)
    assert validity.encode() == h("1A 07 1F 0B 01")
    assert FnValidity.decode(h("1A 07 1F 0B 01")) == validity


def test_position_layout_and_round_trip() -> None:
    pos = Position("Товар", Decimal("100.00"), Decimal("2.5"), flags=0, tax=1, section=0)
    params = pos.encode()
    assert len(params) == 103
    assert params[1:6] == "Товар".encode("cp866") and params[6:65] == bytes(59)
    assert params[65:71] == h("00 00 00 01 00 00")
    assert params[71:76] == h("00 00 00 25 00")
    assert params[76:78] == h("01 00") and params[84] == 1
    assert Position.decode(params) == pos
    assert pos.amount == Decimal("250.00")
    task = p.encode_command(Cmd.REGISTER_POSITION, params)
    assert p.decode_command(task).params == params


def test_payment_and_receipt_params() -> None:
    pay = p.Payment(p.PaymentType.CASH, Decimal("300"))
    assert pay.encode() == h("00 01 00 00 03 00 00")
    assert p.Payment.decode(pay.encode()) == pay
    result = p.PaymentResult(Decimal(0), Decimal("50.00"))
    assert p.PaymentResult.decode(result.encode()) == result
    assert p.OpenReceipt(ReceiptType.SALE_RETURN).encode() == h("00 02")
    assert p.OpenReceipt.decode(h("01 04")) == p.OpenReceipt(ReceiptType.EXPENSE, flags=1)
    assert p.CloseReceipt.decode(p.CloseReceipt().encode()) == p.CloseReceipt()


# ------------------------------------------------------------------------------------------------
# error table and describe()
# ------------------------------------------------------------------------------------------------

REFERENCE_ERROR_CODES = [
    0,
    8,
    10,
    19,
    20,
    22,
    30,
    31,
    32,
    102,
    103,
    104,
    105,
    106,
    122,
    128,
    129,
    136,
    140,
    143,
    154,
    155,
    156,
    159,
    164,
    168,
    191,
    208,
    209,
    210,
    211,
    212,
    213,
    214,
    215,
    216,
    217,
    218,
    219,
    231,
    232,
    233,
    234,
    235,
    236,
    237,
    238,
    239,
    240,
    241,
    243,
]


def test_error_table_is_complete() -> None:
    assert sorted(ATOL_ERRORS) == REFERENCE_ERROR_CODES
    assert all(text and text.isascii() for text in ATOL_ERRORS.values())
    assert ATOL_ERRORS[239] == "OFD wait resource exhausted (30 days)"
    assert p.error_text(1) == "unknown error 1"


@pytest.mark.parametrize(
    ("wire", "words"),
    [
        ("FE 00 00 01 9D", ["id=01", "resend"]),
        ("FE 06 00 02 C1 01 01 00 00 3F ED", ["ADD", "tid=0x01", "NEED_RESULT", "STATUS"]),
        ("FE 05 00 F0 A6 57 55 00 00 FD EE", ["ASYNC_RESULT", "tid=0x57", "err=0"]),
        ("FE 01 00 01 C4 00", ["CORRUPT", "bad CRC"]),
        ("02 00 00 3F 03 3C", ["v2", "STATUS"]),
        ("05", ["ENQ"]),
    ],
)
def test_describe_known_frames(wire: str, words: list[str]) -> None:
    line = p.describe(h(wire))
    assert "\n" not in line
    for word in words:
        assert word in line


def test_describe_answer_frames() -> None:
    frame = p.encode_frame(ASYNC_ID, p.encode_status(BufferStatus.ASYNC_RESULT, HAND_BUILT_3F, tid=3))
    assert "serial=00123456" in p.describe(frame)
    error = p.encode_frame(ASYNC_ID, p.encode_status(BufferStatus.ASYNC_ERROR, h("55 67 00"), tid=4))
    assert "no paper" in p.describe(error)


@settings(max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=80),
        st.binary(max_size=80).map(lambda b: b"\xfe" + b),
        st.binary(max_size=80).map(lambda b: b"\x02" + b),
        st.tuples(packet_ids, st.binary(max_size=60)).map(lambda t: p.encode_frame(*t)),
    )
)
def test_describe_never_raises(data: bytes) -> None:
    line = p.describe(data)
    assert isinstance(line, str) and line
