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
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from .errors import HarnessError, UsageError
from .net import check_loopback

__all__ = ["MODES", "Ser2net", "find_ser2net", "start_ser2net"]

Mode = Literal["rfc2217", "raw"]
MODES: tuple[Mode, ...] = ("rfc2217", "raw")
EXECUTABLE = "ser2net"
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")  # not on a normal user's PATH
START_TIMEOUT = 5.0  # seconds for ser2net to listen
STOP_TIMEOUT = 2.0  # seconds after SIGTERM before SIGKILL (a port that failed to start ignores SIGTERM)
POLL = 0.01
PTY_MAJORS = range(136, 144)  # Linux UNIX98 pty slaves (/dev/pts/N)
TCP_LISTEN = "0A"


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
) -> Ser2net:
    """Export the tty ``device`` (8N1 at ``baudrate`` until an RFC 2217 client sets another) on
    ``host:port`` (port 0: a free one) and wait until it listens, at most ``timeout`` seconds."""
    if mode not in MODES:
        raise UsageError(f"ser2net exports as {' or '.join(MODES)}, not {mode!r}")
    if not allow_lan:
        try:
            check_loopback(host)
        except ValueError as exc:
            raise UsageError(f"ser2net: {exc}") from None
    if any(c in device for c in ",'\"\n\r\t ") or not device:
        raise UsageError(f"ser2net cannot export {device!r}: a device path without commas, quotes or spaces")
    if not 0 <= port <= 65535 or baudrate <= 0:
        raise UsageError(f"ser2net: bad port {port!r} or baud rate {baudrate!r}")
    program = find_ser2net(executable)
    workdir = tempfile.TemporaryDirectory(prefix="kkt-ser2net-")
    folder = Path(workdir.name)
    accepter = ("telnet(rfc2217)," if mode == "rfc2217" else "") + f"tcp,{host},{port}"
    config = folder / "ser2net.yaml"
    config.write_text(
        "%YAML 1.1\n---\n"
        "connection: &kkt\n"
        f"  accepter: '{accepter}'\n"
        f"  connector: 'serialdev,{device},{baudrate}n81,local'\n"
        "  options:\n"
        "    kickolduser: true\n"
        "    max-connections: 1\n",
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
        _stop(process)
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
