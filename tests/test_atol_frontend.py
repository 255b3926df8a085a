"""The АТОЛ emulator's front end fed frames directly (no driver): task buffer states, a failed task
stopping the buffer, overflow, synchronous results, corrupted and repeated packets, the mode
machine and passwords, requisites and FN queries, v2 on the same link, power off — and random
bytes, payloads and tasks that never kill the emulator.
"""

from __future__ import annotations

from typing import Any, cast

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from devices.atol import protocol as p
from devices.atol.emulator import AtolFrontEnd, describe_state
from devices.emulator.build import build_emulator
from devices.emulator.core import FiscalCore

from .atol_common import START

# ------------------------------------------------------------------ task buffer, frames, modes (front-end level)


def _front(**kwargs: Any) -> tuple[AtolFrontEnd, FiscalCore]:
    core = build_emulator("atol", {"clock": START.isoformat()}).core
    return AtolFrontEnd(core, **kwargs), core


def _send(front: AtolFrontEnd, packet_id: int, payload: bytes) -> list[p.V3Frame]:
    items = p.V3Reader().feed(front.feed(p.encode_frame(packet_id, payload)))
    frames = [item for item in items if isinstance(item, p.V3Frame)]
    assert frames == items
    return frames


def _add(
    front: AtolFrontEnd,
    packet_id: int,
    tid: int,
    command: int,
    params: bytes = b"",
    flags: p.AddFlags = p.AddFlags.NEED_RESULT,
) -> tuple[p.BufferAnswer, p.BufferAnswer | None]:
    frames = _send(front, packet_id, p.encode_add(tid, p.encode_command(command, params), flags))
    sync = p.decode_buffer_answer(frames[0].payload)
    assert frames[0].packet_id == packet_id
    result = p.decode_buffer_answer(frames[1].payload) if len(frames) > 1 else None
    if result is not None:
        assert frames[1].packet_id == p.ASYNC_ID and result.tid == tid
    return sync, result


def _result(front: AtolFrontEnd, packet_id: int, tid: int, command: int, params: bytes = b"") -> p.BufferAnswer:
    """The task's result (the asynchronous answer); the test fails if there is none."""
    result = _add(front, packet_id, tid, command, params)[1]
    assert result is not None, f"no result for {command:02X}h"
    return result


def _status_of(front: AtolFrontEnd, packet_id: int, kind: p.BufferCmd, tid: int) -> p.BufferAnswer:
    payload = p.encode_req(tid) if kind == p.BufferCmd.REQ else p.encode_ack(tid)
    (frame,) = _send(front, packet_id, payload)
    return p.decode_buffer_answer(frame.payload)


def test_task_buffer_states() -> None:
    front, core = _front()
    sync, result = _add(front, 1, 5, p.Cmd.STATUS)
    assert sync.status == p.BufferStatus.PENDING and result is not None
    assert result.status == p.BufferStatus.ASYNC_RESULT and result.data[0] == 0x44
    req = _status_of(front, 2, p.BufferCmd.REQ, 5)
    assert (req.status, req.data) == (p.BufferStatus.RESULT, result.data)
    assert _status_of(front, 3, p.BufferCmd.REQ, 9).status == p.BufferStatus.NOT_FOUND  # unknown TId
    assert _add(front, 4, 5, p.Cmd.STATUS)[0].status == p.BufferStatus.ALREADY_EXISTS
    assert _status_of(front, 5, p.BufferCmd.ACK, 5).status == p.BufferStatus.RESULT
    assert _status_of(front, 6, p.BufferCmd.REQ, 5).status == p.BufferStatus.NOT_FOUND  # ACK dropped it
    _add(front, 7, 6, p.Cmd.STATUS)
    _add(front, 8, 7, p.Cmd.STATE)
    assert set(describe_state(core)["tasks"]) == {6, 7}
    (abort,) = _send(front, 9, p.encode_abort())
    assert p.decode_buffer_answer(abort.payload).status == p.BufferStatus.RESULT
    assert describe_state(core)["tasks"] == {}
    assert _status_of(front, 10, p.BufferCmd.REQ, 6).status == p.BufferStatus.NOT_FOUND
    # a task without NeedResult runs, reports asynchronously, and is not kept
    sync, result = _add(front, 11, 8, p.Cmd.STATUS, flags=p.AddFlags.NONE)
    assert sync.status == p.BufferStatus.PENDING and result is not None and result.is_async
    assert _status_of(front, 12, p.BufferCmd.REQ, 8).status == p.BufferStatus.NOT_FOUND
    # ACK_ADD acknowledges one task and adds the next
    _add(front, 13, 9, p.Cmd.STATUS)
    frames = _send(front, 14, p.encode_ack_add(9, 10, p.encode_command(p.Cmd.STATE)))
    assert p.decode_buffer_answer(frames[1].payload).tid == 10
    assert set(describe_state(core)["tasks"]) == {10}
    # illegal buffer commands and flags
    (bad,) = _send(front, 15, b"\xc7")
    assert p.decode_buffer_answer(bad.payload).status == p.BufferStatus.ILLEGAL_VALUE
    bad_flag = cast(p.AddFlags, 0x80)  # a flag bit the protocol does not define, on purpose
    assert _add(front, 16, 11, p.Cmd.STATUS, flags=bad_flag)[0].status == p.BufferStatus.ILLEGAL_VALUE


def test_failed_task_stops_the_buffer_until_acknowledged() -> None:
    front, _ = _front()
    _sync, result = _add(front, 1, 1, p.Cmd.Z_REPORT)  # mode 0: refused with 102
    assert result is not None and result.status == p.BufferStatus.ASYNC_ERROR and result.data == b"\x55\x66\x00"
    stopped, nothing = _add(front, 2, 2, p.Cmd.STATUS)
    assert stopped.status == p.BufferStatus.STOPPED and nothing is None
    assert _status_of(front, 3, p.BufferCmd.REQ, 2).status == p.BufferStatus.STOPPED
    assert _status_of(front, 4, p.BufferCmd.ACK, 1).status == p.BufferStatus.ERROR
    _status_of(front, 5, p.BufferCmd.ACK, 2)
    assert _add(front, 6, 3, p.Cmd.STATUS)[1] is not None  # runs again
    # IgnoreError: a failure does not stop the buffer
    _add(front, 7, 4, p.Cmd.Z_REPORT, flags=p.AddFlags.NEED_RESULT | p.AddFlags.IGNORE_ERROR)
    assert _add(front, 8, 5, p.Cmd.STATUS)[1] is not None


def test_buffer_overflow() -> None:
    front, _ = _front()
    for tid in range(1, 33):
        assert _add(front, tid, tid, p.Cmd.STATE)[0].status == p.BufferStatus.PENDING
    assert _add(front, 40, 40, p.Cmd.STATE)[0].status == p.BufferStatus.OVERFLOW


def test_synchronous_result_setting() -> None:
    front, core = _front()
    core.wire_memory["atol_sync_result"] = "result"
    sync, result = _add(front, 1, 1, p.Cmd.DEVICE_TYPE)
    assert sync.status == p.BufferStatus.RESULT and result is not None and sync.data == result.data
    assert p.DeviceType.decode(p.parse_answer(sync.data, p.Cmd.DEVICE_TYPE).data).model == 61
    sync, _ = _add(front, 2, 2, p.Cmd.Z_REPORT)
    assert (sync.status, sync.data) == (p.BufferStatus.ERROR, b"\x55\x66\x00")
    front2, _ = _front(sync_result="result")
    assert _add(front2, 1, 1, p.Cmd.STATUS)[0].status == p.BufferStatus.RESULT


def test_corrupted_request_gets_an_empty_frame_and_resends_work() -> None:
    front, _ = _front()
    good = p.encode_frame(0x21, p.encode_add(1, p.encode_command(p.Cmd.STATUS)))
    bad = good[:-1] + bytes([good[-1] ^ 0x01]) if good[-1] not in (0xFC, 0xFF) else good[:-1] + b"\x00"
    assert front.feed(bad) == p.encode_frame(0x21, b"")  # retransmission request
    answer = front.feed(good)
    sync = p.V3Reader().feed(answer)[0]
    assert isinstance(sync, p.V3Frame) and sync.packet_id == 0x21
    assert front.feed(p.encode_frame(0x21, b"")) == sync.encode()  # the host lost our answer: resend it
    assert front.feed(good) == sync.encode()  # a repeated packet is answered from memory, not run twice
    truncated = p.encode_frame(0x22, p.encode_abort())[:-1]
    assert front.feed(truncated) == b""
    assert front.pending()
    out = p.V3Reader().feed(front.feed(p.encode_frame(0x23, p.encode_abort())))
    assert [f.packet_id for f in out if isinstance(f, p.V3Frame)] == [0x22, 0x23]  # empty frame for 0x22


def test_mode_machine_and_passwords() -> None:
    front, core = _front()
    assert _result(front, 1, 1, p.Cmd.OPEN_RECEIPT, b"\x00\x01").data == b"\x55\x66\x00"
    _status_of(front, 2, p.BufferCmd.ACK, 1)

    def run(packet: int, command: int, params: bytes = b"", password: int = 0) -> bytes:
        frames = _send(
            front, packet, p.encode_add(packet, p.encode_command(command, params, password), p.AddFlags.NONE)
        )
        return p.decode_buffer_answer(frames[1].payload).data

    assert run(3, p.Cmd.ENTER_MODE, p.EnterMode(1, 31).encode()) == b"\x55\x8c\x00"  # wrong → 140
    assert run(4, p.Cmd.ENTER_MODE, p.EnterMode(3, 1).encode()) == b"\x55\x8c\x00"  # cashier cannot Z
    assert run(5, p.Cmd.ENTER_MODE, b"\x01\x00\x00\x00\xab") == b"\x55\xa4\x00"  # not BCD → 164
    assert run(6, p.Cmd.ENTER_MODE, b"\x01") == b"\x55\x14\x00"  # bad length → 20
    assert run(7, p.Cmd.STATUS, password=1234) == b"\x55\x8c\x00"  # wrong access password
    assert run(8, 0x01) == b"\x55\x7a\x00"  # unknown command → 122
    assert run(9, p.Cmd.ENTER_MODE, p.EnterMode(1, 1).encode()) == b"\x55\x00\x00"
    assert run(10, p.Cmd.ENTER_MODE, p.EnterMode(3, 30).encode()) == b"\x55\x66\x00"  # leave mode 1 first
    assert run(11, p.Cmd.OPEN_RECEIPT, b"\x00\x01") == b"\x55\x00\x00"  # opens the shift implicitly
    assert core.shift.is_open and core.document is not None
    assert run(12, p.Cmd.EXIT_MODE) == b"\x55\x9b\x00"  # receipt open → 155
    state = p.StateAnswer.decode(run(13, p.Cmd.STATE)[1:])
    assert state.mode == 1
    block = p.StatusBlock.decode(run(14, p.Cmd.STATUS))
    assert (block.mode, block.receipt_state, block.cashier, block.shift_number) == (1, 1, 1, 0)
    assert run(15, p.Cmd.CANCEL_RECEIPT) == b"\x55\x00\x00"
    assert run(16, p.Cmd.EXIT_MODE) == b"\x55\x00\x00"
    version = p.FirmwareVersion.decode(run(17, p.Cmd.FIRMWARE, b"\x01")[2:])
    assert version.text == "3.0.0.8000"
    assert run(18, p.Cmd.CASH_IN_DRAWER)[0] == 0x4D


def test_requisites_and_fn_queries() -> None:
    front, core = _front()
    _sync, result = _add(front, 1, 1, p.Cmd.READ_REQUISITE, p.ReadRequisite(p.Tag.TAX_SYSTEMS).encode())
    assert result is not None and p.decode_tlvs(result.data[3:]) == [(1062, b"\x02")]
    _sync, result = _add(front, 2, 2, p.Cmd.READ_REQUISITE, p.ReadRequisite(9999).encode())
    assert result is not None and result.data == b"\x55\xda\x00"  # 218: no such data
    _status_of(front, 5, p.BufferCmd.ACK, 2)  # a failed task stops the buffer until acknowledged
    data = p.encode_tlv(p.Tag.CASHIER, "Иванов".encode("cp866"))
    _add(front, 3, 3, p.Cmd.WRITE_REQUISITE, p.WriteRequisite(data[:3], blocks=2, block=0).encode())
    _add(front, 4, 4, p.Cmd.WRITE_REQUISITE, p.WriteRequisite(data[3:], blocks=2, block=1).encode())
    assert describe_state(core)["requisites"] == {1021: "Иванов".encode("cp866").hex()}
    answers = {
        sub: _result(front, 10 + sub, 10 + sub, p.Cmd.FN, bytes([sub])) for sub in (0x10, 0x31, 0x32, 0x33, 0x42, 0x43)
    }
    assert p.ShiftParams.decode(answers[0x10].data[2:]) == p.ShiftParams(0, 0, 1)
    assert answers[0x31].data[2:].decode().strip() == core.fn.serial
    validity = p.FnValidity.decode(answers[0x32].data[2:])
    assert validity == p.FnValidity(core.fn_valid_until(), 29, 1)
    assert answers[0x42].data[2:] == b"\x00\x00"
    totals = p.RegistrationTotals.decode(answers[0x43].data[2:])
    assert (totals.fd_number, totals.tax_systems, totals.inn) == (1, 2, core.fn.inn)
    assert _result(front, 99, 99, p.Cmd.FN, b"\x77").data == b"\x55\x7a\x00"


def test_v2_transport() -> None:
    front, _ = _front()
    assert front.feed(bytes([p.ENQ])) == bytes([p.ACK])
    assert front.feed(bytes.fromhex("02 00 00 3F 03 3C")) == bytes([p.ACK])  # §3.4 status request vector
    assert front.feed(bytes([p.EOT])) == bytes([p.ENQ])
    answer = front.feed(bytes([p.ACK]))
    (frame,) = p.V2Reader().feed(answer)
    assert isinstance(frame, p.V2Frame) and p.StatusBlock.decode(frame.data).model == 61
    assert front.feed(bytes([p.NAK])) == answer  # NAK: the same frame again
    assert front.feed(bytes([p.ACK])) == bytes([p.EOT])
    assert front.feed(bytes.fromhex("02 00 00 3F 03 3C")) == b""  # no ENQ/ACK first: not received
    assert front.feed(bytes([p.ENQ])) == bytes([p.ACK])
    assert front.feed(bytes.fromhex("02 00 00 3F 03 00")) == bytes([p.NAK])  # bad LRC
    assert front.feed(bytes.fromhex("02 00 00 3F 03 3C")) == bytes([p.ACK])  # the repeat, without a new ENQ
    assert front.feed(bytes([p.EOT])) == bytes([p.ENQ])
    # the v3 transport still works on the same link
    assert _add(front, 1, 1, p.Cmd.STATE)[1] is not None


def test_powered_off_register_answers_nothing() -> None:
    front, core = _front()
    core.set_power(False)
    assert front.feed(p.encode_frame(1, p.encode_abort())) == b""
    core.set_power(True)
    assert _add(front, 2, 1, p.Cmd.STATUS)[1] is not None


# ------------------------------------------------------------------ malformed input never kills the emulator


def _still_answers(front: AtolFrontEnd) -> None:
    front.reset()  # what the inter-byte timeout does to an unfinished frame
    # a task the noise added may have failed and stopped the buffer (§ buffer answers: Stopped, A5):
    # the client's documented way out is ABORT, which must be answered too
    answer = p.V3Reader().feed(front.feed(p.encode_frame(0x32, p.encode_abort())))
    aborted = [f for f in answer if isinstance(f, p.V3Frame) and f.packet_id == 0x32]
    assert aborted and aborted[0].payload, "ABORT got no answer"
    out = p.V3Reader().feed(
        front.feed(p.encode_frame(0x33, p.encode_add(0xDE, p.encode_command(p.Cmd.STATE), p.AddFlags.NONE)))
    )
    frames = [f for f in out if isinstance(f, p.V3Frame) and f.packet_id in (0x33, p.ASYNC_ID) and f.payload]
    assert [f.packet_id for f in frames] == [0x33, p.ASYNC_ID]
    result = p.decode_buffer_answer(frames[1].payload)
    assert result.tid == 0xDE and result.data[0] == 0x55


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_kill_the_emulator(noise: bytes) -> None:
    front, _ = _front()
    front.feed(noise)
    _still_answers(front)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 0xDF), st.binary(max_size=200))
@example(0, bytes.fromhex("c5 00 01 00 00"))  # an ACK-and-ADD whose task fails: the buffer stops (A5) until ABORT
def test_random_payloads_in_good_frames_never_kill_the_emulator(packet_id: int, payload: bytes) -> None:
    front, _ = _front()
    front.feed(p.encode_frame(packet_id, payload))
    _still_answers(front)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([*sorted(int(c) for c in p.Cmd), 0, 255]), st.binary(max_size=120), st.sampled_from([0, 1, 30]))
def test_random_tasks_never_kill_the_emulator(command: int, params: bytes, mode_password: int) -> None:
    front, core = _front()
    _add(front, 1, 1, p.Cmd.ENTER_MODE, p.EnterMode(1, 30).encode(), flags=p.AddFlags.NONE)
    frames = _send(
        front, 2, p.encode_add(2, p.encode_command(command, params), p.AddFlags.NEED_RESULT | p.AddFlags.IGNORE_ERROR)
    )
    assert frames[0].packet_id == 2
    result = p.decode_buffer_answer(frames[1].payload)
    assert result.is_async and result.data  # every task gets an application answer
    assert not any(entry.event == "emulator error" for entry in core.journal)
    _still_answers(front)
