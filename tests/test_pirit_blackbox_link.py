"""Black-box test of ``kkt-hil emulate kf`` on the wire, link level, with the client of
tests/pirit_blackbox_client.py: the client itself against the §2.6 worked frames, ENQ/ACK,
status and start of work, identity, and protocol errors (bad CRC, wrong password, unknown
command, garbage, split and joined frames, a second connection, power off).  Time moves only
through the control channel; worked frames are asserted byte for byte where they apply.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from .pirit_blackbox_client import (
    ACK,
    ENQ,
    FS,
    NOT_REGISTERED,
    NOT_STARTED,
    SHIFT_OPEN,
    START,
    Stand,
    crc,
    date6,
    open_shift,
    parse_answer,
    ready,
    request,
    time6,
)

# ====================================================================== the client itself vs §2.6


def test_client_builds_the_worked_request_frames_of_the_reference() -> None:
    assert request(0x00, packet_id=0x21) == bytes.fromhex("02 50 49 52 49 21 30 30 03 32 30")
    assert request(0x10, ["231124", "101500"], packet_id=0x22) == bytes.fromhex(
        "02 50 49 52 49 22 31 30 32 33 31 31 32 34 1C 31 30 31 35 30 30 1C 03 32 30"
    )
    assert request(0x78, [7], packet_id=0x23) == bytes.fromhex("02 50 49 52 49 23 37 38 37 1C 03 30 36")
    assert request(0x02, [1], packet_id=0x24).endswith(bytes.fromhex("1C 03 30 41"))
    assert request(0x02, [1], packet_id=0x24) == b"\x02PIRI$021\x1c\x030A"
    assert request(0x23, ["Кассир"], packet_id=0x25) == bytes.fromhex(
        "02 50 49 52 49 25 32 33 8A A0 E1 E1 A8 E0 1C 03 35 42"
    )


def test_client_parses_the_worked_answer_frames_of_the_reference() -> None:
    status = parse_answer(bytes.fromhex("02 21 30 30 30 30 30 1C 34 1C 30 1C 03 30 41"))
    assert (status.packet_id, status.command, status.error, status.fields) == (0x21, 0x00, 0, ["0", "4", "0"])
    no_paper = parse_answer(bytes.fromhex("02 27 33 30 30 38 03 32 46"))
    assert (no_paper.packet_id, no_paper.command, no_paper.error, no_paper.fields) == (0x27, 0x30, 0x08, [])
    ofd = parse_answer(
        b"\x02#78007\x1c2\x1c3\x1c125\x1c221124\x1c153000\x1c\x03"
        + crc(b"#78007\x1c2\x1c3\x1c125\x1c221124\x1c153000\x1c\x03")
    )
    assert ofd.fields == ["7", "2", "3", "125", "221124", "153000"]
    assert crc(b"#78007\x1c2\x1c3\x1c125\x1c221124\x1c153000\x1c\x03") == b"2E"  # as printed in §2.6
    with pytest.raises(AssertionError):
        parse_answer(bytes.fromhex("02 27 33 30 30 38 03 32 45"))  # the parser does check the CRC


# ====================================================================== link level


def test_enq_gets_ack(stand: Stand) -> None:
    stand.link.send(bytes([ENQ]))
    assert stand.link.read_bytes(1) == bytes([ACK])
    assert stand.link.silent(0.2)  # exactly one byte


def test_status_before_start_of_work(stand: Stand) -> None:
    link = stand.link
    link.send(bytes.fromhex("02 50 49 52 49 21 30 30 03 32 30"))  # §2.6 worked frame
    answer = parse_answer(link.read_frame())
    assert (answer.packet_id, answer.command, answer.error) == (0x21, 0x00, 0)
    fatal, current, document = (int(f) for f in answer.fields)
    assert answer.data.count(bytes([FS])) == 3  # Dreamkas' parser counts three terminators
    assert fatal == 0
    assert current & NOT_STARTED
    assert not current & SHIFT_OPEN and not current & NOT_REGISTERED
    assert document == 0


def test_commands_before_start_of_work_are_refused_with_extended_code_1(stand: Stand) -> None:
    link = stand.link
    answer = link.call(0x23, ["Кассир"])
    assert answer.error == 0x01
    extended = link.ok(0x06, [1])
    assert extended[0] == "1"  # §2.5.6: 1 = "start of work" not called
    assert link.printer() == 0  # 0x04 still allowed


def test_start_of_work_with_the_device_time(stand: Stand) -> None:
    link = stand.link
    now = stand.now()
    assert now == START
    answer = link.call(0x10, [date6(now), time6(now)], packet_id=0x22)
    assert answer.raw == bytes.fromhex("02 22 31 30 30 30 03") + crc(bytes.fromhex("22 31 30 30 30 03"))
    _, current, _ = link.status()
    assert not current & NOT_STARTED
    assert link.ok(0x13) == [date6(START), time6(START)]  # 0x13 reads the clock back


def test_start_of_work_before_the_last_document_is_refused_with_0c(stand: Stand) -> None:
    link = stand.link
    answer = link.start_work(datetime(2019, 1, 1, 12, 0, 0))
    assert answer.error == 0x0C
    _, current, _ = link.status()
    assert current & NOT_STARTED  # initialisation not done (§2.5.7)


def test_start_of_work_more_than_8_minutes_off_answers_0b_but_initialises(stand: Stand) -> None:
    link = stand.link
    answer = link.start_work(START + timedelta(minutes=30))
    assert answer.error == 0x0B
    _, current, _ = link.status()
    assert not current & NOT_STARTED
    assert link.ok(0x13) == [date6(START), time6(START)]  # the device keeps its own clock


def test_identity(stand: Stand) -> None:
    link = ready(stand)
    (serial,) = link.info(1)
    assert serial.startswith("0497") and serial.isdigit() and len(serial) == 10
    assert link.info(21) == ["9"]  # punix "Пирит 2СФ"
    (version,) = link.info(70)
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    assert stand.control({"op": "state"})["state"]["firmware"] == version
    # the same request with the reference's id '$': byte-exact frame, id echoed
    answer = link.exchange_raw(b"\x02PIRI$021\x1c\x030A")
    assert answer.packet_id == ord("$") and answer.fields == ["1", serial]


def test_firmware_change_through_control_shows_in_0x02_70(stand: Stand) -> None:
    link = ready(stand)
    stand.control({"op": "firmware", "version": "2.25.0"})
    assert link.info(70) == ["2.25.0"]


# ====================================================================== protocol errors


def test_bad_crc_is_answered_07_with_the_same_id(stand: Stand) -> None:
    link = stand.link
    frame = bytearray(request(0x00, packet_id=0x2A))
    frame[-1] = ord("1") if frame[-1] != ord("1") else ord("2")
    link.send(bytes(frame))
    answer = parse_answer(link.read_frame())
    assert (answer.packet_id, answer.command, answer.error) == (0x2A, 0x00, 0x07)
    assert answer.raw == b"\x02*0007\x03" + crc(b"*0007\x03")
    assert link.status()[0] == 0  # the link still works


def test_wrong_password_is_answered_06(stand: Stand) -> None:
    answer = stand.link.call(0x00, password=b"XXXX")
    assert answer.error == 0x06 and answer.fields == []


def test_unknown_command_is_answered_02(stand: Stand) -> None:
    answer = stand.link.call(0xFE)
    assert answer.error == 0x02


def test_lower_case_crc_is_accepted(stand: Stand) -> None:
    link = ready(stand)
    frame = request(0x02, [1], packet_id=0x24)
    assert frame[-2:] == b"0A"
    answer = link.exchange_raw(frame[:-2] + b"0a")
    assert answer.error == 0 and answer.fields[0] == "1" and answer.fields[1].startswith("0497")


def test_after_protocol_errors_the_device_still_answers(stand: Stand) -> None:
    link = stand.link
    bad = bytearray(request(0x00, packet_id=0x30))
    bad[-2:] = b"FF" if bad[-2:] != b"FF" else b"00"
    link.send(bytes(bad))
    assert parse_answer(link.read_frame()).error == 0x07
    assert link.call(0x00, password=b"XXXX").error == 0x06
    assert link.call(0xFE).error == 0x02
    link.send(b"\x0a")  # LF: feed a line, no answer (§2.2)
    link.send(b"garbage\xff\xfe")  # not framed: dropped
    link.send(bytes([ENQ]))
    assert link.read_bytes(1) == bytes([ACK])
    fatal, current, _ = link.status()
    assert fatal == 0 and current & NOT_STARTED
    assert ready(stand).info(21) == ["9"]


def test_a_frame_sent_byte_by_byte_and_two_frames_in_one_write(stand: Stand) -> None:
    link = stand.link
    for byte in request(0x00, packet_id=0x31):
        link.send(bytes([byte]))
    assert parse_answer(link.read_frame()).packet_id == 0x31
    link.send(request(0x00, packet_id=0x32) + request(0x04, packet_id=0x33))
    first, second = parse_answer(link.read_frame()), parse_answer(link.read_frame())
    assert (first.packet_id, first.command) == (0x32, 0x00)
    assert (second.packet_id, second.command) == (0x33, 0x04)


def test_a_second_connection_sees_the_same_device(stand: Stand) -> None:
    link = open_shift(stand)
    other = stand.new_link()
    try:
        _, current, _ = other.status()
        assert current & SHIFT_OPEN and not current & NOT_STARTED
    finally:
        other.close()
    assert link.status()[1] & SHIFT_OPEN


def test_power_off_is_silent_and_power_on_needs_start_of_work(stand: Stand) -> None:
    link = open_shift(stand)
    stand.control({"op": "power", "action": "off"})
    link.send(bytes([ENQ]))
    assert link.silent(0.5)
    link.send(request(0x00, packet_id=0x21))
    assert link.silent(0.5)
    stand.control({"op": "power", "action": "on"})
    _, current, _ = link.status()
    assert current & NOT_STARTED and current & SHIFT_OPEN  # the shift survives a power cycle
    ready(stand)
    assert not link.status()[1] & NOT_STARTED
