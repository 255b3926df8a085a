"""Pirit service commands over the wire: the settings table (0x11/0x12), two-stage uploads (0x15,
0x17, 0x18 + 0x19, 0x55, 0x67), the drawer, beeper, serial speed, service data, the OFD server
commands, the Кабинет commands, services activation and marking (0x79) — frames in, exact
answers out; and commands an edition lacks answer 0x02."""

from __future__ import annotations

import pytest

from devices.emulator.core import FiscalCore
from devices.emulator.profiles import profile
from devices.pirit import protocol as p
from devices.pirit.emulator import PiritFrontEnd

PNG = b"\x89PNG\r\n\x1a\n" + bytes(24)


def _front(model: str = "kf", **overrides: str) -> tuple[PiritFrontEnd, FiscalCore]:
    base = profile(model)
    core = FiscalCore(base.with_overrides(overrides) if overrides else base)
    front = PiritFrontEnd(core)
    assert _ask(front, 0x10, ["011220", "090000"]) == (0, ())
    return front, core


def _ask(front: PiritFrontEnd, command: int, fields: list[p.Field] | None = None) -> tuple[int, tuple[str, ...]]:
    out = front.feed(p.encode_request(command, fields or [], packet_id=0x30))
    answer = p.decode_response(out)
    assert (answer.packet_id, answer.command) == (0x30, command)
    return answer.error, answer.fields


def _extended(front: PiritFrontEnd) -> str:
    return _ask(front, 0x06, [1])[1][1]


# -------------------------------------------------------------------------- settings table


def test_settings_defaults_read() -> None:
    front, _ = _front()
    assert _ask(front, 0x11, [1, 0]) == (0, ("32",))  # bit 5: the QR code, always on
    assert _ask(front, 0x11, [32, 0]) == (0, ("НАЛИЧНЫМИ",))
    assert _ask(front, 0x11, [41, 4]) == (0, ("20.00",))
    assert _ask(front, 0x11, [77]) == (0, ("ofd.emulator.test",))
    assert _ask(front, 0x11, [78, 0]) == (0, ("7777",))


def test_settings_write_read_round_trip() -> None:
    front, _ = _front()
    assert _ask(front, 0x12, [10, 0, 42]) == (0, ())
    assert _ask(front, 0x11, [10, 0]) == (0, ("42",))
    assert _ask(front, 0x12, [50, 3, "Бакалея"]) == (0, ())
    assert _ask(front, 0x11, [50, 3]) == (0, ("Бакалея",))
    assert _ask(front, 0x12, [73, 0, "10.0.0.7"]) == (0, ())
    assert _ask(front, 0x11, [73, 0]) == (0, ("10.0.0.7",))
    assert _ask(front, 0x12, [1, 0, 0]) == (0, ())
    assert _ask(front, 0x11, [1, 0]) == (0, ("32",))  # the QR bit cannot be switched off


@pytest.mark.parametrize(
    "fields",
    [
        [99, 0],  # no such element
        [50, 0],  # departments are 1..16
        [50, 17],
        [10, 1],  # a scalar has index 0 only
    ],
)
def test_settings_unknown_address_is_0x03(fields: list[p.Field]) -> None:
    front, _ = _front()
    assert _ask(front, 0x11, fields) == (3, ())
    assert _ask(front, 0x12, [*fields, "1"]) == (3, ())


@pytest.mark.parametrize(
    "fields",
    [
        [10, 0, 0],  # 1..9999
        [10, 0, "abc"],  # not an integer
        [78, 0, 65535],  # 1..65534
        [20, 0, "PIR"],  # String[4]
        [73, 0, "10.0.0"],  # not four octets
        [31, 0, "x" * 45],  # String[0..44]
        [32, 0, "КЭШ"],  # read-only
        [40, 1, "НДС"],  # read-only
        [71, 0, "7712345678"],  # read-only
        [10, 0],  # no value
    ],
)
def test_settings_bad_writes_are_0x03_and_change_nothing(fields: list[p.Field]) -> None:
    front, _ = _front()
    before = _ask(front, 0x11, fields[:2])
    assert _ask(front, 0x12, fields) == (3, ())
    assert _ask(front, 0x11, fields[:2]) == before


def test_registration_data_write_succeeds_but_changes_nothing() -> None:
    front, _ = _front()
    for index in (0, 1, 2, 3):
        before = _ask(front, 0x11, [30, index])
        assert _ask(front, 0x12, [30, index, "ИП Иванов"]) == (0, ())
        assert _ask(front, 0x11, [30, index]) == before
    assert _ask(front, 0x12, [30, 4, "строка 5"]) == (0, ())
    assert _ask(front, 0x11, [30, 4]) == (0, ("строка 5",))


def test_settings_by_edition() -> None:
    start, _ = _front("start")
    assert _ask(start, 0x11, [12, 1]) == (3, ())  # not in the FM16 manual
    assert _ask(start, 0x11, [90, 0]) == (0, ("0",))
    kf105, _ = _front(ffd="1.05")
    assert _ask(kf105, 0x11, [201, 0]) == (3, ())  # FFD 1.2 editions only
    kf, _ = _front()
    assert _ask(kf, 0x11, [12, 1]) == (0, ("100",))
    assert _ask(kf, 0x11, [93, 0]) == (0, ("prod01.okp-fn.ru",))


# -------------------------------------------------------------------------- two-stage uploads


def test_picture_upload_byte_level_and_search() -> None:
    front, core = _front()
    first = p.encode_request(0x18, [20, 2, 0, "logo-1", 3], packet_id=0x31)
    assert front.feed(first) == b"\x06"  # ceil(20/8)*2 = 6 bytes to come
    assert front.feed(b"\x01\x02\x03") == b""
    assert front.feed(b"\x04\x05\x06") == p.encode_response(0x31, 0x18, 0)
    assert core.wire_memory["pirit_pictures"][3]["data"] == b"\x01\x02\x03\x04\x05\x06"
    assert _ask(front, 0x19, ["logo-1"]) == (0, ("3",))
    assert _ask(front, 0x19, ["nothing"]) == (0, ("0",))
    assert _ask(front, 0x56, [0, 3]) == (0, ())  # the loaded picture prints


def test_upload_parameter_refusal_is_a_standard_answer() -> None:
    front, _ = _front()
    assert front.feed(p.encode_request(0x18, [600, 2, 0, "x", 1], packet_id=0x31)) == p.encode_response(0x31, 0x18, 3)
    assert front.feed(p.encode_request(0x15, [0], packet_id=0x32)) == p.encode_response(0x32, 0x15, 3)


def test_logo_upload_and_delete() -> None:
    front, core = _front()
    assert front.feed(p.encode_request(0x15, [4], packet_id=0x31)) == b"\x06"
    assert front.feed(b"\x1bBMx") == p.encode_response(0x31, 0x15, 0)
    assert core.wire_memory["pirit_logo"] == b"\x1bBMx"
    assert _ask(front, 0x16) == (0, ())
    assert "pirit_logo" not in core.wire_memory
    assert front.feed(p.encode_request(0x15, [2], packet_id=0x32)) == b"\x06"
    assert front.feed(b"BM") == p.encode_response(0x32, 0x15, 3)  # no 0x1B in front


def test_design_upload() -> None:
    front, core = _front()
    assert front.feed(p.encode_request(0x17, [3], packet_id=0x31)) == b"\x06"
    assert front.feed(b"abc") == p.encode_response(0x31, 0x17, 0)
    assert core.wire_memory["pirit_design"] == b"abc"


def test_graphics_needs_an_open_document() -> None:
    front, core = _front()
    assert front.feed(p.encode_request(0x55, [16, 1, 0], packet_id=0x31)) == p.encode_response(0x31, 0x55, 1)
    assert _extended(front) == "8"
    assert _ask(front, 0x30, [1, 1]) == (0, ())  # a service document
    assert front.feed(p.encode_request(0x55, [16, 1, 0], packet_id=0x32)) == b"\x06"
    assert front.feed(b"\xff\x00") == p.encode_response(0x32, 0x55, 0)
    assert core.document is not None and core.document.text[-1] == "[графика 16×1]"


def test_png_upload_prints_on_the_tape() -> None:
    front, core = _front()
    assert front.feed(p.encode_request(0x67, [len(PNG), 16, 8, 1], packet_id=0x31)) == b"\x06"
    assert front.feed(PNG) == p.encode_response(0x31, 0x67, 0)
    assert core.tape[-1] == "[PNG 16×8]"
    assert front.feed(p.encode_request(0x67, [10, 12, 8, 0], packet_id=0x32)) == p.encode_response(0x32, 0x67, 3)


# -------------------------------------------------------------------------- peripherals, service


def test_drawer_beep_speed_memory() -> None:
    front, core = _front()
    assert _ask(front, 0x80) == (0, ())  # 150 ms by default
    assert _ask(front, 0x80, [40]) == (3, ())
    assert _ask(front, 0x81) == (0, ("0",))  # shut again after the pulse
    assert _ask(front, 0x82, [100]) == (0, ())
    assert _ask(front, 0x82, [5]) == (3, ())
    assert _ask(front, 0x93, [5]) == (0, ())
    assert core.wire_memory["pirit_baud"] == 5
    assert _ask(front, 0x93, [6]) == (3, ())
    assert _ask(front, 0x91, [1, 0, 4]) == (0, ("00000000",))
    assert _ask(front, 0x91, [7, 0, 4]) == (3, ())
    assert _ask(front, 0x91, [1, 0, 65]) == (3, ())


def test_service_data_prints_and_needs_the_printer() -> None:
    front, core = _front()
    assert _ask(front, 0x94) == (0, ())
    assert "СЕРВИСНЫЕ ДАННЫЕ" in core.tape
    core.set_cover(True)
    assert _ask(front, 0x94) == (9, ())


def test_ofd_server_commands() -> None:
    front, core = _front()
    assert _ask(front, 0x9E) == (0, ("ofd.emulator.test",))
    assert _ask(front, 0xA5) == (0, ("1",))
    core.set_ofd(False)
    assert _ask(front, 0xA5) == (0, ("0",))
    assert _ask(front, 0x9F, ["k-server.example.ru"]) == (0, ())
    assert _ask(front, 0x9E) == (0, ("k-server.example.ru",))
    assert _ask(front, 0x11, [77]) == (0, ("k-server.example.ru",))
    assert _ask(front, 0x9F, [""]) == (0, ())
    assert _ask(front, 0xA5) == (0, ("2",))


def test_cabinet_commands() -> None:
    front, core = _front()
    error, fields = _ask(front, 0xA6)
    assert error == 0 and len(fields) == 18
    assert fields[2:5] == (core.fn.inn, core.fn.serial, "1.2")
    assert fields[6:8] == (core.fn.rnm, str(int(core.fn.tax_systems)))
    error, fields = _ask(front, 0xA7)
    assert error == 0 and len(fields) == 7
    assert fields[1:] == ("9", "Пирит 2СФ (Касса Ф)", "Касса Ф", "Пирит 2СФ (Касса Ф)", core.serial, "1")
    assert _ask(front, 0xA9) == (0, ("0",))
    assert _ask(front, 0xA8, [65535]) == (0, ())
    assert _ask(front, 0xA9) == (0, ("65535",))
    assert _ask(front, 0xA8, [65536]) == (3, ())


def test_services_activation() -> None:
    front, _ = _front()
    assert _ask(front, 0xAA, [2, 1]) == (0, ("0", "Печать тега 1200"))
    assert _ask(front, 0xAA, [1, "KEY-123"]) == (0, ())
    assert _ask(front, 0xAA, [2, 1]) == (0, ("1", "Печать тега 1200"))  # in the key, not active yet
    assert _ask(front, 0x23, ["Кассир"])[0] == 0  # open a shift
    assert _ask(front, 0xAA, [2, 1])[1][0] == "3"  # active after a new shift
    assert _ask(front, 0xAA, [4]) == (0, ("1", "2", "1;Печать тега 1200;3;;2;Правки ФФД от 29.08.2019;3;;"))
    assert _ask(front, 0xAA, [2, 9]) == (3, ())
    assert _ask(front, 0xAA, [5]) == (3, ())


def test_wifi_on_fm16() -> None:
    front, _ = _front("start")
    assert _ask(front, 0x85, [0, "lab-net", "secret"]) == (0, ())
    assert _ask(front, 0x86, [0]) == (0, ("lab-net", "192.168.1.100"))
    assert _ask(front, 0x85, [4, 6]) == (3, ())
    assert _ask(front, 0x87, [1, "http://fw.example/fm16.bin", "d41d8cd98f00b204e9800998ecf8427e"]) == (0, ())


# -------------------------------------------------------------------------- marking


CODE = "0104600439931256215BrXr$1D93dGVz"


def test_marking_check_accept_and_status() -> None:
    front, _ = _front()
    assert _ask(front, 0x79, [0]) == (0, ("0", "1", "0", "1", "0", "0", "0"))
    assert _ask(front, 0x79, [1, CODE, 0, 1, "1", 0, 0]) == (0, ("1", "15", "0", "3", "0", "1"))
    assert _ask(front, 0x79, [0]) == (0, ("0", "4", "0", "3", "0", "0", "0"))
    assert _ask(front, 0x79, [2, 1]) == (0, ("2", "15"))
    assert _ask(front, 0x79, [0]) == (0, ("0", "1", "1", "5", "1", "0", "0"))
    assert _ask(front, 0x79, [2, 1]) == (1, ())  # nothing checked any more
    assert _ask(front, 0x79, [15, CODE, 1, 0, 15, 0]) == (0, ("15",))
    assert _ask(front, 0x79, [15, "other", 1, 0, 15, 0]) == (3, ())
    assert _ask(front, 0x79, [3]) == (0, ())
    assert _ask(front, 0x79, [0]) == (0, ("0", "1", "0", "1", "0", "0", "0"))


def test_marking_offline_leaves_the_oism_tags_empty() -> None:
    front, core = _front()
    core.set_ofd(False)
    assert _ask(front, 0x79, [1, CODE, 0, 1, "1/10", 0, 0]) == (0, ("1", "3", "0", "", "", ""))


def test_marking_notifications_and_keys() -> None:
    front, _ = _front()
    assert _ask(front, 0x79, [6]) == (0, ("6", "0", "0", "0", "000000", "000000", "0"))
    assert _ask(front, 0x79, [7]) == (0, ("7", "0"))
    assert _ask(front, 0x79, [8, 0, 100]) == (0, ("8", ""))
    assert _ask(front, 0x79, [9, 1]) == (0, ("9",))
    assert _ask(front, 0x79, [10, 2, "0A0B"]) == (0, ("10", "0", "0"))
    assert _ask(front, 0x79, [11, 1]) == (0, ("11", "0", "0", "0", "0"))
    assert _ask(front, 0x79, [12, 0]) == (0, ("12", "0", "0"))
    assert _ask(front, 0x79, [13, 0, 701]) == (3, ())
    assert _ask(front, 0x79, [14, 0]) == (0, ("14", "0", "0"))
    assert _ask(front, 0x79, [16, CODE]) == (0, ("16", "1"))
    assert _ask(front, 0x79, [52, 0]) == (0, ("0",))
    assert _ask(front, 0x79, [52, 1]) == (0, ("prod01.okp-fn.ru",))
    assert _ask(front, 0x79, [4]) == (3, ())  # not in the manual


def test_marking_bad_requests() -> None:
    front, _ = _front()
    assert _ask(front, 0x79, [1, "", 0, 1, "1", 0, 0]) == (3, ())
    assert _ask(front, 0x79, [1, CODE, 1, 1, "1", 0, 0]) == (3, ())  # tag 2102 must be 0
    assert _ask(front, 0x79, [1, CODE, 0, 9, "1", 0, 0]) == (3, ())
    assert _ask(front, 0x79, [1, CODE, 0, 1, "3/2", 0, 0]) == (3, ())


# -------------------------------------------------------------------------- editions


@pytest.mark.parametrize(
    ("model", "overrides", "command", "fields"),
    [
        ("kf", {}, 0x85, [0, "net", "pwd"]),  # wifi: FM16 only
        ("start", {}, 0x19, ["x"]),  # pictures: not FM16
        ("start", {"ffd": "1.05"}, 0x86, [0]),  # wifi: FFD 1.2 only
        ("kf", {"ffd": "1.05"}, 0x79, [0]),  # marking: FFD 1.2 only
    ],
)
def test_a_command_the_edition_lacks_is_0x02(
    model: str, overrides: dict[str, str], command: int, fields: list[p.Field]
) -> None:
    front, _ = _front(model, **overrides)
    assert _ask(front, command, fields) == (2, ())


def test_a_binary_command_the_edition_lacks_is_0x02_without_an_ack() -> None:
    front, _ = _front("start")
    assert front.feed(p.encode_request(0x18, [8, 1, 0, "x", 1], packet_id=0x31)) == p.encode_response(0x31, 0x18, 2)
