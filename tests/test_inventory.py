"""The lab inventory: schema, one-line FILE:LINE errors, stable identity, suggestions that load back."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.inventory import (
    Inventory,
    InventoryError,
    LabDevice,
    OfdLink,
    Supply,
    entry_toml,
    inventory_path,
    load_inventory,
    suggest_entry,
    write_inventory,
)

FULL = """\
# the bench lab
[[device]]
id = "bench1"
model = "kf"
url = "socket://127.0.0.1:50003"
serial = "0497123456"
fn = "fn36"
sacrificial = false
rereg_floor = 2
timezone = "+03:00"
operator = "tty"
hub = "http://127.0.0.1:8080"
hub_poll_seconds = 300
baud = 57600

[device.supply]
resource = "TCPIP::192.168.0.50::5025::SOCKET"
channel = 1
voltage = 12.0
current_limit = 2.0

[device.ofd]
listen = "tcp://127.0.0.1:7779"
upstream = "tcp://127.0.0.1:7777"

[[device]]
id = "atol-2"
model = "ATOL"
usb_serial = "AB12CD"
serial = "00106712345678"
fn = "fn15"
sacrificial = true
rereg_floor = 0
timezone = "-05:30"
operator = "tcp://127.0.0.1:9100"

[[device]]
id = "start_3"
model = "start"
port = "1-1.4"
serial = "1234567890"
fn = "fn36"
sacrificial = false
operator = "none"
"""

# a minimal valid entry; BASE_LINES[n - 1] is line n
BASE_LINES = [
    "# lab",  # 1
    "[[device]]",  # 2
    'id = "bench1"',  # 3
    'model = "kf"',  # 4
    'url = "socket://127.0.0.1:50003"',  # 5
    'serial = "0497123456"',  # 6
    'fn = "fn36"',  # 7
    "sacrificial = false",  # 8
    'operator = "tty"',  # 9
]
SECOND = ["", "[[device]]", 'id = "bench2"', 'model = "dkf"', 'url = "loop://"', 'serial = "0497000001"']
SECOND += ['fn = "fn36"', "sacrificial = false", 'operator = "none"']  # lines 10-18 after BASE


def variant(replace: dict[str, str | None] | None = None, extra: list[str] | None = None) -> str:
    """BASE with ``key = …`` lines replaced in place (None removes them), then ``extra`` lines (from 10 on)."""
    lines = []
    for line in BASE_LINES:
        key = line.partition(" =")[0]
        if replace and key in replace:
            if replace[key] is not None:
                lines.append(f"{key} = {replace[key]}")
        else:
            lines.append(line)
    return "\n".join([*lines, *(extra or [])]) + "\n"


def write(tmp_path: Path, text: str, name: str = "lab.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_full_file_loads_with_every_field(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    inventory = load_inventory(path)
    assert list(inventory.devices) == ["bench1", "atol-2", "start_3"]
    bench = inventory.device("bench1")
    assert bench == LabDevice(
        id="bench1",
        model="kf",
        url="socket://127.0.0.1:50003",
        usb_serial=None,
        port=None,
        serial="0497123456",
        fn="fn36",
        sacrificial=False,
        rereg_floor=2,
        fn_registration_limit=None,
        utc_offset=dt.timedelta(hours=3),
        operator="tty",
        hub="http://127.0.0.1:8080",
        hub_poll_seconds=300.0,
        baud=57600,
        supply=Supply("TCPIP::192.168.0.50::5025::SOCKET", 1, 12.0, 2.0),
        ofd=OfdLink("tcp://127.0.0.1:7779", "tcp://127.0.0.1:7777"),
        source=f"{path}:2",
    )
    atol = inventory.device("atol-2")
    assert (atol.model, atol.usb_serial, atol.sacrificial, atol.rereg_floor) == ("atol", "AB12CD", True, 0)
    assert atol.utc_offset == -dt.timedelta(hours=5, minutes=30)
    assert atol.source == f"{path}:26"
    start = inventory.device("start_3")
    assert (start.port, start.rereg_floor, start.utc_offset, start.supply, start.hub) == (
        "1-1.4",
        2,
        dt.timedelta(hours=3),
        None,
        None,
    )
    assert start.source == f"{path}:37"
    assert inventory.match("00106712345678") is atol
    assert inventory.match("0000000000") is None


def test_full_file_round_trips_through_entry_toml(tmp_path: Path) -> None:
    first = load_inventory(write(tmp_path, FULL))
    again = write_inventory(tmp_path / "again.toml", [entry_toml(d) for d in first.devices.values()])
    assert again == load_inventory(tmp_path / "again.toml")
    strip = [dataclasses.replace(d, source="") for d in first.devices.values()]
    assert [dataclasses.replace(d, source="") for d in again.devices.values()] == strip


def test_entry_toml_quotes_strange_strings(tmp_path: Path) -> None:
    text = variant({"url": None}, ['usb_serial = "A\\"B\\\\C\\u007f\\tД"'])
    device = load_inventory(write(tmp_path, text)).device("bench1")
    assert device.usb_serial == 'A"B\\C\x7f\tД'
    back = load_inventory(write(tmp_path, entry_toml(device), "back.toml")).device("bench1")
    assert dataclasses.replace(back, source="") == dataclasses.replace(device, source="")


def test_an_empty_file_is_an_empty_lab(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path, "# nothing yet\n"))
    assert inventory.devices == {}
    with pytest.raises(UsageError, match=r"no device 'bench1' in the inventory \(known: none\)"):
        inventory.device("bench1")


BAD = [
    # (case, text, LINE, part of the message)
    ("unknown key", variant(extra=['colour = "red"']), 10, "unknown key colour (known: id, model, url,"),
    ("bool as string", variant({"sacrificial": '"yes"'}), 8, 'sacrificial must be true or false, not the string "yes"'),
    ("bool as integer", variant({"sacrificial": "1"}), 8, "sacrificial must be true or false, not the integer 1"),
    ("bare ttyUSB", variant({"url": '"/dev/ttyUSB0"'}), 5, "unstable across reboots: use usb_serial or port"),
    ("bare ttyACM", variant({"url": '"/dev/ttyACM1"'}), 5, "or a /dev/serial/by-id/ path"),
    ("bare ttyS", variant({"url": '"/dev/ttyS0"'}), 5, "'/dev/ttyS0' is unstable across reboots"),
    ("not a pyserial url", variant({"url": '"tcp://127.0.0.1:50003"'}), 5, "not a pyserial URL"),
    (
        "fault injection",
        variant({"url": '"faulty://?p=0.1&url=socket://127.0.0.1:50003"'}),
        5,
        "never reached through fault injection",
    ),
    ("socket url without port", variant({"url": '"socket://127.0.0.1"'}), 5, "expected socket://HOST:PORT"),
    (
        "duplicate id",
        variant(extra=[*SECOND[:2], 'id = "bench1"', *SECOND[3:]]),
        12,
        "id 'bench1' is used by bench1 too",
    ),
    ("duplicate serial", variant(extra=[*SECOND[:5], 'serial = "0497123456"', *SECOND[6:]]), 15, "serial '0497123456'"),
    ("duplicate url", variant(extra=[*SECOND[:4], 'url = "socket://127.0.0.1:50003"', *SECOND[5:]]), 14, "url "),
    ("short serial", variant({"serial": '"12345"'}), 6, "serial '12345' must be 10 or more digits"),
    ("serial with letters", variant({"serial": '"04971234AB"'}), 6, "10 or more digits"),
    ("serial as integer", variant({"serial": "4971234567"}), 6, "serial must be a string, not the integer 4971234567"),
    ("operator word", variant({"operator": '"human"'}), 9, 'operator must be "tty", "none" or tcp://127.0.0.1:PORT'),
    ("operator without port", variant({"operator": '"tcp://127.0.0.1"'}), 9, "operator: expected tcp://HOST:PORT"),
    ("operator bad port", variant({"operator": '"tcp://127.0.0.1:99999"'}), 9, "expected tcp://HOST:PORT"),
    ("hub not http", variant(extra=['hub = "ftp://127.0.0.1:21"']), 10, "hub: expected http://HOST:PORT"),
    ("hub poll without hub", variant(extra=["hub_poll_seconds = 300"]), 10, "hub_poll_seconds without hub"),
    ("hub poll zero", variant(extra=['hub = "http://127.0.0.1:8080"', "hub_poll_seconds = 0"]), 11, "must be > 0"),
    ("missing serial", variant({"serial": None}), 2, "missing required key serial"),
    ("missing sacrificial", variant({"sacrificial": None}), 2, "missing required key sacrificial"),
    ("no connection", variant({"url": None}), 2, "give exactly one of url, usb_serial, port (given: none)"),
    ("two connections", variant(extra=['port = "1-1.4"']), 10, "(given: url, port)"),
    ("unknown model", variant({"model": '"shtrih"'}), 4, "unknown model 'shtrih' (known: kf, dkf, start, atol"),
    ("bad id", variant({"id": '"Bench 1"'}), 3, "id 'Bench 1' must be lower-case letters, digits, _ and - only"),
    ("bad fn", variant({"fn": '"fn13"'}), 7, "fn must be one of fn15, fn36, not 'fn13'"),
    ("negative floor", variant(extra=["rereg_floor = -1"]), 10, "rereg_floor must be >= 0, not -1"),
    ("float floor", variant(extra=["rereg_floor = 1.5"]), 10, "rereg_floor must be an integer, not the number 1.5"),
    ("bad timezone", variant(extra=['timezone = "MSK"']), 10, "timezone must be a UTC offset like +03:00"),
    ("bad port location", variant({"url": None}, ['port = "/dev/ttyUSB0"']), 9, "is not a USB location like 1-1.4"),
    ("empty usb serial", variant({"url": None}, ['usb_serial = " "']), 9, "usb_serial is empty"),
    ("zero baud", variant(extra=["baud = 0"]), 10, "baud must be >= 1, not 0"),
    ("supply not a table", variant(extra=['supply = "psu1"']), 10, 'supply must be a table, not the string "psu1"'),
    (
        "supply unknown key",
        variant(extra=["[device.supply]", 'resource = "ASRL3::INSTR"', "volts = 12"]),
        12,
        "unknown key supply.volts (known: resource, channel,",
    ),
    (
        "supply no resource",
        variant(extra=["", "[device.supply]", "channel = 2"]),
        11,
        "missing required key supply.resource",
    ),
    ("supply bad resource", variant(extra=["[device.supply]", 'resource = "psu"']), 11, "not a VISA resource"),
    (
        "supply channel zero",
        variant(extra=["[device.supply]", 'resource = "ASRL3::INSTR"', "channel = 0"]),
        12,
        "supply.channel must be >= 1",
    ),
    (
        "supply negative voltage",
        variant(extra=["[device.supply]", 'resource = "ASRL3::INSTR"', "voltage = -12.0"]),
        12,
        "supply.voltage must be > 0",
    ),
    (
        "supply infinite voltage",
        variant(extra=["[device.supply]", 'resource = "ASRL3::INSTR"', "voltage = inf"]),
        12,
        "must be > 0, not inf",
    ),
    (
        "dotted supply key",
        variant(extra=['supply.resource = "ASRL3::INSTR"', "supply.channel = 0"]),
        11,
        "supply.channel must be >= 1",
    ),
    (
        "ofd bad listen",
        variant(extra=["[device.ofd]", 'listen = "udp://127.0.0.1:7779"', 'upstream = "tcp://127.0.0.1:7777"']),
        11,
        "ofd.listen: expected tcp://HOST:PORT",
    ),
    (
        "ofd missing upstream",
        variant(extra=["[device.ofd]", 'listen = "tcp://127.0.0.1:7779"']),
        10,
        "missing required key ofd.upstream",
    ),
    (
        "ofd inline table",
        variant(extra=['ofd = { listen = "tcp://127.0.0.1:7779", upstream = "tcp://x" }']),
        10,
        "ofd.upstream: expected tcp://HOST:PORT",
    ),
    (
        "second device",
        variant(extra=[*SECOND[:7], 'sacrificial = "no"', *SECOND[8:]]),
        17,
        "sacrificial must be true or false",
    ),
    ("second device missing key", variant(extra=SECOND[:-1]), 11, "missing required key operator"),
    ("invalid toml", variant({"sacrificial": "nope"}), 8, "not valid TOML: Invalid value"),
    ("toml duplicate key", variant(extra=['id = "again"']), 10, "not valid TOML"),
    ("unknown top-level table", variant(extra=["[lab]", 'name = "x"']), 10, "unknown key lab (known: device)"),
    ("device as a table", '# lab\n\n[device]\nid = "bench1"\n', 3, "write [[device]], not [device]"),
    ("device entry not a table", "device = [1]\n", 1, "device must be a table, not the integer 1"),
    ("a date", variant({"fn": "2024-01-01"}), 7, "fn must be a string, not a date/time"),
]


@pytest.mark.parametrize(("text", "line", "message"), [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_inventory_is_one_line_with_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:{line}: "), text
    assert message in text
    assert "\n" not in text
    assert isinstance(caught.value, UsageError)


def test_missing_and_unreadable_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match=r"lab\.toml: cannot read the inventory: No such file") as caught:
        load_inventory(tmp_path / "lab.toml")
    assert str(caught.value).startswith(f"{tmp_path / 'lab.toml'}: ")
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[[device]]\nid = "b\xe9nch"\n')
    with pytest.raises(InventoryError, match=r"latin1\.toml:2: not UTF-8 text"):
        load_inventory(path)


def test_unknown_id_names_the_file_and_the_known_ids(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    with pytest.raises(UsageError) as caught:
        load_inventory(path).device("bench9")
    assert str(caught.value) == f"{path}: no device 'bench9' in the inventory (known: bench1, atol-2, start_3)"


@dataclasses.dataclass
class FakePort:
    device: str
    serial_number: str | None
    location: str | None
    vid: int | None = 0x0403
    pid: int | None = 0x6001


PORTS = [
    FakePort("/dev/ttyUSB0", "AB12CD", "1-1.4:1.0"),
    FakePort("/dev/ttyUSB1", "FF0001", "1-1.3:1.0"),
    FakePort("/dev/ttyS0", None, None, None, None),
]


def lab_device(tmp_path: Path, link: str) -> LabDevice:
    return load_inventory(write(tmp_path, variant({"url": None}, [link]))).device("bench1")


def test_resolve_url_by_usb_serial_and_by_port(tmp_path: Path) -> None:
    assert lab_device(tmp_path, 'usb_serial = "AB12CD"').resolve_url(PORTS) == "/dev/ttyUSB0"
    assert lab_device(tmp_path, 'port = "1-1.3"').resolve_url(PORTS) == "/dev/ttyUSB1"
    assert lab_device(tmp_path, 'port = "1-1.4:1.0"').resolve_url(PORTS) == "/dev/ttyUSB0"
    url = load_inventory(write(tmp_path, variant())).device("bench1")
    assert url.resolve_url([]) == "socket://127.0.0.1:50003"


def test_resolve_url_not_found_says_what_is_plugged_in(tmp_path: Path) -> None:
    device = lab_device(tmp_path, 'usb_serial = "ZZ9999"')
    with pytest.raises(InventoryError) as caught:
        device.resolve_url(PORTS)
    assert str(caught.value) == (
        f"{tmp_path / 'lab.toml'}:2: bench1: no serial port with USB serial number 'ZZ9999' (plugged in: "
        "/dev/ttyUSB0 (serial AB12CD, port 1-1.4:1.0, 0403:6001), /dev/ttyUSB1 (serial FF0001, port 1-1.3:1.0, "
        "0403:6001), /dev/ttyS0 (serial None, port None))"
    )
    with pytest.raises(InventoryError, match=r"no serial port with USB port '1-1\.9' \(plugged in: none\)"):
        lab_device(tmp_path, 'port = "1-1.9"').resolve_url([])
    # "1-1.4" is not a prefix of "1-1.40"
    with pytest.raises(InventoryError, match=r"no serial port with USB port '1-1\.4'"):
        lab_device(tmp_path, 'port = "1-1.4"').resolve_url([FakePort("/dev/ttyUSB3", "X", "1-1.40:1.0")])


def test_resolve_url_found_twice_is_an_error(tmp_path: Path) -> None:
    twins = [FakePort("/dev/ttyUSB0", "AB12CD", "1-1.4:1.0"), FakePort("/dev/ttyUSB1", "AB12CD", "1-1.4:1.1")]
    with pytest.raises(
        InventoryError, match=r":2: bench1: 2 serial ports match USB serial number 'AB12CD': /dev/ttyUSB0"
    ):
        lab_device(tmp_path, 'usb_serial = "AB12CD"').resolve_url(twins)
    with pytest.raises(InventoryError, match=r"2 serial ports match USB port '1-1\.4': /dev/ttyUSB0 .*/dev/ttyUSB1"):
        lab_device(tmp_path, 'port = "1-1.4"').resolve_url(twins)
    assert lab_device(tmp_path, 'port = "1-1.4:1.1"').resolve_url(twins) == "/dev/ttyUSB1"


def test_inventory_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KKT_HIL_INVENTORY", raising=False)
    assert inventory_path(None) is None
    write(tmp_path, FULL, "kkt-hil.toml")
    assert inventory_path(None) == tmp_path / "kkt-hil.toml"
    monkeypatch.setenv("KKT_HIL_INVENTORY", "/labs/env.toml")
    assert inventory_path(None) == Path("/labs/env.toml")
    assert inventory_path("given.toml") == Path("given.toml")
    monkeypatch.setenv("KKT_HIL_INVENTORY", "")
    assert inventory_path(None) == tmp_path / "kkt-hil.toml"


def test_suggest_entry_round_trips(tmp_path: Path) -> None:
    by_serial = suggest_entry(id="kf1", model="KF", serial="0497123456", usb_serial="AB12CD")
    assert "sacrificial = false  # set true ONLY for a test ФН" in by_serial
    by_port = suggest_entry(id="atol1", model="atol", serial="00106712345678", port="1-1.4", fn="fn15")
    by_url = suggest_entry(id="emu", model="dkf", serial="0497000001", url="socket://127.0.0.1:50003")
    inventory = write_inventory(tmp_path / "lab.toml", [by_serial, by_port, by_url])
    assert inventory == load_inventory(tmp_path / "lab.toml")
    kf, atol, emu = inventory.devices.values()
    assert (kf.model, kf.usb_serial, kf.fn, kf.sacrificial, kf.rereg_floor) == ("kf", "AB12CD", "fn36", False, 2)
    assert (atol.port, atol.fn, atol.utc_offset, atol.operator) == ("1-1.4", "fn15", dt.timedelta(hours=3), "none")
    assert emu.resolve_url() == "socket://127.0.0.1:50003"
    assert entry_toml(kf) == by_serial


def test_suggest_entry_refuses_what_would_not_load() -> None:
    with pytest.raises(InventoryError, match=r"^<suggested entry>:\d+: serial '123' must be 10 or more digits"):
        suggest_entry(id="kf1", model="kf", serial="123", usb_serial="AB12CD")
    with pytest.raises(InventoryError, match="give exactly one of url, usb_serial, port"):
        suggest_entry(id="kf1", model="kf", serial="0497123456")


def test_write_inventory_checks_before_replacing(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    block = suggest_entry(id="bench1", model="kf", serial="0497999999", port="1-2")
    with pytest.raises(InventoryError, match=r"lab\.toml:\d+: id 'bench1' is used by bench1 too"):
        write_inventory(path, [entry_toml(load_inventory(path).device("bench1")), block])
    assert path.read_text(encoding="utf-8") == FULL
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.toml"]
    assert isinstance(write_inventory(path, [block]), Inventory)
    assert list(load_inventory(path).devices) == ["bench1"]
