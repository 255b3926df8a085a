"""Median per-command round trip of the Pirit driver (status 0x00) against the emulator over a
pty, beside a raw pyserial write/read of the same bytes to a trivial echo on a pty of the same
kind, measured side by side in one run.  Prints the ratio.

    .venv/bin/python benchmarks/pirit_roundtrip.py [--rounds 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import serial

from devices.emulator.serve import Echo, serve
from devices.pirit import protocol as p
from devices.pirit.driver import PiritDriver
from harness import open_kkt


def measure_raw(rounds: int) -> list[float]:
    server = serve(Echo, "pty")
    port = serial.serial_for_url(server.url, baudrate=57600, timeout=2)
    frame = p.encode_request(0x00, packet_id=0x21)
    samples = []
    try:
        for _ in range(rounds):
            t0 = time.perf_counter()
            port.write(frame)
            got = port.read(len(frame))
            samples.append(time.perf_counter() - t0)
            assert got == frame
    finally:
        port.close()
        server.close()
    return samples


def measure_driver(rounds: int, spec: str = "emulator:kf") -> list[float]:
    samples = []
    with open_kkt(spec) as handle:  # the same path a scenario takes: emulator on a pty, driver, link
        driver = handle.kkt
        assert isinstance(driver, PiritDriver)  # the raw call() is the Pirit driver's own
        for _ in range(rounds):
            t0 = time.perf_counter()
            driver.call(0x00)
            samples.append(time.perf_counter() - t0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    measure_raw(100), measure_driver(100)  # warm-up
    raw, drv = [], []
    for _ in range(5):  # interleave so machine noise hits both alike
        raw += measure_raw(args.rounds // 5)
        drv += measure_driver(args.rounds // 5)
    raw_med, drv_med = statistics.median(raw), statistics.median(drv)
    print(f"raw pyserial write/read to echo on a pty : median {raw_med * 1e6:8.1f} µs  (n={len(raw)})")
    print(f"PiritDriver status 0x00 vs emulator, pty : median {drv_med * 1e6:8.1f} µs  (n={len(drv)})")
    print(f"ratio driver/raw                         : {drv_med / raw_med:.2f}x")


if __name__ == "__main__":
    main()
