"""The conformance table (devices/conformance.py) in the README is what the code generates, and
the emulators serve every command of the manual their model's edition lists; the edition gate
answers what the register answers (0x02 for a command, 0x03 for a sub-request it lacks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices import conformance
from devices.emulator.core import FiscalCore
from devices.emulator.profiles import profile
from devices.pirit.catalogue import COMMANDS, COMMANDS_LIST, EDITIONS, has_command, has_sub
from devices.pirit.emulator import PiritFrontEnd
from devices.pirit.protocol import decode_response, encode_request

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_table_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    assert conformance.BEGIN in text and conformance.END in text
    assert conformance.replace_block(text, conformance.table()) == text, (
        "README conformance table is stale: run .venv/bin/python -m devices.conformance --write README.md"
    )


def test_every_command_of_every_edition_is_served() -> None:
    missing = [line for line in conformance.pirit_table() if f"| {conformance.MISSING} " in line + " "]
    assert not missing, "\n".join(missing)


# command headings of each edition of dreamkas/pirit_documentation documentation_pirit_fm.md
# (the file split by its "<<<<<< edition" markers, headings "# … (0xNN)" counted once each)
MANUAL_HEADINGS = {
    ("pirit2f", "1.05"): 64,
    ("pirit2f", "1.2"): 66,
    ("fm16", "1.05"): 61,
    ("fm16", "1.2"): 66,
    ("punix", "1.05"): 65,
    ("punix", "1.2"): 67,
}


@pytest.mark.parametrize(("edition", "ffd"), sorted(MANUAL_HEADINGS))
def test_the_catalogue_lists_what_each_edition_of_the_manual_has(edition: str, ffd: str) -> None:
    assert len(COMMANDS) == len(COMMANDS_LIST)
    assert {e for e, _ in MANUAL_HEADINGS} == set(EDITIONS)
    count = sum(has_command(c.code, edition, ffd) and not c.dropped for c in COMMANDS_LIST)
    assert count == MANUAL_HEADINGS[edition, ffd]


class Wire:
    def __init__(self, model: str, **overrides: str) -> None:
        self.core = FiscalCore(profile(model).with_overrides(overrides) if overrides else profile(model))
        self.frontend = PiritFrontEnd(self.core)
        self.packet = 0x21
        assert self.call(0x10, "011220", "090000").error == 0

    def call(self, command: int, *fields: str):
        self.packet = self.packet + 1 if self.packet < 0x3F else 0x21
        answer = self.frontend.feed(encode_request(command, list(fields), packet_id=self.packet))
        return decode_response(answer)


@pytest.mark.parametrize(
    ("model", "command", "present"),
    [("start", 0x18, False), ("kf", 0x18, True), ("kf", 0x85, False), ("kf", 0xAA, True)],
)
def test_a_command_the_edition_lacks_is_unknown(model: str, command: int, present: bool) -> None:
    wire = Wire(model)
    fd_before = wire.core.last_fd().number
    answer = wire.call(command)
    assert (answer.error != 0x02) is present
    assert wire.core.last_fd().number == fd_before


def test_ffd_105_firmware_lacks_the_ffd_12_commands_and_sub_requests() -> None:
    wire = Wire("kf", ffd="1.05")
    assert wire.call(0x79, "0").error == 0x02  # marking: FFD 1.2 editions only
    assert wire.call(0x25, "1", "a", "b").error == 0x02
    assert wire.call(0x78, "22").error == 0x03  # a sub-request of the FFD 1.2 editions
    assert has_sub(0x78, 22, "punix", "1.2") and not has_sub(0x78, 22, "punix", "1.05")


def test_a_sub_request_the_edition_lacks_is_a_bad_parameter() -> None:
    kf, start = Wire("kf"), Wire("start")
    assert kf.call(0x02, "18").error == 0x03  # characters per line: FM16 only
    assert start.call(0x02, "18").error == 0
