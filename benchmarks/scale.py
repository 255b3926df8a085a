"""How the stand scales, measured side by side in one run; every figure with its goal and PASS/MISS.

(a) per-command round trip: PiritDriver status 0x00 against the emulator on a pty, beside a raw
    pyserial write/read to an echo on a pty of the same kind (benchmarks/pirit_roundtrip.py),
    interleaved                                                              goal <= 1.5x
(b) the scenario suite on the four emulators (benchmarks/suite_time.py): ms per scenario run --
    the run's wall time less a ``--collect-only`` run's (interpreter, plugins, collection), over
    the runs; the whole wall time per run beside it -- and 1 vs 2 workers   goal <= 10 ms, >= 1.6x
(c) memory: peak RSS of one ``kkt-hil emulate kf --pty`` process under load (os.wait4's
    ru_maxrss), and of a single-process 4-register suite run (RUSAGE_CHILDREN ru_maxrss: the
    largest child so far)                                                   figures, no goal
(d) through a real ser2net as RFC 2217 (``emulator:kf?transport=rfc2217``) vs the direct pty,
    per command, interleaved                                                 goal <= 1.3x
(e) line-rate fidelity with ``pace=line``: answer bytes per second at 57600 and 115200 baud as a
    share of the line rate (10 bits a byte, 8N1)                             goal >= 95 %
    and ``pace=device``: a short session's wall time against the sum of the typical command
    times the emulator applies (devices/emulator/latency.py)                 goal >= 95 %

    .venv/bin/python benchmarks/scale.py [--rounds 2000] [--suite-repeat 2] [--skip-suite]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import serial
from pirit_roundtrip import measure_driver, measure_raw
from suite_time import run as run_suite

from devices.atol.protocol import answer_timeout as atol_answer_timeout
from devices.emulator.latency import TYPICAL_SHARE
from devices.pirit import protocol as p
from devices.pirit.protocol import COMMAND_TIMEOUTS as PIRIT_TIMEOUTS
from devices.pirit.protocol import DEFAULT_TIMEOUT as PIRIT_DEFAULT_TIMEOUT
from harness import families, open_kkt
from harness.device import Item
from harness.errors import KktError

ROOT = Path(__file__).resolve().parents[1]
KKT_HIL = Path(sys.executable).with_name("kkt-hil")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(label: str, figure: str, goal: str = "", ok: bool | None = None) -> None:
    """One line: what, the figure, and its goal with PASS/MISS (a figure without a goal: neither)."""
    tail = f"goal {goal:<9} {verdict(ok)}" if ok is not None else ""
    print(f"  {label:<48} {figure:<32} {tail}".rstrip())


def interleaved(blocks: int, *measures: Callable[[], list[float]]) -> list[list[float]]:
    """Run each measure ``blocks`` times, taking turns, so that machine noise hits them alike."""
    samples: list[list[float]] = [[] for _ in measures]
    for _ in range(blocks):
        for i, measure in enumerate(measures):
            samples[i] += measure()
    return samples


# ------------------------------------------------------------------------------ (a) round trip


def round_trip(rounds: int) -> None:
    print("(a) per-command round trip, pty")
    measure_raw(100), measure_driver(100)  # warm-up
    block = max(1, rounds // 5)
    raw, driver = interleaved(5, lambda: measure_raw(block), lambda: measure_driver(block))
    raw_med, drv_med = statistics.median(raw), statistics.median(driver)
    report("raw pyserial write/read, echo on a pty", f"{raw_med * 1e6:8.1f} µs median")
    report("PiritDriver status 0x00, emulator on a pty", f"{drv_med * 1e6:8.1f} µs median")
    ratio = drv_med / raw_med
    report("ratio driver / raw", f"{ratio:8.2f}x", "<= 1.5x", ratio <= 1.5)


# ------------------------------------------------------------------------------ (b) + (c) suite


def collect_only() -> float:
    """Wall time of a scenario run that collects and runs nothing: what every run pays once."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "scenarios"), "-q", "-p", "no:randomly", "--collect-only"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - t0


def suite(repeat: int) -> float:
    """Prints (b); the peak RSS of the first single-process run in MiB."""
    print("(b) scenario runs on 4 emulators (kf, dkf, start, atol)")
    singles, pairs, fixed = [], [], []
    outcomes: dict[str, str] = {}
    suite_rss = 0
    for i in range(repeat):  # interleaved: 1 worker, 2 workers, collect-only
        elapsed, outcomes = run_suite([])
        if i == 0:  # the largest child so far: this run (the emulator process of (c) is smaller)
            suite_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        singles.append(elapsed)
        pairs.append(run_suite(["-n", "2"])[0])
        fixed.append(collect_only())
    runs = len(outcomes)
    counts = {value: list(outcomes.values()).count(value) for value in sorted(set(outcomes.values()))}
    single, pair, base = statistics.median(singles), statistics.median(pairs), statistics.median(fixed)
    per_run = (single - base) / runs * 1000
    report(f"{runs} runs {counts}", f"{single:6.2f} s wall, 1 worker")
    report("collect-only run (startup, collection)", f"{base:6.2f} s wall")
    report("ms per scenario run (wall - collect-only)", f"{per_run:8.1f} ms", "<= 10 ms", per_run <= 10)
    report("ms per scenario run (whole wall time)", f"{single / runs * 1000:8.1f} ms")
    speedup = single / pair
    report("-n 2 vs 1 worker", f"{pair:6.2f} s, speed-up {speedup:.2f}x", ">= 1.6x", speedup >= 1.6)
    return suite_rss / 1024


def emulator_rss(rounds: int) -> float:
    """Peak RSS in MiB of ``kkt-hil emulate kf --pty`` driven through its pty (status, and a sale
    every 20 commands)."""
    proc = subprocess.Popen([str(KKT_HIL), "emulate", "kf", "--pty"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    first = proc.stdout.readline().split()
    if first[:1] != ["listening"]:
        proc.kill()
        raise SystemExit(f"kkt-hil emulate did not start: {first}")
    try:
        with open_kkt(f"url:{first[1]}#model=kf") as handle:
            kkt = handle.kkt
            kkt.open_shift()
            for i in range(rounds):
                if i % 20:
                    kkt.status()
                else:
                    kkt.sell([Item("Сахар", Decimal("1.00"))])
            kkt.close_shift()
    finally:
        proc.terminate()
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
    return usage.ru_maxrss / 1024


# ------------------------------------------------------------------------------ (d) RFC 2217


def rfc2217(rounds: int) -> None:
    """Marked for the ser2net work: ``emulator:kf?transport=rfc2217`` against the direct pty."""
    print("(d) ser2net RFC 2217 vs the direct pty")
    spec = "emulator:kf?transport=rfc2217"
    try:
        measure_driver(10, spec)
    except (KktError, OSError, ValueError) as exc:
        print(f"  not available yet: {spec}: {exc}")
        return
    block = max(1, rounds // 10)
    pty, rfc = interleaved(5, lambda: measure_driver(block), lambda: measure_driver(block, spec))
    pty_med, rfc_med = statistics.median(pty), statistics.median(rfc)
    report("PiritDriver status 0x00, direct pty", f"{pty_med * 1e6:8.1f} µs median")
    report("PiritDriver status 0x00, RFC 2217 (ser2net)", f"{rfc_med * 1e6:8.1f} µs median")
    ratio = rfc_med / pty_med
    report("ratio RFC 2217 / pty", f"{ratio:8.2f}x", "<= 1.3x", ratio <= 1.3)


# ------------------------------------------------------------------------------ (e) pacing


@contextlib.contextmanager
def paced_emulator(model: str, pace: str) -> Iterator[str]:
    """An emulator of ``model`` with ``pace=`` served on a pty: its URL."""
    family = families.family(families.model(model).family)
    emulated = family.start_emulator(model, {"pace": pace})
    try:
        yield emulated.serve("pty")
    finally:
        emulated.close()


def line_rate(batches: int, batch: int = 40) -> None:
    """Marked for the pacing work: answer bytes/s with ``pace=line`` as a share of the line rate.

    The host opens the pty at the baud rate (the emulator reads its line settings) and sends
    ``batch`` status requests in one write, so that their answers leave as one paced stream; it
    stamps every chunk as it arrives.  The rate is the bytes after the stream's first chunk over
    the time from that chunk to the last (byte k leaves k byte-times after the first)."""
    print("(e) line-rate fidelity, pace=line")
    from devices.emulator import serve as serving

    if "line" not in getattr(serving, "PACE_MODES", ()):
        print("  not available yet: the emulator has no pace=line")
        return
    ids = p.PacketIds()
    requests = b"".join(p.encode_request(0x00, packet_id=next(ids)) for _ in range(batch))
    for baud in (57600, 115200):
        streamed, spent = 0, 0.0
        with paced_emulator("kf", "line") as url:
            port = serial.serial_for_url(url, baudrate=baud, timeout=2)
            try:
                for _ in range(batches):
                    port.write(requests)
                    reader = p.FrameReader()
                    first_at, last_at, after_first, answers = 0.0, 0.0, 0, 0
                    while answers < batch:
                        chunk = port.read(max(1, port.in_waiting))
                        if not chunk:
                            raise SystemExit(f"no answer at {baud} baud")
                        now = time.perf_counter()
                        if first_at:
                            after_first += len(chunk)
                        else:
                            first_at = now
                        last_at = now
                        answers += sum(isinstance(event, p.Frame) for event in reader.feed(chunk))
                    streamed += after_first
                    spent += last_at - first_at
            finally:
                port.close()
        line_bytes = baud / 10  # 8N1: start, 8 data, stop
        rate = streamed / spent if spent else 0.0
        share = rate / line_bytes * 100
        report(f"{baud} baud: {rate:7.0f} B/s of {line_bytes:.0f} B/s", f"{share:8.1f} %", ">= 95 %", share >= 95)


def typical_time(family: str, command: str) -> float:
    """The time ``pace=device`` applies to a command of the response times ("0x00 status", "3Fh STATUS")."""
    code = command.split()[0]
    if family == "pirit":
        timeout = PIRIT_TIMEOUTS.get(int(code, 16), PIRIT_DEFAULT_TIMEOUT)
    else:
        timeout = atol_answer_timeout(int(code.removesuffix("h"), 16))
    return TYPICAL_SHARE * timeout


def device_pace() -> None:
    """``pace=device``: a session (connect, status) through the driver; its commands' answer
    times (the trace's response times) against the typical times the emulator applies to them
    (devices/emulator/latency.py): how far a run's time estimates the real registers' from the
    table alone."""
    print(f"(e) device pacing, pace=device (typical time: {TYPICAL_SHARE:.2f} of each vendor timeout)")
    for model in ("kf", "atol"):
        with open_kkt(f"emulator:{model}?pace=device") as handle:
            handle.kkt.status()
            timings = [t for t in handle.trace.timings if t.answered]
            family = handle.family.name
        measured = sum(t.seconds for t in timings)
        expected = sum(typical_time(family, t.command) for t in timings)
        share = expected / measured * 100 if measured else 0.0
        report(
            f"{model}: {len(timings)} commands, table {expected:5.2f} s",
            f"{measured:6.2f} s answers, {share:5.1f} %",
            ">= 95 %",
            share >= 95,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000, help="round trips per measure in (a), (c), (d)")
    parser.add_argument("--suite-repeat", type=int, default=2, help="suite runs per worker count in (b)")
    parser.add_argument("--skip-suite", action="store_true", help="leave out (b) and the suite's memory")
    args = parser.parse_args()
    round_trip(args.rounds)
    emulator = emulator_rss(args.rounds)  # before any suite run: RUSAGE_CHILDREN keeps the largest child
    suite_rss = None if args.skip_suite else suite(args.suite_repeat)
    print("(c) memory, peak RSS")
    report(f"one `kkt-hil emulate kf --pty`, {args.rounds} commands", f"{emulator:8.1f} MiB")
    if suite_rss is not None:
        report("4-register suite run, 1 process", f"{suite_rss:8.1f} MiB")
    rfc2217(args.rounds)
    line_rate(5)
    device_pace()


if __name__ == "__main__":
    main()
