"""Helpers shared by the АТОЛ test files: hex literals, the packet-id strategy and a stream
splitter of the codec tests (tests/test_atol_{v3,buffer,answers}.py), and the emulator's frozen
start time of the driver tests (tests/test_atol_{driver_emulator,frontend,raw_client}.py).
"""

from __future__ import annotations

from datetime import datetime

from hypothesis import strategies as st


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# the packet ids a v3 frame may carry (FE is the frame start)
packet_ids = st.integers(0, 255).filter(lambda i: i != 0xFE)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for point in [*points, len(data)]:
        chunks.append(data[last:point])
        last = point
    return chunks


# the emulated register's clock at the start of every driver test
START = datetime(2020, 12, 30, 10, 0, 0)
