"""The register ↔ OFD message codec (harness/ofd/protocol.py): header bytes, CRC, TLV containers,
the stream reader's resynchronisation."""

from __future__ import annotations

import struct
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.ofd.protocol import (
    FLAG_RECEIPT,
    HEADER_SIZE,
    SIGNATURE,
    Corrupt,
    DocumentMessage,
    MessageReader,
    ProtocolError,
    ReceiptMessage,
    crc16_ccitt,
    decode_message,
    decode_tlv,
    encode_document,
    encode_header,
    encode_receipt,
    encode_tlv,
)

SERIAL = "9999078900123456"
AT = datetime(2021, 3, 1, 10, 0, 0)

serials = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=16, max_size=16)
numbers = st.integers(min_value=0, max_value=0xFFFFFFFF)
signs = st.text(alphabet="0123456789", min_size=1, max_size=10)
kinds = st.integers(min_value=0, max_value=255)
moments = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2106, 2, 7)).map(
    lambda d: d.replace(microsecond=0)
)
documents = st.builds(DocumentMessage, serials, numbers, signs, kinds, moments)
receipts = st.builds(ReceiptMessage, serials, numbers, st.integers(min_value=0, max_value=255))


def encode(message: DocumentMessage | ReceiptMessage) -> bytes:
    if isinstance(message, DocumentMessage):
        return encode_document(message.fn_serial, message.number, message.fiscal_sign, message.kind, message.at)
    return encode_receipt(message.fn_serial, message.number, message.result)


def test_crc_is_ccitt_false() -> None:
    assert crc16_ccitt(b"123456789") == 0x29B1  # poly 0x1021, init 0xFFFF, no reflection, no xor-out
    assert crc16_ccitt(b"") == 0xFFFF


def test_receipt_bytes_exactly() -> None:
    raw = encode_receipt(SERIAL, 7)
    container = bytes.fromhex("1004 0400 07000000027F 0100 00")
    header = bytes.fromhex("2A08410A81A20100") + SERIAL.encode() + bytes.fromhex("0D000100")
    assert raw == header + struct.pack("<H", crc16_ccitt(header)) + container
    assert len(header) + 2 == HEADER_SIZE == 30


def test_document_header_and_container_layout() -> None:
    raw = encode_document(SERIAL, 0x01020304, "1234567890", 3, AT)
    assert raw[:4] == SIGNATURE == b"\x2a\x08\x41\x0a"
    assert raw[4:6] == b"\x81\xa2" and raw[6:8] == b"\x01\x00"
    assert raw[8:24] == SERIAL.encode()
    (length, flags, crc) = struct.unpack("<HHH", raw[24:30])
    assert length == len(raw) - 30 and flags == 0 and crc == crc16_ccitt(raw[:28])
    items = decode_tlv(raw[30:])
    assert items == {
        1040: b"\x04\x03\x02\x01",
        1077: b"1234567890",
        0x7F01: b"\x03",
        1012: struct.pack("<I", int((AT - datetime(1970, 1, 1)).total_seconds())),
    }
    assert list(items) == [1040, 1077, 0x7F01, 1012]  # encoding order


def test_receipt_carries_the_receipt_flag() -> None:
    assert struct.unpack_from("<H", encode_receipt(SERIAL, 1), 26)[0] == FLAG_RECEIPT


@given(documents)
def test_document_round_trip(message: DocumentMessage) -> None:
    assert decode_message(encode(message)) == message


@given(receipts)
def test_receipt_round_trip(message: ReceiptMessage) -> None:
    decoded = decode_message(encode(message))
    assert decoded == message
    assert isinstance(decoded, ReceiptMessage) and decoded.accepted == (message.result == 0)


@given(st.lists(st.one_of(documents, receipts), max_size=6), st.lists(st.integers(1, 40), min_size=1))
def test_stream_in_any_chunks(messages: list[DocumentMessage | ReceiptMessage], cuts: list[int]) -> None:
    stream = b"".join(encode(m) for m in messages)
    reader = MessageReader()
    out = []
    pos, i = 0, 0
    while pos < len(stream):
        size = cuts[i % len(cuts)]
        out += reader.feed(stream[pos : pos + size])
        pos, i = pos + size, i + 1
    assert out == messages
    assert not reader.pending() and reader.skipped == 0


@given(st.binary(max_size=200), documents)
def test_resynchronises_after_garbage(garbage: bytes, message: DocumentMessage) -> None:
    garbage = garbage.replace(SIGNATURE[:1], b"")  # no signature (or its start) inside the garbage
    reader = MessageReader()
    assert reader.feed(garbage) == []
    assert reader.feed(encode(message) + garbage) == [message]
    assert reader.skipped == 2 * len(garbage)


def test_signature_split_across_feeds() -> None:
    raw = encode_receipt(SERIAL, 9)
    reader = MessageReader()
    assert reader.feed(b"\x00\x01" + raw[:3]) == []
    assert reader.pending()
    assert reader.feed(raw[3:]) == [ReceiptMessage(SERIAL, 9)]


def test_bad_crc_is_a_corrupt_item_and_the_next_message_still_decodes() -> None:
    bad = bytearray(encode_document(SERIAL, 5, "1", 3, AT))
    bad[28] ^= 0xFF
    good = encode_receipt(SERIAL, 5)
    items = MessageReader().feed(bytes(bad) + good)
    assert isinstance(items[0], Corrupt) and items[0].reason == "header CRC mismatch"
    assert items[-1] == ReceiptMessage(SERIAL, 5)
    assert all(isinstance(i, Corrupt) for i in items[:-1])


def test_a_changed_serial_breaks_the_crc() -> None:
    raw = bytearray(encode_receipt(SERIAL, 1))
    raw[10] = ord("X")
    item = decode_message(bytes(raw))
    assert isinstance(item, Corrupt) and "CRC" in item.reason


def test_good_header_bad_container_is_skipped_whole() -> None:
    container = encode_tlv([(1040, b"\x01\x00")])  # FD number of 2 bytes, no fiscal sign
    bad = encode_header(SERIAL, len(container)) + container
    items = MessageReader().feed(bad + encode_receipt(SERIAL, 2))
    assert len(items) == 2
    assert isinstance(items[0], Corrupt) and items[0].reason.startswith("bad container")
    assert items[1] == ReceiptMessage(SERIAL, 2)


def test_unknown_version_is_corrupt() -> None:
    head = SIGNATURE + b"\x81\xa3" + b"\x01\x00" + SERIAL.encode() + b"\x00\x00\x00\x00"
    item = decode_message(head + struct.pack("<H", crc16_ccitt(head)))
    assert isinstance(item, Corrupt) and "version" in item.reason


def test_truncated_tlv_is_rejected() -> None:
    with pytest.raises(ProtocolError):
        decode_tlv(b"\x10\x04\x04\x00\x01")
    with pytest.raises(ProtocolError):
        decode_tlv(b"\x10\x04")
    with pytest.raises(ProtocolError):
        decode_tlv(encode_tlv([(1, b""), (1, b"")]))


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode_receipt("123", 1),  # serial not 16 characters
        lambda: encode_receipt("ФН" * 8, 1),  # not ASCII
        lambda: encode_receipt(SERIAL, 1 << 32),
        lambda: encode_receipt(SERIAL, 1, 256),
        lambda: encode_document(SERIAL, 1, "1", 300, AT),
        lambda: encode_document(SERIAL, 1, "знак", 3, AT),
        lambda: encode_document(SERIAL, 1, "1", 3, datetime(1960, 1, 1)),
    ],
)
def test_encoding_refuses_what_does_not_fit(call) -> None:
    with pytest.raises(ProtocolError):
        call()
