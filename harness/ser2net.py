"""A real ser2net exporting a serial device (a register's tty, an emulator's pty) over TCP: as
RFC 2217 (``rfc2217://HOST:PORT``, line settings travel to the device) or raw
(``socket://HOST:PORT``) -- how the registers of another lab host are reached (DESIGN.md, Scale).

:func:`start_ser2net` runs ``ser2net`` in the foreground with its own YAML config in a temporary
directory, on loopback unless ``allow_lan``, and returns once its port listens (a deadline);
:meth:`Ser2net.close` stops it (SIGTERM, then SIGKILL).  A missing ser2net, a config it refuses
or a port it cannot listen on is a :class:`~harness.errors.HarnessError` of one line with the end
of what ser2net said.  Debian's package (4.x, gensio) puts it in /usr/sbin.  Linux only: the
listening port is read from /proc, so the port is ser2net's own (port 0: one the kernel picks).

The connection options, as measured with ser2net 4.3.11: ``local`` (no carrier to wait for;
a pty has none), ``kickolduser`` (a client that reconnects before ser2net noticed the old
connection replaces it), ``max-connections: 1`` (a register has one host).  A pty has no
modem lines: ser2net answers nothing to an RFC 2217 DTR/RTS request, so the URL of an exported
pty carries pyserial's ``?ign_set_control`` (without it pyserial waits 3 s, then fails).

:func:`lend` exports an emulator's pty (``emulator:...?transport=rfc2217|ser2net``) through a
ser2net this process keeps for the purpose, instead of starting one per emulator (40-70 ms to
start and 20 ms to stop, against 2-3 ms to connect).  ser2net opens its device when a client
connects, so each kept ser2net exports a symlink of its own, which :func:`lend` points at the
emulator's pty before it hands out the URL; :meth:`Lent.release` (the handle's close, after the
driver's port is closed) removes the link again and makes the export free.  An export is lent to
one user at a time; each process (each pytest-xdist worker) has its own; they are stopped when the
process exits, and by a watchdog (``sh``, in a session of its own) when it is killed.  ser2net
finishes with a closed connection about 10 ms after the close (a client connecting earlier waits
for that), so a second export is kept of each kind and the one free longest is lent.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from .errors import HarnessError, UsageError
from .net import check_loopback

__all__ = ["MODES", "Lent", "Ser2net", "find_ser2net", "lend", "start_ser2net"]

Mode = Literal["rfc2217", "raw"]
MODES: tuple[Mode, ...] = ("rfc2217", "raw")
EXECUTABLE = "ser2net"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")  # not on a normal user's PATH
START_TIMEOUT = 5.0  # seconds for ser2net to listen
STOP_TIMEOUT = 2.0  # seconds after SIGTERM before SIGKILL (a port that failed to start ignores SIGTERM)
POLL = 0.01
PTY_MAJORS = range(136, 144)  # Linux UNIX98 pty slaves (/dev/pts/N)
TCP_LISTEN = "0A"
PTY_BUFSIZE = 4096  # ser2net's buffers for an emulator's pty (see start_ser2net's bufsize)
KEPT = 2  # exports :func:`lend` keeps of each kind (the one freed longest ago is lent: see REUSE_AFTER)
REUSE_AFTER = 0.05  # seconds after its release before a kept export is lent again while another can start


def find_ser2net(executable: str | None = None) -> str:
    """The ser2net to run: ``executable`` (default :data:`EXECUTABLE`) on PATH or in an sbin
    directory, or a path."""
    executable = executable or EXECUTABLE
    found = shutil.which(executable) or shutil.which(executable, path=os.pathsep.join(SBIN_DIRS))
    if found is None:
        raise HarnessError(
            f"ser2net is not installed ({executable!r} is not on PATH nor in {', '.join(SBIN_DIRS)}): "
            "apt-get install ser2net"
        )
    return found


class Ser2net:
    """A running ser2net exporting ``device``; ``url`` is the pyserial URL of the export."""

    def __init__(self, process: subprocess.Popen[bytes], workdir: tempfile.TemporaryDirectory[str], *,
                 device: str, mode: Mode, host: str, port: int) -> None:  # fmt: skip
        self.process = process
        self.device = device
        self.mode = mode
        self.host = host
        self.port = port
        self._workdir = workdir

    @property
    def url(self) -> str:
        """``rfc2217://HOST:PORT`` (``?ign_set_control`` for a pty) or ``socket://HOST:PORT``."""
        if self.mode == "raw":
            return f"socket://{self.host}:{self.port}"
        return f"rfc2217://{self.host}:{self.port}" + ("?ign_set_control" if _is_pty(self.device) else "")

    @property
    def workdir(self) -> str:
        """ser2net's directory (its config, log and pid file), removed by :meth:`close`."""
        return self._workdir.name

    @property
    def log(self) -> str:
        """What ser2net wrote so far (its stdout and stderr)."""
        return _read_log(Path(self._workdir.name))

    def close(self) -> None:
        """Stop ser2net: SIGTERM, SIGKILL after STOP_TIMEOUT; remove its directory."""
        _stop(self.process)
        self._workdir.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def start_ser2net(
    device: str,
    *,
    mode: Mode = "rfc2217",
    baudrate: int = 57600,
    host: str = "127.0.0.1",
    port: int = 0,
    allow_lan: bool = False,
    executable: str | None = None,
    timeout: float = START_TIMEOUT,
    chardelay: bool = True,
    nodelay: bool = False,
    bufsize: int | None = None,
) -> Ser2net:
    """Export the tty ``device`` (8N1 at ``baudrate`` until an RFC 2217 client sets another) on
    ``host:port`` (port 0: a free one) and wait until it listens, at most ``timeout`` seconds.

    ``chardelay=False`` turns off ser2net's gathering of device bytes (on by default, as in
    ser2net: after each byte from a real line it waits two byte-times, at least 1 ms, for more
    before it sends them on) -- for an emulator's pty, which has no line: its answers arrive
    whole, and the wait would only add 1-4 ms to every exchange.  ``nodelay=True`` sets
    TCP_NODELAY on ser2net's side of each connection (ser2net clears it by default): with Nagle's
    algorithm a small write that follows an unacknowledged one (the second of two RFC 2217
    answers in a row, an answer split in two) waits for the client's delayed ACK, 40 ms on Linux.
    ``bufsize`` sets ser2net's buffers between the device and the network (64 bytes each by
    default): ser2net moves at most that much a read, so a longer answer crosses in pieces, each
    its own TCP send and wake-up of the client -- for a pty, whose answers are there whole."""
    if mode not in MODES:
        raise UsageError(f"ser2net exports as {' or '.join(MODES)}, not {mode!r}")
    if not allow_lan:
        try:
            check_loopback(host)
        except ValueError as exc:
            raise UsageError(f"ser2net: {exc}") from None
    if any(c in device for c in ",'\"\n\r\t ") or not device:
        raise UsageError(f"ser2net cannot export {device!r}: a device path without commas, quotes or spaces")
    if not 0 <= port <= 65535 or baudrate <= 0 or (bufsize is not None and bufsize <= 0):
        raise UsageError(f"ser2net: bad port {port!r}, baud rate {baudrate!r} or buffer size {bufsize!r}")
    program = find_ser2net(executable)
    workdir = tempfile.TemporaryDirectory(prefix="kkt-ser2net-")
    folder = Path(workdir.name)
    accepter = ("telnet(rfc2217)," if mode == "rfc2217" else "") + ("tcp(nodelay)" if nodelay else "tcp")
    accepter += f",{host},{port}"
    config = folder / "ser2net.yaml"
    config.write_text(
        "%YAML 1.1\n---\n"
        "connection: &kkt\n"
        f"  accepter: '{accepter}'\n"
        f"  connector: 'serialdev,{device},{baudrate}n81,local'\n"
        "  options:\n"
        "    kickolduser: true\n"
        "    max-connections: 1\n"
        + (
            ""
            if chardelay
            else "    # a pty has no line: the bytes ser2net would gather arrive together, do not wait for more\n"
            "    chardelay: false\n"
        )
        + (
            ""
            if bufsize is None
            else "    # an answer crosses in one piece, not in pieces of ser2net's default 64 bytes\n"
            f"    dev-to-net-bufsize: {bufsize}\n"
            f"    net-to-dev-bufsize: {bufsize}\n"
        ),
        encoding="utf-8",
    )
    log = (folder / "ser2net.log").open("wb")
    try:
        # -d: foreground, errors (a port it cannot listen on) to stdout; -u: no UUCP lock files
        command = [program, "-d", "-u", "-c", str(config), "-P", str(folder / "ser2net.pid")]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=folder)
    except OSError as exc:
        workdir.cleanup()
        raise HarnessError(f"cannot run {program}: {exc}") from None
    finally:
        log.close()
    try:
        listening = _wait_listening(process, folder, config.name, time.monotonic() + timeout)
    except BaseException:
        if process.poll() is None:  # it did not start (one that failed ignores SIGTERM): nothing to close cleanly
            process.kill()
            process.wait(STOP_TIMEOUT)
        workdir.cleanup()
        raise
    return Ser2net(process, workdir, device=device, mode=mode, host=host, port=listening)


def _wait_listening(process: subprocess.Popen[bytes], folder: Path, config: str, deadline: float) -> int:
    """ser2net's listening TCP port, once there is one; HarnessError if it exits, refuses its
    config or says it cannot listen, or nothing listens by ``deadline``."""
    while True:
        port = _listening_port(process.pid)
        if port is not None:
            return port
        said = _read_log(folder)
        failed = process.poll() is not None or f"{config}:" in said or "Unable to startup" in said
        if failed or time.monotonic() >= deadline:
            why = "exited" if process.poll() is not None else "refused to start" if failed else "did not listen"
            tail = " | ".join(said.splitlines()[-3:]) or "no output"
            raise HarnessError(f"ser2net {why}: {tail}")
        time.sleep(POLL)


def _listening_port(pid: int) -> int | None:
    """The TCP port a socket of process ``pid`` listens on (from /proc), or None."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    except OSError:
        return None
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == TCP_LISTEN and fields[9] in inodes:
                return int(fields[1].rsplit(":", 1)[1], 16)
    return None


def _read_log(folder: Path) -> str:
    """ser2net's output without its mdns complaint (Debian's build tries mdns on every start)."""
    try:
        text = (folder / "ser2net.log").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(line for line in text.splitlines() if "mdns" not in line)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)


def _is_pty(device: str) -> bool:
    try:
        return os.major(os.stat(device).st_rdev) in PTY_MAJORS
    except OSError:
        return False


# ------------------------------------------------------------------------------ kept exports

# Runs in a session of its own (a Ctrl-C of the run does not reach it) and blocks on the pipe from
# the process that keeps the exports: "+PID DIR" for each ser2net started, "-PID" for each stopped,
# "/DIR" for the directory of the links, "done" when that process stopped them itself.  EOF without
# "done": the process was killed, so the watchdog stops the ser2nets it was told of and removes
# their directories and the links'.
_WATCHDOG = """
trap '' INT HUP
entries=
links=
while IFS= read -r line; do
  case $line in
    done) exit 0 ;;
    /*) links=$line ;;
    +*) entries="$entries${line#+}
" ;;
    -*) entries=$(printf '%s' "$entries" | grep -v "^${line#-} ")
        [ -n "$entries" ] && entries="$entries
" ;;
  esac
done
pids=$(printf '%s' "$entries" | cut -d' ' -f1)
[ -n "$pids" ] && kill $pids 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do
  alive=
  for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1
done
[ -n "$pids" ] && kill -9 $pids 2>/dev/null
printf '%s' "$entries" | while read -r pid dir; do rm -rf "$dir"; done
[ -n "$links" ] && rm -rf "$links"
"""


@dataclass
class _Kept:
    export: Ser2net
    link: Path
    kind: tuple[str, Mode, int]  # (program, mode, baud rate)
    lent: bool = True
    released: float = 0.0  # time.monotonic() of the last release


class Lent:
    """An export :func:`lend` handed out: ``url`` (the emulator's pty behind it) until :meth:`release`."""

    def __init__(self, pool: _Pool, kept: _Kept) -> None:
        self._pool = pool
        self._kept: _Kept | None = kept
        self.url = kept.export.url
        self.port = kept.export.port

    def release(self) -> None:
        """Give the export back (once); call it after the port to ``url`` is closed."""
        kept, self._kept = self._kept, None
        if kept is not None:
            self._pool.give_back(kept)


class _Pool:
    """The exports one process keeps (:func:`lend`)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._kept: list[_Kept] = []
        self._links: tempfile.TemporaryDirectory[str] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._made = 0

    def lend(self, device: str, mode: Mode, baudrate: int) -> Lent:
        program = find_ser2net()  # each time: a ser2net gone (or EXECUTABLE changed) is one line, as before
        kind = (program, mode, baudrate)
        with self._lock:
            kept = self._free(kind)
            if kept is None:
                kept = self._start(kind, device)
            else:
                _point(kept.link, device)
                kept.lent = True
            return Lent(self, kept)

    def _free(self, kind: tuple[str, Mode, int]) -> _Kept | None:
        """The free export of ``kind`` released longest ago, or None: none is free, or the one
        free was released moments ago and another may start (ser2net may still be closing)."""
        for dead in [k for k in self._kept if not k.lent and k.export.process.poll() is not None]:
            self._stop(dead)  # a ser2net that died (a signal of the run's process group)
        same = [k for k in self._kept if k.kind == kind]
        free = sorted((k for k in same if not k.lent), key=lambda k: k.released)
        if not free:
            return None
        if time.monotonic() - free[0].released < REUSE_AFTER and len(same) < KEPT:
            return None
        return free[0]

    def _start(self, kind: tuple[str, Mode, int], device: str) -> _Kept:
        if self._links is None:
            self._links = tempfile.TemporaryDirectory(prefix="kkt-ser2net-links-")
            self._tell(self._links.name)
        self._made += 1
        link = Path(self._links.name) / f"tty{self._made}"
        _point(link, device)
        program, mode, baudrate = kind
        try:
            export = start_ser2net(
                str(link),
                mode=mode,
                baudrate=baudrate,
                executable=program,
                chardelay=False,
                nodelay=True,
                bufsize=PTY_BUFSIZE,
            )
        except BaseException:
            link.unlink(missing_ok=True)
            raise
        kept = _Kept(export, link, kind)
        self._kept.append(kept)
        self._tell(f"+{export.process.pid} {export.workdir}")
        return kept

    def give_back(self, kept: _Kept) -> None:
        with self._lock:
            # no link: a connection now fails ("Device open failure") instead of opening a pty
            # that may be another process's by then
            kept.link.unlink(missing_ok=True)
            kept.lent = False
            kept.released = time.monotonic()

    def _stop(self, kept: _Kept) -> None:
        self._kept.remove(kept)
        kept.link.unlink(missing_ok=True)
        kept.export.close()
        self._tell(f"-{kept.export.process.pid}")

    def _tell(self, line: str) -> None:
        watchdog = self._watchdog
        if watchdog is None:
            watchdog = self._watchdog = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        if watchdog.stdin is not None:
            with contextlib.suppress(OSError):
                watchdog.stdin.write(line.encode() + b"\n")
                watchdog.stdin.flush()

    def close(self) -> None:
        """Stop every kept export (at exit; lent ones too)."""
        if os.getpid() != self.pid:  # a forked child: the exports are its parent's
            return
        with self._lock:
            for kept in self._kept:  # all told at once, then each waited for
                if kept.export.process.poll() is None:
                    with contextlib.suppress(OSError):
                        kept.export.process.send_signal(signal.SIGTERM)
            for kept in list(self._kept):
                with contextlib.suppress(Exception):
                    self._stop(kept)
            watchdog, self._watchdog = self._watchdog, None
            if watchdog is not None:
                if watchdog.stdin is not None:
                    with contextlib.suppress(OSError):
                        watchdog.stdin.write(b"done\n")
                        watchdog.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    watchdog.wait(STOP_TIMEOUT)
            if self._links is not None:
                self._links.cleanup()
                self._links = None


_pool: _Pool | None = None
_pool_lock = threading.Lock()


def lend(device: str, *, mode: Mode = "rfc2217", baudrate: int = 57600) -> Lent:
    """Export an emulator's pty ``device`` through a ser2net this process keeps (module
    docstring): on loopback, ``chardelay`` off, TCP_NODELAY and :data:`PTY_BUFSIZE` buffers (see
    :func:`start_ser2net`).
    HarnessError as :func:`start_ser2net` when a ser2net has to start and cannot."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():  # first use, or a forked child's own
            _pool = _Pool()
            atexit.register(_pool.close)
        pool = _pool
    return pool.lend(device, mode, baudrate)


def _point(link: Path, device: str) -> None:
    """Make ``link`` a symlink to ``device`` (replacing it at once: never missing in between)."""
    fresh = link.with_name(link.name + ".new")
    fresh.unlink(missing_ok=True)
    os.symlink(device, fresh)
    os.replace(fresh, link)
