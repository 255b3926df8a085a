"""The wire trace: decoded text rendered when read, the same as if decoded at once."""

from __future__ import annotations

import pytest

from harness.errors import DeviceError, LinkTimeout
from harness.trace import Trace, TraceRecord


def test_decoding_waits_until_the_trace_is_read() -> None:
    seen: list[bytes] = []

    def decoder(raw: bytes) -> str:
        seen.append(raw)
        return f"frame of {len(raw)}"

    trace = Trace(decoder)
    trace.tx(b"\x02ab\x03")
    trace.rx(b"\x02c\x03")
    assert seen == []  # nothing decoded on the wire path
    assert [r.decoded for r in trace.records] == ["frame of 4", "frame of 3"]
    assert trace.records[0].decoded == "frame of 4"
    assert len(seen) == 2  # each record decoded once
    assert "TX 02 61 62 03  | frame of 4" in trace.render()


def test_rx_takes_its_text_or_its_own_decoder() -> None:
    trace = Trace(lambda raw: "trace's")
    trace.rx(b"\x01", "garbage")
    trace.rx(b"\x02", lambda raw: f"answer {raw.hex()}")
    trace.rx(b"\x03")
    trace.note("a note")
    assert [(r.direction, r.decoded) for r in trace.records] == [
        ("RX", "garbage"),
        ("RX", "answer 02"),
        ("RX", "trace's"),
        ("--", "a note"),
    ]


def test_a_decoder_that_fails_leaves_a_line_not_an_exception() -> None:
    def broken(raw: bytes) -> str:
        raise ValueError("bad frame")

    trace = Trace(broken)
    trace.tx(b"\x00")
    assert trace.records[0].decoded == "undecodable: bad frame"
    assert Trace().decode(b"\x00") == "" and Trace(broken).decode(b"\x00") == "undecodable: bad frame"


def test_bytes_are_kept_as_they_were_sent() -> None:
    data = bytearray(b"\x02a")
    trace = Trace(lambda raw: raw.hex())
    trace.tx(data)  # type: ignore[arg-type]  # a caller's buffer
    data[1] = 0x62
    assert trace.records[0].raw == b"\x02a" and trace.records[0].decoded == "0261"


def test_a_full_trace_drops_its_oldest_records() -> None:
    trace = Trace(limit=3)
    for i in range(5):
        trace.note(str(i))
    assert [r.decoded for r in trace.records] == ["2", "3", "4"]
    assert trace.dropped == 2
    assert trace.render().startswith("... 2 earlier records dropped ...")


def test_records_compare_by_what_they_show() -> None:
    assert TraceRecord(0.5, "TX", b"\x01", decoder=lambda raw: "x") == TraceRecord(0.5, "TX", b"\x01", "x")
    assert TraceRecord(0.5, "TX", b"\x01", "x") != TraceRecord(0.5, "RX", b"\x01", "x")


def test_timed_tells_answers_from_link_failures() -> None:
    trace = Trace()
    with trace.timed("0x00 status"):
        pass
    with pytest.raises(DeviceError), trace.timed("0x21 close shift"):
        raise DeviceError("refused")
    with pytest.raises(LinkTimeout), trace.timed("0x23 open shift"):
        raise LinkTimeout("no answer")
    with pytest.raises(KeyboardInterrupt), trace.timed("0x31 close document"):
        raise KeyboardInterrupt
    assert [(t.command, t.answered) for t in trace.timings] == [
        ("0x00 status", True),
        ("0x21 close shift", True),  # a refusal is an answer
        ("0x23 open shift", False),
        ("0x31 close document", False),
    ]
    assert all(t.seconds >= 0 for t in trace.timings)
