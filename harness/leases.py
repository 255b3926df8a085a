"""Leases: one process at a time on a register, whichever pytest-xdist worker, run or user of
this host it comes from.

A lease is a lock file in the lease directory (:func:`lease_dir`), named after the register's
port (``<sha256 of the URL>.lock``) and held with ``flock`` through :mod:`filelock`: the system
releases it when the holder dies, however it dies, so a lease whose holder is dead is free.  The
lock file also holds the lease's record, one JSON object written when it is taken: the register,
its URL and the holder (host, pid, user, xdist worker, the test id or command line it runs,
since when).  A daemon thread refreshes the record's ``heartbeat`` every
:data:`HEARTBEAT_SECONDS`; a lease still held whose heartbeat is older than
:data:`EXPIRY_SECONDS` belongs to a holder that hangs or is stopped (``kill -STOP``, a debugger
that froze the process): it is reported as *expired*, naming the holder's pid, and a waiter gives
up at once, saying so, rather than waiting for a process that will not let go.  The holder
removes its lock file on release, so the lease directory lists the leases held now and those a
killed holder left (free: its lock went with it).

:func:`acquire` takes one register; :func:`acquire_any` the first free one of several (a pool):
every candidate is tried without waiting, then all are polled until one is free or the timeout
passes.  :func:`list_leases` reads the directory for ``kkt-hil devices --leases``.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from .errors import HarnessError

LEASE_DIR_ENV = "KKT_HIL_LEASE_DIR"
HOST_ENV = "KKT_HIL_HOST"  # the host's name in lease records and reports (default: the hostname)
HEARTBEAT_SECONDS = 5.0
EXPIRY_SECONDS = 60.0  # a heartbeat older than this: the holder hangs or is stopped
POLL_SECONDS = 0.1  # waiting for a register: how often each candidate is tried again
_RECORD_LIMIT = 1 << 16


def host_name() -> str:
    """This host as leases and reports name it: ``$KKT_HIL_HOST``, else the hostname."""
    return os.environ.get(HOST_ENV, "").strip() or socket.gethostname()


def lease_dir() -> Path:
    """Where leases live: ``$KKT_HIL_LEASE_DIR``, else one folder for every user of this host."""
    configured = os.environ.get(LEASE_DIR_ENV)
    if configured:
        return Path(configured)
    return Path("/tmp" if os.name == "posix" else tempfile.gettempdir()) / "kkt-hil-leases"


def lease_path(url: str, folder: Path | None = None) -> Path:
    return (folder or lease_dir()) / f"{hashlib.sha256(lease_key(url).encode()).hexdigest()[:16]}.lock"


def lease_key(url: str) -> str:
    """One key per register however its URL is spelt: a network endpoint is ``tcp://host:port``
    (``socket://`` and ``rfc2217://`` to one port are one register; options, case and a trailing
    path do not count), a tty its real path (``/dev/serial/by-id/…`` is the ``/dev/ttyUSB0`` it
    links to).  Leases are per host: across hosts only labgrid (or ser2net's max-connections)
    keeps a second client out."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return os.path.realpath(url)
    if scheme.lower() in ("socket", "rfc2217"):
        endpoint = rest.split("?", 1)[0].split("/", 1)[0].lower()
        return f"tcp://{endpoint}"
    return url


def leased_url(url: str) -> str | None:
    """What a ``url:`` register is leased by: its port (a tty, a TCP or RFC 2217 endpoint), the
    one under ``faulty://``; None for ``loop://`` (nothing outside this process can reach it)."""
    if url.startswith("faulty:"):
        from .faults import parse_faulty_url

        url = parse_faulty_url(url)[1]
    return None if url.startswith("loop:") else url


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    user: str
    worker: str  # the pytest-xdist worker (gw0 …), "" outside xdist
    test: str  # the pytest test id, else the command line
    since: float  # time.time() when the lease was taken
    heartbeat: float  # time.time() of the last refresh

    def describe(self) -> str:
        who = [f"user {self.user}"] + ([f"worker {self.worker}"] if self.worker else [])
        return f"pid {self.pid} on {self.host} ({', '.join(who)}; {self.test or '?'})"


@dataclass(frozen=True)
class LeaseState:
    """One lock file of the lease directory, as read now."""

    path: Path
    register: str  # "lab:bench1", "url:/dev/ttyUSB0"; "?" when no record says
    url: str
    state: str  # "held" | "expired" | "free"
    holder: Holder | None  # who holds it (held, expired) or held it last (free); None if no record
    age: float | None  # seconds since the holder took it
    heartbeat_age: float | None

    def describe(self) -> str:
        """The holder, for a waiter's message."""
        if self.holder is None:
            return "holder unknown: the lease has no record"
        text = self.holder.describe()
        if self.state == "expired" and self.heartbeat_age is not None:
            text += f", whose heartbeat stopped {self.heartbeat_age:.0f} s ago"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "register": self.register,
            "url": self.url,
            "state": self.state,
            "holder": asdict(self.holder) if self.holder is not None else None,
            "age": self.age,
            "heartbeat_age": self.heartbeat_age,
            "lease": str(self.path),
        }


class LeaseBusy(HarnessError):
    """The register is leased by another process (for longer than the caller would wait)."""


class Candidate(NamedTuple):
    url: str  # the port: what the lease is named after
    register: str  # "lab:bench1"
    where: str  # for messages: "lab:bench1 (lab.toml:3)"


_HELD: set[Path] = set()  # leases this process holds: a nested open of one register fails at once
_HELD_LOCK = threading.Lock()


def _what_runs() -> str:
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    if current:
        return current.rsplit(" (", 1)[0]  # "path::test[id] (setup)" → the test id
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    return " ".join(argv)[:300]


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


def _write(fd: int, record: dict[str, Any]) -> None:
    """The record over the lock file's content (the holder's own file while it holds the lock)."""
    data = json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n"
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


def _read(path: Path) -> dict[str, Any] | None:
    """The record in a lock file (a torn read, seen while it is rewritten, is read again)."""
    for _ in range(3):
        try:
            raw = path.read_bytes()[:_RECORD_LIMIT]
        except OSError:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            if not raw.strip():
                return None
            time.sleep(0.01)
            continue
        return data if isinstance(data, dict) else None
    return None


def _holder(data: dict[str, Any] | None) -> Holder | None:
    raw = data.get("holder") if data else None
    if not isinstance(raw, dict):
        return None
    try:
        return Holder(
            host=str(raw["host"]),
            pid=int(raw["pid"]),
            user=str(raw.get("user", "?")),
            worker=str(raw.get("worker", "")),
            test=str(raw.get("test", "")),
            since=float(raw["since"]),
            heartbeat=float(raw["heartbeat"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _is_locked(path: Path) -> bool | None:
    """Is the lock file held by anyone (this process included)?  None if it is gone.  The probe
    takes the lock for an instant without creating the file (filelock's descriptor lock)."""
    from filelock import lock_descriptor, unlock_descriptor

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    try:
        if lock_descriptor(fd, blocking=False):
            unlock_descriptor(fd)
            return False
        return True
    finally:
        os.close(fd)


def inspect(path: Path, *, now: float | None = None, expiry: float | None = None) -> LeaseState | None:
    """The state of one lease (None when its file is gone meanwhile)."""
    expiry = EXPIRY_SECONDS if expiry is None else expiry
    data = _read(path)
    locked = _is_locked(path)
    if locked is None:
        return None
    now = time.time() if now is None else now
    holder = _holder(data)
    age = heartbeat_age = None
    if holder is not None:
        age, heartbeat_age = max(0.0, now - holder.since), max(0.0, now - holder.heartbeat)
    state = "free"
    if locked:
        state = "expired" if heartbeat_age is not None and heartbeat_age > expiry else "held"
    register = str(data.get("register", "?")) if data else "?"
    url = str(data.get("url", "")) if data else ""
    return LeaseState(path, register, url, state, holder, age, heartbeat_age)


def list_leases(folder: Path | None = None, *, now: float | None = None) -> list[LeaseState]:
    """Every lease in the lease directory, by register."""
    folder = folder or lease_dir()
    try:
        paths = sorted(folder.glob("*.lock"))
    except OSError:
        return []
    states = [s for s in (inspect(p, now=now) for p in paths) if s is not None]
    return sorted(states, key=lambda s: (s.register, s.url, str(s.path)))


def _heartbeat(lease: weakref.ReferenceType[Lease], stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        held = lease()
        if held is None:
            return
        held.refresh()
        del held


def _given_back(stop: threading.Event, lock: Any, fd: int, path: Path) -> None:
    """A lease nobody released (its handle was dropped): the file goes, the lock is released."""
    stop.set()
    with contextlib.suppress(OSError):
        if os.path.samestat(os.stat(path), os.fstat(fd)):
            path.unlink()
    with contextlib.suppress(OSError):
        os.close(fd)
    with contextlib.suppress(Exception):
        lock.release()
    with _HELD_LOCK:
        _HELD.discard(path)


class Lease:
    """A lease this process holds; :meth:`release` (or the end of a ``with``) gives it back."""

    def __init__(self, candidate: Candidate, path: Path, lock: Any, fd: int, record: dict[str, Any]) -> None:
        self.candidate, self.path = candidate, path
        self._lock, self._fd, self._record = lock, fd, record
        self._guard = threading.Lock()
        self._stop = threading.Event()
        # the thread holds the lease weakly: a handle dropped without close() is collected and
        # its lease given back, instead of a heartbeat keeping it (and the register) forever
        self._thread = threading.Thread(
            target=_heartbeat, args=(weakref.ref(self), self._stop), name=f"kkt-hil-lease-{path.stem}", daemon=True
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, _given_back, self._stop, lock, fd, path)

    @property
    def register(self) -> str:
        return self.candidate.register

    def refresh(self) -> None:
        """The heartbeat, now (the thread does it every few seconds)."""
        with self._guard:
            if self._fd < 0:
                return
            self._record["holder"]["heartbeat"] = time.time()
            with contextlib.suppress(OSError):
                _write(self._fd, self._record)

    def release(self) -> None:
        self._finalizer.detach()
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        with self._guard:
            if self._fd < 0:
                return
            with contextlib.suppress(OSError):  # the file goes first: a waiter on this inode tries again
                if os.path.samestat(os.stat(self.path), os.fstat(self._fd)):
                    self.path.unlink()
            os.close(self._fd)
            self._fd = -1
        try:
            self._lock.release()
        finally:
            with _HELD_LOCK:
                _HELD.discard(self.path)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def _prepare(folder: Path, where: str, path: Path) -> None:
    try:
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                folder.chmod(0o1777)  # every lab user may lease (sticky: nobody removes another's file)
    except OSError as exc:
        raise HarnessError(f"{where}: cannot take the lease {path}: {exc} (set {LEASE_DIR_ENV})") from None


def _try(candidate: Candidate, path: Path) -> Lease | None:
    """The lease of ``candidate`` if it is free now, else None."""
    from filelock import FileLock, Timeout

    now = time.time()
    holder = {
        "host": host_name(),
        "pid": os.getpid(),
        "user": _user(),
        "worker": os.environ.get("PYTEST_XDIST_WORKER", ""),
        "test": _what_runs(),
        "since": now,
        "heartbeat": now,
    }
    record: dict[str, Any] = {"register": candidate.register, "url": candidate.url, "holder": holder}
    own: list[int] = []

    def acquired(fd: int) -> None:  # filelock calls it with the locked descriptor, before acquire returns
        own.append(os.dup(fd))
        with contextlib.suppress(OSError):
            _write(own[0], record)

    lock = FileLock(path, mode=0o666, thread_local=False, on_acquired=acquired)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    except OSError as exc:
        raise HarnessError(f"{candidate.where}: cannot take the lease {path}: {exc} (set {LEASE_DIR_ENV})") from None
    return Lease(candidate, path, lock, own[0], record)


def acquire(url: str, register: str, where: str, timeout: float) -> Lease:
    """The lease of one register, waiting up to ``timeout`` seconds for its holder to let go."""
    return acquire_any([Candidate(url, register, where)], timeout)


def acquire_any(
    candidates: Sequence[Candidate],
    timeout: float,
    *,
    name: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> Lease:
    """The lease of the first free one of ``candidates``: each is tried without waiting, then all
    are polled until one is free (``name`` is the pool, for messages).  HarnessError, with one
    line naming the holders, when ``timeout`` passes or every holder has stopped its heartbeat."""
    if not candidates:
        raise HarnessError(f"{name or 'leases'}: no register to lease")
    folder = lease_dir()
    paths = [lease_path(c.url, folder) for c in candidates]
    _prepare(folder, candidates[0].where, paths[0])
    with _HELD_LOCK:
        mine = [p in _HELD for p in paths]
    if all(mine):
        c = candidates[0]
        what = f"{c.where}: {c.url} is" if len(candidates) == 1 else f"{name}: every register of the pool is"
        raise HarnessError(f"{what} already open in this process (one handle per register at a time)")
    deadline = clock() + timeout
    told, look = False, clock()  # the holders are read now and then, not at every try
    while True:
        for candidate, path, held_here in zip(candidates, paths, mine, strict=True):
            if held_here:
                continue
            lease = _try(candidate, path)
            if lease is not None:
                with _HELD_LOCK:
                    _HELD.add(path)
                return lease
        remaining = deadline - clock()
        if told and remaining > 0 and clock() < look:
            time.sleep(min(POLL_SECONDS, remaining))
            continue
        look = clock() + 1.0
        busy = [(c, p, inspect(p)) for c, p, held_here in zip(candidates, paths, mine, strict=True) if not held_here]
        if busy and all(s is not None and s.state == "expired" for _, _, s in busy):
            raise LeaseBusy(_busy(busy, name, "; hung or stopped: kill the holder to free the register"))
        if remaining <= 0:
            raise LeaseBusy(_busy(busy, name, f" for more than {timeout:g} s" if timeout > 0 else ""))
        if not told:
            told = True
            print(f"kkt-hil: {_busy(busy, name, '')}; waiting up to {timeout:g} s", file=sys.stderr, flush=True)
        time.sleep(min(POLL_SECONDS, remaining))


def _busy(busy: list[tuple[Candidate, Path, LeaseState | None]], name: str, tail: str) -> str:
    def one(candidate: Candidate, path: Path, state: LeaseState | None) -> str:
        holder = state.describe() if state is not None else "just released"
        return f"{holder}; lease {path}"

    if len(busy) == 1 and not name:
        candidate = busy[0][0]
        return f"{candidate.where}: {candidate.url} is in use by another test or run ({one(*busy[0])}){tail}"
    each = ", ".join(f"{c.register} by {one(c, p, s)}" for c, p, s in busy)
    return f"{name}: every register of the pool is in use ({each}){tail}"
