"""How the stand scales, measured side by side in one run; every figure with its goal and PASS/MISS.

(a) per-command round trip: PiritDriver status 0x00 against the emulator on a pty, beside a raw
    pyserial write/read to an echo on a pty of the same kind (benchmarks/pirit_roundtrip.py),
    interleaved                                                              goal <= 1.5x
(b) the scenario suite on the four emulators (benchmarks/suite_time.py), pytest started as
    ``kkt-hil run`` starts it (its ``-p no:...``), the processes writing bytecode caches as on a
    user's machine (the output says when this environment had that off): ms per scenario run --
    the run's wall time less a ``--collect-only`` run's (interpreter, plugins, collection), over
    the runs; the whole wall time per run beside it -- and 1 vs 2 workers   goal <= 10 ms, >= 1.6x
    beside them: plain ``pytest scenarios`` (every plugin), and what 2 processes get of this
    machine: 2 CPU-bound processes at once vs 1 (the ceiling of -n 2)       figures, no goal
(c) memory: peak RSS of one ``kkt-hil emulate kf --pty`` process under load (os.wait4's
    ru_maxrss), and of a single-process 4-register suite run (RUSAGE_CHILDREN ru_maxrss: the
    largest child so far)                                                   figures, no goal
(d) through a real ser2net as RFC 2217 (``emulator:all?transport=rfc2217``) vs the direct pty:
    the scenario suite's wall time, interleaved runs (raw TCP, ``transport=ser2net``, beside
    them)                                                                    goal <= 1.3x
    and per command (``emulator:kf``), interleaved, with the floor: a bare socket through the
    same ser2net vs a bare pty, no driver                                    figures, no goal
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
from harness.cli.run import UNUSED_PLUGINS
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


#: pytest's arguments for the plugins ``kkt-hil run`` leaves out of a run of the shipped scenarios
AS_RUN = [arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")]
AS_RUN_TEXT = " ".join(AS_RUN)
CPU_LOOP = "x = 0\nfor i in range(3_000_000):\n    x += i"  # ~0.3 s of one core


def collect_only() -> float:
    """Wall time of a scenario run that collects and runs nothing: what every run pays once."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "scenarios"), "-q", "-p", "no:randomly", "--collect-only", *AS_RUN],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - t0


def cpu_bound(processes: int) -> float:
    """Wall time of ``processes`` CPU-bound Python processes started at once."""
    t0 = time.perf_counter()
    running = [subprocess.Popen([sys.executable, "-c", CPU_LOOP]) for _ in range(processes)]
    for proc in running:
        proc.wait()
    return time.perf_counter() - t0


@contextlib.contextmanager
def bytecode_cached() -> Iterator[bool]:
    """The suite's pytest processes write (and read) bytecode caches, as they do on a user's
    machine; True when this environment had turned that off (PYTHONDONTWRITEBYTECODE): a module
    without a cache is compiled again in every process, the controller and each worker."""
    was = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        yield was is not None
    finally:
        if was is not None:
            os.environ["PYTHONDONTWRITEBYTECODE"] = was


def suite(repeat: int) -> float:
    """Prints (b); the peak RSS of the first single-process run in MiB."""
    print(f"(b) scenario runs on 4 emulators (kf, dkf, start, atol), pytest as `kkt-hil run` starts it: {AS_RUN_TEXT}")
    singles, pairs, fixed, plain, cpu = [], [], [], [], []
    outcomes: dict[str, str] = {}
    suite_rss = 0
    with bytecode_cached() as overridden:
        if overridden:
            print("  this environment sets PYTHONDONTWRITEBYTECODE; the suite's processes write bytecode caches, as a")
            print("  user's machine does (else every module changed since its last cache is compiled in each process)")
        collect_only()  # warm-up: the caches written
        for i in range(repeat):  # interleaved: 1 worker, 2 workers, collect-only, plain pytest, CPU ceiling
            elapsed, outcomes = run_suite(AS_RUN)
            if i == 0:  # the largest child so far: this run (the emulator process of (c) is smaller)
                suite_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            singles.append(elapsed)
            pairs.append(run_suite([*AS_RUN, "-n", "2"])[0])
            fixed.append(collect_only())
            plain.append(run_suite([])[0])
            cpu.append(2 * cpu_bound(1) / cpu_bound(2))
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
    report("plain `pytest scenarios` (every plugin), 1 worker", f"{statistics.median(plain):6.2f} s wall")
    report("this machine: 2 CPU-bound processes vs 1", f"{statistics.median(cpu):8.2f}x (the ceiling of -n 2)")
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


def rfc2217(rounds: int, suite_repeat: int) -> None:
    """``?transport=rfc2217``: the emulators' ptys exported by a real ser2net (harness.ser2net),
    against the direct pty -- the suite (``suite_repeat`` interleaved runs each; 0: left out) and
    one command; the floor is what the ser2net hop costs a bare socket client."""
    print("(d) ser2net RFC 2217 vs the direct pty")
    spec = "emulator:kf?transport=rfc2217"
    try:
        measure_driver(10, spec)
    except (KktError, OSError, ValueError) as exc:
        print(f"  not available: {spec}: {exc}")
        return
    if suite_repeat:
        specs = ("emulator:all", "emulator:all?transport=rfc2217", "emulator:all?transport=ser2net")
        walls: list[list[float]] = [[] for _ in specs]
        outcomes: list[dict[str, str]] = [{} for _ in specs]
        for _ in range(suite_repeat):
            for i, suite_spec in enumerate(specs):
                elapsed, outcomes[i] = run_suite([f"--kkt={suite_spec}"])
                walls[i].append(elapsed)
        direct, through, raw = (statistics.median(w) for w in walls)
        same = outcomes[1] == outcomes[0] and outcomes[2] == outcomes[0]
        report(f"suite, direct pty ({len(outcomes[0])} runs)", f"{direct:6.2f} s wall")
        report("suite through ser2net, RFC 2217", f"{through:6.2f} s wall")
        report("suite through ser2net, raw TCP", f"{raw:6.2f} s wall, {raw / direct:.2f}x")
        report("same outcomes through ser2net", str(same))
        ratio = through / direct
        report("ratio suite RFC 2217 / pty", f"{ratio:8.2f}x", "<= 1.3x", ratio <= 1.3 and same)
    block = max(1, rounds // 10)
    pty, rfc = interleaved(5, lambda: measure_driver(block), lambda: measure_driver(block, spec))
    pty_med, rfc_med = statistics.median(pty), statistics.median(rfc)
    report("PiritDriver status 0x00, direct pty", f"{pty_med * 1e6:8.1f} µs median")
    report("PiritDriver status 0x00, RFC 2217 (ser2net)", f"{rfc_med * 1e6:8.1f} µs median")
    report("ratio per command RFC 2217 / pty", f"{rfc_med / pty_med:8.2f}x")
    bare_pty, bare_net = hop_floor(rounds)
    report("floor: bare pty write/read, 15-byte answer", f"{bare_pty * 1e6:8.1f} µs median")
    report(
        "floor: bare socket through ser2net (raw)",
        f"{bare_net * 1e6:8.1f} µs median, +{(bare_net - bare_pty) * 1e6:.0f} µs",
    )


def hop_floor(rounds: int) -> tuple[float, float]:
    """Medians of a 5-byte request and its 15-byte answer (an echo front-end on a pty): over the
    pty itself, and over a plain socket through a ser2net exporting it raw, as the emulators'
    exports are configured (harness.ser2net.lend) -- what the hop costs without any client code."""
    import socket

    from devices.emulator.serve import PtyServer
    from harness import ser2net

    class Answer:
        def feed(self, data: bytes) -> bytes:
            return b"A" * 15

        def pending(self) -> bool:
            return False

        def reset(self) -> None:
            pass

    def exchange(send: Callable[[bytes], object], receive: Callable[[], bytes]) -> float:
        t0 = time.perf_counter()
        send(b"?" * 5)
        got = 0
        while got < 15:
            got += len(receive())
        return time.perf_counter() - t0

    server, exported_server = PtyServer(Answer), PtyServer(Answer)  # one reader a pty
    exported = ser2net.lend(exported_server.path, mode="raw")
    fd = os.open(server.path, os.O_RDWR | os.O_NOCTTY)
    sock = socket.create_connection(("127.0.0.1", exported.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        block = max(1, rounds // 5)
        bare = interleaved(
            5,
            lambda: [exchange(lambda d: os.write(fd, d), lambda: os.read(fd, 100)) for _ in range(block)],
            lambda: [exchange(sock.sendall, lambda: sock.recv(100)) for _ in range(block)],
        )
    finally:
        sock.close()
        os.close(fd)
        exported.release()
        server.close()
        exported_server.close()
    return statistics.median(bare[0]), statistics.median(bare[1])


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
    rfc2217(args.rounds, 0 if args.skip_suite else args.suite_repeat)
    line_rate(5)
    device_pace()


if __name__ == "__main__":
    main()
