"""Shared parts of the front-end fuzzer (``benchmarks/fuzz_frontends.py``): the tally, the
core's fiscal fingerprint, call counters, the journal watch and the protocol-neutral mutations."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devices.emulator.core import FiscalCore
from devices.pirit import protocol as pp

Mutator = Callable[[random.Random, bytes], bytes]


# --------------------------------------------------------------------------------- tallies


@dataclass
class Tally:
    name: str
    frames: int = 0
    invalid: int = 0  # frames holding no valid request: checked for fiscal changes
    crashes: int = 0
    hangs: int = 0
    fiscal: int = 0
    executed: int = 0
    elapsed: float = 0.0
    examples: list[str] = field(default_factory=list)

    def fail(self, kind: str, data: bytes) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < 5:
            self.examples.append(f"{self.name} {kind}: {data.hex(' ')}")

    def line(self) -> str:
        return (
            f"{self.name:<8} frames {self.frames:>7} ({self.invalid} invalid)  crashes {self.crashes}  "
            f"hangs {self.hangs}  fiscal changes {self.fiscal}  invalid executed {self.executed}  "
            f"elapsed {self.elapsed:6.1f} s"
        )

    @property
    def clean(self) -> bool:
        return not (self.crashes or self.hangs or self.fiscal or self.executed)


def fingerprint(core: FiscalCore) -> tuple[Any, ...]:
    fn, doc = core.fn, core.document
    return (
        core.last_fd().number,
        len(fn.archive),
        fn.registrations_done,
        int(fn.tax_systems),
        fn.phase,
        fn.work_mode,
        core.shift.number,
        core.shift.is_open,
        core.shift.receipts,
        None if doc is None else (doc.kind, doc.state, doc.total, doc.paid, len(doc.items)),
        core.pending is not None,
        core.cash,
        core.now(),
    )


def count_calls(obj: object, name: str) -> list[int]:
    """Wrap ``obj.name`` so that every call increments the returned counter."""
    counter = [0]
    inner = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        counter[0] += 1
        return inner(*args, **kwargs)

    setattr(obj, name, wrapper)
    return counter


class ErrorWatch:
    """Counts the "emulator error" entries journaled since the last call (reads only new entries)."""

    def __init__(self, core: FiscalCore) -> None:
        self._core = core
        self._seen = len(core.journal)

    def new(self) -> int:
        journal = self._core.journal
        fresh = journal[min(self._seen, len(journal)) :]
        self._seen = len(journal)
        return sum(1 for entry in fresh if entry.event == "emulator error")


# --------------------------------------------------------------------------------- generic mutations


def bitflip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(1, len(data))]


def delete(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, 4) :]


def inserter(special: bytes) -> Mutator:
    def insert(rng: random.Random, data: bytes) -> bytes:
        at = rng.randrange(len(data) + 1)
        extra = bytes(
            rng.choice(special) if rng.random() < 0.5 else rng.randrange(256) for _ in range(rng.randint(1, 8))
        )
        return data[:at] + extra + data[at:]

    return insert


def junker(special: bytes) -> Callable[[random.Random], bytes]:
    def junk(rng: random.Random) -> bytes:
        return bytes(
            rng.choice(special) if rng.random() < 0.3 else rng.randrange(256) for _ in range(rng.randint(1, 64))
        )

    return junk


_FILL = bytes(b if 0x20 <= b < 0xFD else 0x20 + b % 0x40 for b in range(256))


def filler(rng: random.Random, size: int) -> bytes:
    """Random bytes 0x20..0xFC: no framing byte of either protocol."""
    return rng.randbytes(size).translate(_FILL)


def text(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.3:
        return str(rng.randint(-10, 10**6))
    if pick < 0.4:
        return rng.choice(["", "1E999999", "-0.00", "NaN", "9" * 5000, "1.2.3", "010121", "235959", "311399"])
    raw = bytes(rng.randrange(0x20, 0x100) for _ in range(rng.randint(0, 20)))
    return raw.decode(pp.ENCODING)
