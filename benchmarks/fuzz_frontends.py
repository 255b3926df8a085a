"""Fuzz the Pirit and АТОЛ (v3 and v2) wire front-ends in process: seeded mutations of valid
frames, each followed by a valid status probe whose answer must arrive.

    .venv/bin/python benchmarks/fuzz_frontends.py [--frames N] [--seed S]

The front-end objects are fed bytes directly (no sockets, no pty).  Mutations: bit flips,
truncation, insertion, deletion, splices of two frames, bad packet ids, bad lengths, random
junk, duplicates, re-sealed frames with random fields (valid by the codec: they run), and a
valid neutral query behind the mutated bytes in the same chunk.  Counted per front-end:

* crashes: an exception out of ``feed()``, or an "emulator error" the front-end journaled;
* hangs: the probe (Pirit 0x00, АТОЛ 3Fh) or the valid query behind got no (right) answer;
* fiscal changes: the core's fiscal state (FD number, archive, shift, document, registrations,
  tax systems, cash, clock) changed across bytes that hold no valid request;
* invalid executed: a command ran although the bytes hold no valid request.

Validity is decided with the codec: Pirit ``FrameReader`` + ``decode_request`` (packet id
0x20..0xF0, password PIRI); АТОЛ v3 ``V3Reader`` + ``decode_buffer_command``; АТОЛ v2 a
good-LRC frame after the ENQ/ACK handshake (a v2 frame without it must not run).  Pirit and v3
get the probe in the same chunk as the mutated bytes; on v2 the host waits for each reply, so
the probe is its own exchange, after the inter-byte timeout has dropped an unfinished frame
(``reset()``, as the serving loop does).  Exit status 1 when any count is not zero.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz_common import (
    ErrorWatch,
    Mutator,
    Tally,
    bitflip,
    count_calls,
    delete,
    filler,
    fingerprint,
    inserter,
    junker,
    text,
    truncate,
)

from devices.atol import protocol as ap
from devices.atol.emulator import AtolFrontEnd
from devices.emulator.build import build_emulator
from devices.pirit import protocol as pp
from devices.pirit.emulator import PiritFrontEnd

# --------------------------------------------------------------------------------- Pirit

PIRIT_SPECIAL = bytes([pp.STX, pp.ETX, pp.FS, pp.ENQ, pp.ACK, pp.NAK, pp.LF, 0x24, 0x30, 0x46])
PIRIT_REQUESTS: list[tuple[int, list[pp.Field]]] = [
    (0x00, []),
    (0x02, [1]),
    (0x02, [70]),
    (0x78, [7]),
    (0x04, []),
    (0x06, [1]),
    (0x13, []),
    (0x10, ["011220", "090000"]),
    (0x23, ["Кассир"]),
    (0x30, [2, 1, "Кассир", "", 1]),
    (0x42, ["Сахар", "", "1", "100.00", 3]),
    (0x44, []),
    (0x47, [0, "100.00"]),
    (0x31, [2]),
    (0x32, []),
    (0x20, ["Кассир"]),
    (0x21, ["Кассир"]),
    (0x14, ["011220", "100000"]),
    (0x60, [0, "", "", 3, 0, "Кассир", "011220", "090000"]),
]
PROBE_ID, BEHIND_ID = 0x3F, 0x3E
PROBE = pp.encode_request(0x00, packet_id=PROBE_ID)
BEHIND = pp.encode_request(0x02, [1], packet_id=BEHIND_ID)


def pirit_base(rng: random.Random) -> bytes:
    command, fields = rng.choice(PIRIT_REQUESTS)
    return pp.encode_request(command, fields, packet_id=rng.randint(0x20, 0xF0), fs_when_empty=rng.random() < 0.3)


def pirit_reseal(body: bytes) -> bytes:
    """STX + body + ETX + a correct CRC (``body`` is password .. data)."""
    return bytes([pp.STX]) + body + bytes([pp.ETX]) + b"%02X" % pp.crc(body + bytes([pp.ETX]))


def pirit_bad_id(rng: random.Random, data: bytes) -> bytes:
    bad = rng.choice([*range(0x00, 0x20), *range(0xF1, 0x100)])
    body = data[1:5] + bytes([bad]) + data[6:-3]
    return pirit_reseal(body) if rng.random() < 0.7 else bytes([pp.STX]) + body + data[-3:]


def pirit_bad_length(rng: random.Random, data: bytes) -> bytes:
    pick = 3 if rng.random() < 0.05 else rng.randrange(3)  # oversized frames are slow: a few hundred
    if pick == 0:
        return data[:-3] + data[-2:]  # no ETX
    if pick == 1:
        return data[:-1]  # one CRC character
    if pick == 2:
        return data[:-3] + bytes([pp.ETX]) + data[-3:]  # two ETX
    return data[:6] + filler(rng, 4200) + data[-3:]  # longer than the reader's 4096 bytes


def pirit_fields(rng: random.Random, data: bytes) -> bytes:
    """A frame with random command/fields, sealed correctly: valid by the codec, so it runs."""
    command = rng.choice([c for c, _ in PIRIT_REQUESTS] + [rng.randrange(256)])
    fields = [text(rng) for _ in range(rng.randint(0, 8))]
    return pp.encode_request(command, fields, packet_id=rng.randint(0x20, 0xF0))


def pirit_frames(out: bytes) -> list[bytes]:
    return [event.raw for event in pp.FrameReader().feed(out) if isinstance(event, pp.Frame)]


def pirit_valid(chunk: bytes) -> bool:
    for event in pp.FrameReader().feed(chunk):
        if isinstance(event, pp.Frame):
            try:
                request = pp.decode_request(event.raw)
            except pp.FrameError:
                continue
            if pp.MIN_PACKET_ID <= request.packet_id <= pp.MAX_PACKET_ID and request.password == pp.DEFAULT_PASSWORD:
                return True
    return False


def fuzz_pirit(frames: int, rng: random.Random) -> Tally:
    tally = Tally("pirit")
    core = build_emulator("kf").core
    front = PiritFrontEnd(core)
    dispatched = count_calls(front, "_dispatch")
    errors = ErrorWatch(core)
    front.feed(pp.encode_request(0x10, ["011220", "090000"], packet_id=0x21))  # start of work
    junk = junker(PIRIT_SPECIAL)
    mutators: list[Mutator] = [
        bitflip,
        truncate,
        delete,
        inserter(PIRIT_SPECIAL),
        pirit_bad_id,
        pirit_bad_length,
        lambda r, d: junk(r),
        lambda r, d: d[: r.randrange(1, len(d))] + pirit_base(r)[r.randrange(1, 12) :],  # splice
        lambda r, d: junk(r) + d,
        pirit_fields,
    ]
    start = time.perf_counter()
    for _ in range(frames):
        mutated = rng.choice(mutators)(rng, pirit_base(rng))
        behind = rng.random() < 0.3
        chunk = mutated + (BEHIND if behind else b"")
        valid = pirit_valid(mutated)
        before, calls = fingerprint(core), dispatched[0]
        tally.frames += 1
        tally.invalid += not valid
        try:
            out = front.feed(chunk + PROBE)
        except Exception:  # noqa: BLE001 -- counted, then the link carries on
            tally.fail("crashes", chunk)
            tally.fail("hangs", chunk)  # the probe in the same chunk went unanswered
            front.reset()
            continue
        if errors.new():
            tally.fail("crashes", chunk)
        got = [(a.packet_id, a.command, a.error) for a in map(pp.decode_response, pirit_frames(out))]
        wanted = [(BEHIND_ID, 0x02), (PROBE_ID, 0x00)] if behind else [(PROBE_ID, 0x00)]
        if [g[:2] for g in got[-len(wanted) :]] != wanted or got[-1][2] != 0:
            tally.fail("hangs", chunk)
        if not valid:
            if fingerprint(core) != before:
                tally.fail("fiscal", chunk)
            if dispatched[0] - calls != 1 + behind:
                tally.fail("executed", chunk)
    tally.elapsed = time.perf_counter() - start
    return tally


# --------------------------------------------------------------------------------- АТОЛ

ATOL_SPECIAL = bytes([ap.V3_STX, 0xFD, 0xEE, 0xED, 0x02, 0x03, 0x10, 0x05, 0x06, 0x04, 0x15, 0xF0, 0xC1])
ATOL_TASKS: list[tuple[int, bytes]] = [
    (ap.Cmd.STATUS, b""),
    (ap.Cmd.STATE, b""),
    (ap.Cmd.DEVICE_TYPE, b""),
    (ap.Cmd.FN, b"\x30"),
    (ap.Cmd.ENTER_MODE, ap.EnterMode(1, 30).encode()),
    (ap.Cmd.ENTER_MODE, ap.EnterMode(3, 30).encode()),
    (ap.Cmd.EXIT_MODE, b""),
    (ap.Cmd.OPEN_SHIFT, b"\x00"),
    (ap.Cmd.OPEN_RECEIPT, b"\x00\x01"),
    (ap.Cmd.CANCEL_RECEIPT, b""),
    (ap.Cmd.Z_REPORT, b""),
    (ap.Cmd.REGISTRATION, b"\x02\x01"),
]


def atol_task(rng: random.Random) -> bytes:
    command, params = rng.choice(ATOL_TASKS)
    return ap.encode_command(command, params)


def v3_base(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.75:
        payload = ap.encode_add(rng.randint(1, 0xDF), atol_task(rng), rng.choice([0, 1, 3]))
    elif pick < 0.85:
        payload = ap.encode_req(rng.randint(0, 0xDF))
    elif pick < 0.95:
        payload = ap.encode_ack(rng.randint(0, 0xDF))
    else:
        payload = ap.encode_abort()
    return ap.encode_frame(rng.randint(0, 0xDF), payload)


def v3_bad_id(rng: random.Random, data: bytes) -> bytes:
    payload = next(i for i in ap.V3Reader().feed(data) if isinstance(i, ap.V3Frame)).payload
    bad = rng.choice([ap.ASYNC_ID, *range(0xE0, 0xFE), 0xFF])
    frame = ap.encode_frame(bad, payload)
    return frame if rng.random() < 0.7 else frame[:3] + bytes([rng.randrange(256)]) + frame[4:]


def v3_bad_length(rng: random.Random, data: bytes) -> bytes:
    length = (data[1] | data[2] << 7) + rng.choice([-3, -2, -1, 1, 2, 5, 100, 5000])
    length = max(0, min(length, ap.MAX_PAYLOAD_LEN))
    return data[:1] + bytes([length & 0x7F, length >> 7]) + data[3:]


def v3_fields(rng: random.Random, data: bytes) -> bytes:
    """A frame with a random task (or payload) under a good CRC: valid, so it runs."""
    if rng.random() < 0.7:
        command = rng.choice([c for c, _ in ATOL_TASKS] + [rng.randrange(256)])
        params = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        payload = ap.encode_add(rng.randint(1, 0xDF), ap.encode_command(command, params), rng.randrange(8))
    else:
        payload = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    return ap.encode_frame(rng.randint(0, 0xDF), payload)


def v2_after(chunk: bytes, start: int) -> bool:
    """A good-LRC v2 frame starts at some STX at or after ``start``."""
    at = chunk.find(ap.V2_STX, start)
    while at >= 0:
        if any(isinstance(i, ap.V2Frame) for i in ap.V2Reader().feed(chunk[at:])):
            return True
        at = chunk.find(ap.V2_STX, at + 1)
    return False


def v3_valid(chunk: bytes) -> bool:
    for item in ap.V3Reader(max_payload=4096).feed(chunk):
        if isinstance(item, ap.V3Frame) and item.payload and item.packet_id != ap.ASYNC_ID:
            try:
                ap.decode_buffer_command(item.payload)
            except ValueError:
                continue
            return True
    return ap.ENQ in chunk and v2_after(chunk, chunk.index(ap.ENQ))


class V3Probe:
    """ADD 3Fh (NeedResult | IgnoreError) with a fresh packet id and TId; then an ABORT."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> tuple[int, int, bytes]:
        self.n += 1
        pid, tid = 1 + self.n % 0xDF, 1 + (self.n * 7) % 0xDF
        task = ap.encode_command(ap.Cmd.STATUS)
        flags = ap.AddFlags.NEED_RESULT | ap.AddFlags.IGNORE_ERROR
        return pid, tid, ap.encode_frame(pid, ap.encode_add(tid, task, flags))


def v3_answered(out: bytes, pid: int, tid: int, strict: bool) -> bool:
    frames = [i for i in ap.V3Reader().feed(out) if isinstance(i, ap.V3Frame) and i.payload]
    sync = [f for f in frames if f.packet_id == pid]
    if not sync:
        return False
    if not strict:
        return True
    results = [ap.decode_buffer_answer(f.payload) for f in frames if f.packet_id == ap.ASYNC_ID]
    return any(r.tid == tid and r.status == ap.BufferStatus.ASYNC_RESULT and r.data[:1] == b"D" for r in results)


def fuzz_atol_v3(frames: int, rng: random.Random) -> Tally:
    tally = Tally("atol-v3")
    core = build_emulator("atol").core
    front = AtolFrontEnd(core)
    executed = count_calls(front, "_execute")
    errors = ErrorWatch(core)
    probe = V3Probe()
    junk = junker(ATOL_SPECIAL)
    behind_frame = ap.encode_frame(0xDE, ap.encode_req(0xDE))  # a neutral query: B3 "not found"
    mutators: list[Mutator] = [
        bitflip,
        truncate,
        delete,
        inserter(ATOL_SPECIAL),
        v3_bad_id,
        v3_bad_length,
        lambda r, d: junk(r),
        lambda r, d: d[: r.randrange(1, len(d))] + v3_base(r)[r.randrange(1, 6) :],  # splice
        lambda r, d: junk(r) + d,
        lambda r, d: d + d,  # duplicate
        v3_fields,
    ]
    start = time.perf_counter()
    for _ in range(frames):
        mutated = rng.choice(mutators)(rng, v3_base(rng))
        behind = rng.random() < 0.3
        chunk = mutated + (behind_frame if behind else b"")
        valid = v3_valid(mutated)
        pid, tid, probe_frame = probe.next()
        before, calls = fingerprint(core), executed[0]
        tally.frames += 1
        tally.invalid += not valid
        try:
            out = front.feed(chunk + probe_frame)
            cleanup = front.feed(ap.encode_frame(0xDD, ap.encode_abort()))  # an empty task buffer
            if front.pending():
                front.reset()
            front.feed(bytes([ap.EOT, ap.EOT]))  # an idle v2 line (junk may have sent ENQ): a known start
        except Exception:  # noqa: BLE001
            tally.fail("crashes", chunk)
            tally.fail("hangs", chunk)  # the probe in the same chunk went unanswered
            front.reset()
            continue
        if errors.new():
            tally.fail("crashes", chunk)
        answered = v3_answered(out, pid, tid, strict=not valid) and v3_answered(cleanup, 0xDD, 0, strict=False)
        if not answered or (behind and not v3_answered(out, 0xDE, 0, strict=False)):
            tally.fail("hangs", chunk)
        if not valid:
            if fingerprint(core) != before:
                tally.fail("fiscal", chunk)
            if executed[0] - calls != 1:
                tally.fail("executed", chunk)
    tally.elapsed = time.perf_counter() - start
    return tally


def v2_base(rng: random.Random) -> bytes:
    return ap.encode_v2_frame(atol_task(rng))


def v2_bad_length(rng: random.Random, data: bytes) -> bytes:
    if rng.random() < 0.95:  # oversized frames are slow: a few hundred per run
        return data[:-2] + data[-1:]  # ETX lost
    return data[:-2] + filler(rng, 4200) + data[-2:]  # longer than the reader's 4096 bytes


def v2_exchange(front: AtolFrontEnd, task: bytes) -> bool:
    """ENQ/ACK, frame/ACK, EOT/ENQ, ACK/answer, ACK/EOT: the whole §3.4 line discipline."""
    steps = [(bytes([ap.ENQ]), bytes([ap.ACK])), (ap.encode_v2_frame(task), bytes([ap.ACK]))]
    steps.append((bytes([ap.EOT]), bytes([ap.ENQ])))
    for sent, expected in steps:
        if front.feed(sent) != expected:
            return False
    items = ap.V2Reader().feed(front.feed(bytes([ap.ACK])))
    if len(items) != 1 or not isinstance(items[0], ap.V2Frame) or items[0].data[:1] != b"D":
        return False
    return front.feed(bytes([ap.ACK])) == bytes([ap.EOT])


def fuzz_atol_v2(frames: int, rng: random.Random) -> Tally:
    tally = Tally("atol-v2")
    core = build_emulator("atol").core
    front = AtolFrontEnd(core)
    executed = count_calls(front, "_execute")
    errors = ErrorWatch(core)
    junk = junker(ATOL_SPECIAL)
    status = ap.encode_command(ap.Cmd.STATUS)
    mutators: list[Mutator] = [
        bitflip,
        truncate,
        delete,
        inserter(ATOL_SPECIAL),
        v2_bad_length,
        lambda r, d: junk(r),
        lambda r, d: d[: r.randrange(1, len(d))] + v2_base(r)[r.randrange(1, 4) :],  # splice
        lambda r, d: junk(r) + d,
        lambda r, d: ap.encode_v2_frame(bytes(r.randrange(256) for _ in range(r.randint(1, 40)))),  # valid LRC
        lambda r, d: d,  # as is: must run only after the handshake
    ]
    start = time.perf_counter()
    for _ in range(frames):
        base = v2_base(rng)
        bad_lrc_behind = rng.random() < 0.1  # a complete bad frame, then the host's repeat behind it
        if bad_lrc_behind:  # (a wrong LRC of 0xFE is a v3 frame start, by the front-end's rule: not used)
            lrc = rng.choice([b for b in range(256) if b not in (base[-1], ap.V3_STX)])
            mutated = base[:-1] + bytes([lrc]) + ap.encode_v2_frame(status)
        else:
            mutated = rng.choice(mutators)(rng, base)
        handshake = bad_lrc_behind or rng.random() < 0.6
        start_at = 0 if handshake else (mutated.index(ap.ENQ) + 1 if ap.ENQ in mutated else len(mutated))
        valid = not bad_lrc_behind and v2_after(mutated, start_at)
        before, calls = fingerprint(core), executed[0]
        tally.frames += 1
        tally.invalid += not valid
        try:
            if handshake and front.feed(bytes([ap.ENQ])) != bytes([ap.ACK]):
                tally.fail("hangs", mutated)
            out = front.feed(mutated)
            if bad_lrc_behind and (out != bytes([ap.NAK, ap.ACK]) or executed[0] - calls != 1):
                tally.fail("hangs", mutated)
            if front.pending():
                front.reset()  # the inter-byte timeout (T6) drops an unfinished frame
            answered = v2_exchange(front, status)
        except Exception:  # noqa: BLE001
            tally.fail("crashes", mutated)
            tally.fail("hangs", mutated)
            front.reset()
            continue
        if errors.new():
            tally.fail("crashes", mutated)
        if not answered:
            tally.fail("hangs", mutated)
        if not valid:
            if fingerprint(core) != before:
                tally.fail("fiscal", mutated)
            if executed[0] - calls != 1 + bad_lrc_behind:
                tally.fail("executed", mutated)
    tally.elapsed = time.perf_counter() - start
    return tally


# --------------------------------------------------------------------------------- main


RUNS = (fuzz_pirit, fuzz_atol_v3, fuzz_atol_v2)


def run_one(index: int, frames: int, seed: int) -> Tally:
    """One front-end's run; its own seeded generator, so results do not depend on --jobs."""
    return RUNS[index](frames, random.Random(f"{seed}:{index}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="mutated frames per front-end")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2, help="front-ends fuzzed in parallel processes")
    args = parser.parse_args()
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_one, index, args.frames, args.seed) for index in range(len(RUNS))]
        tallies = [future.result() for future in futures]
    for tally in tallies:
        print(tally.line(), flush=True)
    for tally in tallies:
        for example in tally.examples:
            print(example, file=sys.stderr)
    return 0 if all(t.clean for t in tallies) else 1


if __name__ == "__main__":
    sys.exit(main())
