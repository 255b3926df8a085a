"""Pirit bytes shared by the codec tests (tests/test_pirit_{framing,stream,values}.py): the
framing bytes as one-byte strings, a hex helper and the worked frames of reference §2.6, byte for
byte (two rows completed from the algorithm where the table elides them).
"""

from __future__ import annotations

from devices.pirit.protocol import ETX, FS, STX

S = bytes([STX])
E = bytes([ETX])
F = bytes([FS])


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# Reference §2.6 worked frames, byte for byte

STATUS_REQ = h("02 50 49 52 49 21 30 30 03 32 30")
START_REQ = h("02 50 49 52 49 22 31 30 32 33 31 31 32 34 1C 31 30 31 35 30 30 1C 03 32 30")
OFD_REQ = h("02 50 49 52 49 23 37 38 37 1C 03 30 36")
# Shown as "… 1C 03 30 41" in the table: completed from the algorithm.
SERIAL_REQ = S + b"PIRI$021" + F + E + b"0A"
OPEN_SHIFT_REQ = h("02 50 49 52 49 25 32 33 8A A0 E1 E1 A8 E0 1C 03 35 42")
STATUS_ANS = h("02 21 30 30 30 30 30 1C 34 1C 30 1C 03 30 41")
NO_PAPER_ANS = h("02 27 33 30 30 38 03 32 46")
# Shown as "…" in the table, CRC "2E" given: completed from the algorithm.
OFD_ANS = S + b"#78007" + F + b"2" + F + b"3" + F + b"125" + F + b"221124" + F + b"153000" + F + E + b"2E"
