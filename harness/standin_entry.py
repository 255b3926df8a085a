"""The stand-in's entry in a user's inventory: a marked block added to the file, which is
otherwise left byte for byte as the user wrote it, and taken out again when the stand-in stops.

The block names the stand-in's process (``pid``): a block whose process is gone (a stand-in that
was killed) is replaced; one whose process lives belongs to a running stand-in and is not taken
over.  Only the stand-in's own block is ever removed, as plain text: whatever the user wrote
meanwhile, however malformed, stays.  A symlinked inventory is written through its link, keeping
the file's mode.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from . import families
from .errors import UsageError
from .inventory import LabDevice, entry_toml, load_inventory, parse_text


def _begin(device_id: str, pid: int) -> str:
    return f"# kkt-hil standin {device_id} (pid {pid}): written by `kkt-hil standin`, removed when it stops\n"


def _end(device_id: str) -> str:
    return f"# end of kkt-hil standin {device_id}\n"


def _blocks(text: str, device_id: str) -> list[tuple[re.Match[str], int]]:
    pattern = re.escape(f"# kkt-hil standin {device_id} (pid ") + r"(\d+)\): [^\n]*\n.*?" + re.escape(_end(device_id))
    return [(m, int(m.group(1))) for m in re.finditer(pattern, text, flags=re.DOTALL)]


def _without(text: str, device_id: str, keep: Callable[[int], bool] = lambda _pid: False) -> str:
    """``text`` without the blocks of ``device_id`` (but those whose pid ``keep`` says to keep)."""
    for match, pid in reversed(_blocks(text, device_id)):
        if not keep(pid):
            text = text[: match.start()] + text[match.end() :]
    return text


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own block, from this very process: ours to replace
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def default_serial(model_id: str) -> str:
    """The factory number an emulated register of ``model_id`` has unless told otherwise."""
    return (families.model(model_id).serial_prefix + "123456")[:10]


def check_inventory(path: Path, device_id: str, serial: str) -> dict[str, str]:
    """Before anything starts: the stand-in's entry can go into ``path`` (its folder exists, the
    file parses, ``device_id`` is neither a real register's nor a running stand-in's).  Returns
    the emulator settings that keep its factory serial unique in the file."""
    if not path.parent.is_dir():
        raise UsageError(f"--inventory {path}: the folder {path.parent} does not exist")
    if not path.exists():
        return {}
    text = _read(path)
    running = [pid for _, pid in _blocks(text, device_id) if _alive(pid)]
    if running:
        raise UsageError(
            f"--inventory {path}: a stand-in {device_id!r} is running (pid {running[0]}); choose another --id"
        )
    try:
        load_inventory(path)
        others = parse_text(_without(text, device_id), path).devices
    except UsageError as exc:
        raise UsageError(f"--inventory {path}: {exc}") from None
    if device_id in others:
        raise UsageError(
            f"--inventory {path}: {others[device_id].source} already describes a device {device_id!r} "
            "that is not this stand-in; choose another --id"
        )
    taken = {device.serial for device in others.values()}
    if serial not in taken:
        return {}
    prefix = serial[:4]  # the model's serial prefix: the register's identity check reads it
    free = next(f"{prefix}{n:06d}" for n in range(int(serial[4:]) + 1, 10**6) if f"{prefix}{n:06d}" not in taken)
    return {"serial": free}


def write_entry(path: Path, entry: LabDevice) -> Callable[[], None]:
    """Add ``entry`` to the inventory at ``path`` as this process's marked block (a stale block
    of a killed stand-in is replaced); returns what takes the block out again."""
    pid = os.getpid()
    text = _without(_read(path), entry.id, keep=_alive) if path.exists() else ""
    if text:
        text = text.rstrip("\n") + "\n\n"
    text += _begin(entry.id, pid) + entry_toml(entry) + _end(entry.id)
    parse_text(text, path)  # the whole file must read back, with the user's lines where they are
    _write(path, text)

    def remove() -> None:
        try:
            rest = _without(_read(path), entry.id, keep=lambda other: other != pid)
            if rest.strip():
                _write(path, rest.rstrip("\n") + "\n")
            else:
                _target(path).unlink()
        except (OSError, UsageError):
            pass  # the file is gone or unreadable: nothing of ours to take out

    return remove


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--inventory {path}: cannot read it: {exc}") from None


def _target(path: Path) -> Path:
    return path.resolve() if path.is_symlink() else path


def _write(path: Path, text: str) -> None:
    """Atomically, through a symlink, keeping the file's mode."""
    target = _target(path)
    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as exc:
        raise UsageError(f"--inventory {path}: cannot write it: {exc}") from None
