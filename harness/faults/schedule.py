"""The fault schedule and the engine that applies it to a byte stream (pure: no I/O, no clock).

A :class:`Schedule` says which faults to inject; an :class:`Injector` applies one to the two
directions of a link, fed chunk by chunk as the bytes pass (``tx``: host → device, ``rx``:
device → host).  Both the ``faulty://`` URL handler and the TCP fault proxy use it.

**Frames.**  Faults are placed by *frame* and byte: a frame is a run of bytes in one direction
that ends when bytes pass the other way — for a request/answer protocol, the Nth request (tx
frame N) and the Nth answer (rx frame N).  Frames count from 1, bytes within a frame from 0.
In the URL handler a write after a read also starts a new tx frame (:meth:`Injector.turn`), so
a request the register never answered (a truncated one) is not merged with the next.  Frame
boundaries do not depend on how the bytes were cut into reads and writes, so the same seed and
the same traffic give the same faults whatever the timing.

**Random faults.**  Each byte of a direction the schedule covers is hit with probability ``p``;
the decision, the kind (among ``kinds``) and the corruption mask come from a hash of
(seed, direction, frame, byte): reproducible, and independent of everything else on the link.

**Kinds.**
``drop``       the byte is lost;
``corrupt``    the byte is XORed with a nonzero mask;
``duplicate``  the byte arrives twice;
``replay``     the frame so far (its first byte through this one, as sent) arrives again right
               after this byte — at a frame's last byte, a duplicated frame;
``truncate``   this byte and the rest of the frame are lost;
``delay``      this byte and the rest of its frame are held back (and what follows them): in the URL
               handler until the reader's timeout has elapsed once (the read returns at once,
               as if it had timed out; no wall-clock wait), or ``hold`` seconds; in the proxy
               ``hold`` seconds (default 1);
``disconnect`` the bytes before this one pass, then the link is cut (not a default kind).

**Text form** (the ``faults=`` value of a ``--kkt`` spec), comma-separated ``key:value`` items::

    seed:7,p:0.01                              seed 7, 1 % of the bytes, default kinds, both ways
    seed:7,p:0.02,kinds:drop|corrupt,dir:rx    only drops and corruptions, only in answers
    at:rx:3:5:corrupt|tx:1:0:drop              no random faults: rx frame 3 byte 5 corrupted,
                                               tx frame 1 byte 0 dropped
    seed:1,p:0.01,after:2,limit:5,hold:0.2     spare the first 2 frames each way, at most 5
                                               random faults, delays of 0.2 s

``seed`` (integer, default 0), ``p`` (0..1, default 0), ``kinds`` (``|``-separated, default all
but disconnect), ``dir`` (tx, rx or both, for random faults), ``at`` (``DIR:FRAME:BYTE[:KIND]``,
``|``-separated or repeated; without a kind, the kind is drawn from ``kinds`` by the seed),
``after`` (random faults only from frame N+1 on), ``limit`` (at most N random faults), ``hold``
(seconds a delay lasts, 0 < hold <= 60).  The URL form is the same with ``key=value&...`` and
lists separated by ``,`` (see :mod:`harness.faults.protocol_faulty`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

KINDS = ("drop", "corrupt", "duplicate", "replay", "truncate", "delay", "disconnect")
DEFAULT_KINDS = tuple(k for k in KINDS if k != "disconnect")
DIRECTIONS = ("tx", "rx")
MAX_HOLD = 60.0
OPTIONS = ("seed", "p", "kinds", "dir", "at", "after", "limit", "hold")
AT_SYNTAX = "DIR:FRAME:BYTE[:KIND] like rx:3:5:corrupt"


@dataclass(frozen=True)
class Placement:
    """A fault at a chosen place: ``direction`` frame ``frame`` (from 1), byte ``offset`` (from 0)."""

    direction: str
    frame: int
    offset: int
    kind: str | None = None  # None: drawn from the schedule's kinds by the seed

    @property
    def text(self) -> str:
        return f"{self.direction}:{self.frame}:{self.offset}" + (f":{self.kind}" if self.kind else "")


@dataclass(frozen=True)
class Schedule:
    """Which faults to inject; ValueError (one line) for a value that cannot be."""

    seed: int = 0
    p: float = 0.0
    kinds: tuple[str, ...] = DEFAULT_KINDS
    direction: str = "both"  # random faults in tx, rx or both
    at: tuple[Placement, ...] = ()
    after: int = 0  # random faults only from frame after+1 on, each direction
    limit: int | None = None  # at most this many random faults
    hold: float | None = None  # seconds a delay lasts; None: one reader timeout (proxy: 1 s)

    def __post_init__(self) -> None:
        if not (isinstance(self.p, int | float) and math.isfinite(self.p) and 0 <= self.p <= 1):
            raise ValueError(f"faults p must be a probability between 0 and 1, not {self.p!r}")
        if not self.kinds:
            raise ValueError("faults kinds needs at least one kind")
        for kind in self.kinds:
            _check_kind(kind)
        if self.direction not in (*DIRECTIONS, "both"):
            raise ValueError(f"faults dir is tx, rx or both, not {self.direction!r}")
        for place in self.at:
            if place.direction not in DIRECTIONS or place.frame < 1 or place.offset < 0:
                raise ValueError(f"faults at takes {AT_SYNTAX}, not {place.text!r}")
            if place.kind is not None:
                _check_kind(place.kind)
        if self.after < 0:
            raise ValueError(f"faults after must be a whole number >= 0, not {self.after!r}")
        if self.limit is not None and self.limit < 0:
            raise ValueError(f"faults limit must be a whole number >= 0, not {self.limit!r}")
        if self.hold is not None and not (math.isfinite(self.hold) and 0 < self.hold <= MAX_HOLD):
            raise ValueError(f"faults hold takes seconds, 0 < hold <= {MAX_HOLD:g}, not {self.hold!r}")

    def items(self) -> list[tuple[str, str]]:
        """The schedule as (option, value) pairs, defaults left out (``seed`` always shown)."""
        pairs = [("seed", str(self.seed))]
        if self.p:
            pairs.append(("p", f"{self.p:g}"))
        if self.kinds != DEFAULT_KINDS:
            pairs.append(("kinds", "|".join(self.kinds)))
        if self.direction != "both":
            pairs.append(("dir", self.direction))
        if self.at:
            pairs.append(("at", "|".join(place.text for place in self.at)))
        if self.after:
            pairs.append(("after", str(self.after)))
        if self.limit is not None:
            pairs.append(("limit", str(self.limit)))
        if self.hold is not None:
            pairs.append(("hold", f"{self.hold:g}"))
        return pairs

    @property
    def text(self) -> str:
        """The ``faults=`` form: ``seed:7,p:0.01,kinds:drop|corrupt``."""
        return ",".join(f"{key}:{value}" for key, value in self.items())

    def query(self) -> str:
        """The ``faulty://`` query form: ``seed=7&p=0.01&kinds=drop,corrupt``."""
        return "&".join(f"{key}={value.replace('|', ',')}" for key, value in self.items())


def parse_schedule(text: str) -> Schedule:
    """The ``faults=`` text form → a Schedule; ValueError with one line naming what is wrong."""
    if not text.strip():
        raise ValueError("faults is empty (e.g. faults=seed:7,p:0.01)")
    pairs = []
    for item in text.split(","):
        key, sep, value = item.strip().partition(":")
        if not sep:
            raise ValueError(f"faults item {item!r} is not key:value (e.g. seed:7,p:0.01)")
        pairs.append((key, value))
    return schedule_from_pairs(pairs, separators="|")


def schedule_from_pairs(pairs: Iterable[tuple[str, str]], *, separators: str = "|,") -> Schedule:
    """(option, value) pairs → a Schedule; lists within a value are split on ``separators``."""
    seen: dict[str, str] = {}
    at: list[Placement] = []
    for key, value in pairs:
        if key not in OPTIONS:
            raise ValueError(f"unknown faults option {key!r} (options: {', '.join(OPTIONS)})")
        if key == "at":
            at += [_placement(part) for part in _split(value, separators)]
            continue
        if key in seen:
            raise ValueError(f"faults option {key!r} given twice")
        seen[key] = value
    kinds = tuple(_split(seen["kinds"], separators)) if "kinds" in seen else DEFAULT_KINDS
    return Schedule(
        seed=_int(seen, "seed", "an integer") or 0,
        p=_float(seen, "p", "a probability between 0 and 1") or 0.0,
        kinds=kinds,
        direction=seen.get("dir", "both"),
        at=tuple(at),
        after=_int(seen, "after", "a whole number >= 0") or 0,
        limit=_int(seen, "limit", "a whole number >= 0"),
        hold=_float(seen, "hold", f"seconds, 0 < hold <= {MAX_HOLD:g}"),
    )


def _split(value: str, separators: str) -> list[str]:
    for sep in separators[1:]:
        value = value.replace(sep, separators[0])
    return [part.strip() for part in value.split(separators[0])]


def _int(seen: dict[str, str], key: str, what: str) -> int | None:
    if key not in seen:
        return None
    try:
        return int(seen[key])
    except ValueError:
        raise ValueError(f"faults {key} must be {what}, not {seen[key]!r}") from None


def _float(seen: dict[str, str], key: str, what: str) -> float | None:
    if key not in seen:
        return None
    try:
        return float(seen[key])
    except ValueError:
        raise ValueError(f"faults {key} must be {what}, not {seen[key]!r}") from None


def _placement(text: str) -> Placement:
    parts = text.split(":")
    if len(parts) not in (3, 4) or parts[0] not in DIRECTIONS or not (parts[1].isdigit() and parts[2].isdigit()):
        raise ValueError(f"faults at takes {AT_SYNTAX}, not {text!r}")
    kind = parts[3] if len(parts) == 4 else None
    place = Placement(parts[0], int(parts[1]), int(parts[2]), kind)
    if place.frame < 1:
        raise ValueError(f"faults at counts frames from 1, not {text!r}")
    if kind is not None:
        _check_kind(kind)
    return place


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r} (kinds: {', '.join(KINDS)})")


# ------------------------------------------------------------------------------ the engine


@dataclass(frozen=True)
class Fault:
    """One injected fault: where, and the bytes there before and after it."""

    kind: str
    direction: str
    frame: int
    offset: int
    before: bytes
    after: bytes

    def describe(self) -> str:
        """``corrupt rx frame 3 byte 5: 41 -> 63``."""
        after = self.after.hex(" ").upper() or "(nothing)"
        text = f"{self.kind} {self.direction} frame {self.frame} byte {self.offset}: "
        text += f"{self.before.hex(' ').upper()} -> {after}"
        detail = {
            "truncate": ", the rest of the frame is lost",
            "delay": ", held back with what follows",
            "disconnect": ", the link is cut",
        }
        return text + detail.get(self.kind, "")


@dataclass
class Outcome:
    """What :meth:`Injector.feed` made of a chunk."""

    data: bytes  # deliver now
    held: bytes = b""  # deliver later: a delay fired (and everything after it is held too)
    cut: Fault | None = None  # a disconnect fired: deliver ``data``, then cut the link
    faults: list[Fault] = field(default_factory=list)


@dataclass
class _Direction:
    frame: int = 0  # the current frame's number (0: none yet)
    offset: int = 0  # bytes of the current frame seen so far
    sent: bytearray = field(default_factory=bytearray)  # the current frame as the sender sent it
    truncated: bool = False
    delayed: bool = False  # a delay fired in this frame: the rest of it is held back


class Injector:
    """Applies a :class:`Schedule` to both directions of one link; every fault goes to
    :attr:`injected` and to the ``on_fault`` callbacks.  Not thread-safe: callers feeding from
    two threads hold a lock."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.injected: list[Fault] = []
        self.on_fault: list[Callable[[Fault], None]] = []
        self._dirs = {d: _Direction() for d in DIRECTIONS}
        self._last: str | None = None
        self._turned: str | None = None  # the next bytes this way start a frame (turn())
        self._random = 0
        self._at = {(p.direction, p.frame, p.offset): p.kind for p in schedule.at}

    def frame(self, direction: str) -> int:
        """The number of the latest frame in ``direction`` (0 before its first byte)."""
        return self._dirs[direction].frame

    def turn(self, direction: str) -> None:
        """The next bytes in ``direction`` start a new frame even if nothing came the other way:
        the host listened in between (a request the register never answered is still one frame,
        and the next request is the next frame)."""
        self._turned = direction

    def feed(self, direction: str, data: bytes) -> Outcome:
        """Pass ``data`` (the next bytes in ``direction``) through the schedule."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction is tx or rx, not {direction!r}")
        state = self._dirs[direction]
        if data and (direction != self._last or self._turned == direction):
            self._last, self._turned = direction, None
            state.frame, state.offset, state.truncated, state.delayed = state.frame + 1, 0, False, False
            state.sent.clear()
        now, later = bytearray(), bytearray()
        out = later if state.delayed else now
        outcome = Outcome(b"")
        for index, byte in enumerate(data):
            offset = state.offset
            state.offset += 1
            state.sent.append(byte)
            if state.truncated:
                continue
            decided = self._decide(direction, state.frame, offset)
            if decided is None or (decided[0] == "delay" and out is later):
                out.append(byte)
                continue
            kind, mask = decided
            one = bytes([byte])
            if kind == "drop":
                after = b""
            elif kind == "corrupt":
                after = bytes([byte ^ mask])
            elif kind == "duplicate":
                after = one + one
            elif kind == "replay":
                after = one + bytes(state.sent)
            elif kind == "truncate":
                state.truncated, after = True, b""
            elif kind == "delay":
                out, after, state.delayed = later, one, True
            else:  # disconnect
                after = b""
            fault = Fault(kind, direction, state.frame, offset, one, after)
            self._record(fault, outcome)
            if kind == "disconnect":
                outcome.cut = fault
                state.offset += len(data) - index - 1
                break
            out += after
        outcome.data, outcome.held = bytes(now), bytes(later)
        return outcome

    def _decide(self, direction: str, frame: int, offset: int) -> tuple[str, int] | None:
        """(kind, corruption mask) for this byte, or None: it passes untouched."""
        schedule = self.schedule
        key = (direction, frame, offset)
        placed = key in self._at
        if not placed:
            if not schedule.p or frame <= schedule.after or schedule.direction not in (direction, "both"):
                return None
            if schedule.limit is not None and self._random >= schedule.limit:
                return None
        digest = hashlib.blake2b(f"{schedule.seed}:{direction}:{frame}:{offset}".encode(), digest_size=16).digest()
        if not placed:
            if int.from_bytes(digest[:8], "big") / 2**64 >= schedule.p:
                return None
            self._random += 1
        kind = self._at.get(key) or schedule.kinds[int.from_bytes(digest[8:12], "big") % len(schedule.kinds)]
        return kind, 1 + digest[12] % 255

    def _record(self, fault: Fault, outcome: Outcome) -> None:
        self.injected.append(fault)
        outcome.faults.append(fault)
        for callback in list(self.on_fault):
            callback(fault)
