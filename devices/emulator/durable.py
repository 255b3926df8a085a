"""``--state FILE`` made durable: every ФН commit is on disk before its answer leaves the emulator.

On disk
    ``FILE`` is the JSON snapshot, exactly the control channel's ``state`` layout (a file written
    by an earlier version loads as it is; after a clean exit it is the only file).
    ``FILE.journal`` holds what happened since that snapshot, one JSON line per record::

        {"crc":"8c2f0d3e","rec":{"seq":3,"kind":"commit","documents":[...],"state":{...},...}}

    ``crc`` is the CRC-32 of the exact bytes of ``rec`` as written.  Record 0 (``"kind": "base"``)
    names the snapshot the journal continues (the SHA-256 of FILE's bytes).  A ``commit`` record
    holds the documents one core call committed (a receipt; a shift open or close; a
    re-registration; fisGo's deferred re-registration and the shift open it runs in, together)
    and what a restore reads of the rest of the state as it was then
    (:func:`~devices.emulator.snapshot.journal_entry`); a ``state`` record the same without
    documents (paper, clock, OFD delivery, an open receipt...).

When
    A commit: appended and fdatasync'd from the core's ``on_commit`` hook, with the core's lock
    held, when the core call that committed returns and before the wire front-end builds its
    answer (:func:`devices.emulator.records.locked`).  So every document a client could have seen
    is on disk, and after any restart the next FD number is above every FD ever answered.
    The rest of the state: a ``state`` record when it changed, checked every ``SAVE_INTERVAL``
    seconds and on SIGTERM (:meth:`DurableState.save`) before the servers close.
    Compaction (FILE rewritten from the core, the journal restarted): at start, when the journal
    outgrows the snapshot (so each archived document is rewritten a bounded number of times), and
    at clean exit (the journal is then removed).  Every file is replaced atomically: a temp file,
    fsync, ``os.replace``, fsync of the directory; the lock is held throughout, so no commit falls
    between the new snapshot and its journal.

Loading
    FILE, then the journal if its base record names FILE's bytes.  A journal whose base names
    other bytes was left by a compaction that died after replacing FILE: all of it is in FILE, and
    it is ignored.  A bad last line, or one without its newline, is a write the process died in
    (its answer never left) and is ignored; a bad line before a good one, a gap in the sequence,
    FILE that is not JSON or is the state of another model is one line (:class:`StateFileError`),
    and nothing is written: the user's files stay as they are.  So is a path that cannot be
    written, checked before anything listens.  A write that fails while serving (disk full)
    stops the process with one line on stderr before the answer leaves: a register that cannot
    keep its ФН must not answer.

Why a journal and not SQLite (WAL mode, ``synchronous=FULL``)
    FILE has to stay the JSON of the ``state`` op (users keep, diff and hand-edit these files; a
    file written before this module existed must load).  With SQLite the state would live in a
    database: either that JSON as one value, rewritten whole (the archive grows without bound) at
    every commit, or a schema that mirrors the snapshot and must follow every change of
    :mod:`.snapshot` for good; and FILE would no longer be readable.  The journal keeps FILE as
    it was and adds a sidecar that a clean exit removes.  The cost is the same where it matters:
    one write and one fdatasync per commit (SQLite in WAL mode with synchronous=FULL also syncs
    the WAL once per transaction, plus checkpoints and two more files).  What can go wrong is
    short and tested (tests/test_durable_state.py): a torn last line (the checksum) and a
    compaction cut short (the base hash).

Not guarded: two emulators started on one FILE at once (each would compact over the other).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .snapshot import journal_entry, replay, restore_core, snapshot

if TYPE_CHECKING:
    from .core import FiscalCore
    from .records import Document

__all__ = ["DurableState", "StateFileError", "decode_journal", "encode_record", "journal_path", "load"]

JOURNAL_SUFFIX = ".journal"
SAVE_INTERVAL = 1.0  # seconds between checks for changes of the non-fiscal state
MIN_COMPACT_BYTES = 1 << 20  # compact when the journal is larger than this and than FILE
EXIT_FAILED = 1
_PREFIX, _MIDDLE = b'{"crc":"', b'","rec":'
_BODY = len(_PREFIX) + 8 + len(_MIDDLE)


class StateFileError(ValueError):
    """A state file that cannot be used, in one line (the command line prints it, exit 2)."""


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + JOURNAL_SUFFIX)


# ------------------------------------------------------------------------------ journal lines


def encode_record(record: dict[str, Any]) -> bytes:
    """One journal line: the record's JSON and its CRC-32."""
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"%s%08x%s%s}\n" % (_PREFIX, zlib.crc32(body), _MIDDLE, body)


def _decode_line(line: bytes) -> dict[str, Any] | None:
    if not (line.startswith(_PREFIX) and line[_BODY - len(_MIDDLE) : _BODY] == _MIDDLE and line.endswith(b"}")):
        return None
    body = line[_BODY:-1]
    try:
        if int(line[len(_PREFIX) : len(_PREFIX) + 8], 16) != zlib.crc32(body):
            return None
        record = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("seq"), int):
        return None
    return record


def decode_journal(data: bytes) -> list[dict[str, Any]]:
    """The records of a journal, in order, without a torn last line; :class:`StateFileError` for
    damage anywhere else (a bad line before a good one, a sequence number out of order)."""
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: nothing, or a write that never finished (torn, even if it parses)
    records = []
    for index, line in enumerate(lines):
        record = _decode_line(line)
        if record is None:
            if index == len(lines) - 1:
                break  # torn: the write the process died in
            raise StateFileError(f"line {index + 1} is damaged and {len(lines) - index - 1} lines follow it")
        if record["seq"] != index:
            raise StateFileError(f"line {index + 1} has sequence number {record['seq']}, expected {index}")
        records.append(record)
    return records


# ------------------------------------------------------------------------------ loading


def check_path(path: Path) -> None:
    """Refuse a state path that cannot be written (before anything listens)."""
    if path.is_dir():
        raise StateFileError("is a directory")
    parent = path.parent
    if not parent.exists():
        raise StateFileError(f"directory {parent} does not exist")
    if not parent.is_dir():
        raise StateFileError(f"{parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StateFileError(f"directory {parent} is not writable")
    if path.exists() and not path.is_file():  # /dev/zero would be read for ever, a FIFO block the start
        raise StateFileError("is not a regular file")
    if path.exists() and not os.access(path, os.W_OK):
        raise StateFileError("the file is not writable")
    if journal_path(path).is_dir():
        raise StateFileError(f"{journal_path(path)} is a directory")


def load(path: Path) -> tuple[dict[str, Any], bytes] | None:
    """FILE with its journal replayed, and FILE's bytes; None when there is no FILE."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateFileError(f"cannot read it: {_reason(exc)}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateFileError(f"not a register state (bad JSON: {exc}); the file was left as it is") from None
    if not isinstance(data, dict):
        raise StateFileError("not a register state (not a JSON object); the file was left as it is")
    entries = _journal_entries(journal_path(path), hashlib.sha256(raw).hexdigest())
    try:
        return replay(data, entries), raw
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateFileError(
            f"{journal_path(path).name} does not fit the snapshot ({exc!r}); files left as they are"
        ) from None


def _journal_entries(path: Path, base: str) -> list[dict[str, Any]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StateFileError(f"cannot read {path.name}: {_reason(exc)}") from None
    try:
        records = decode_journal(data)
        if not records:
            return []
        head = records[0]
        if head.get("kind") != "base" or not isinstance(head.get("snapshot"), str):
            raise StateFileError("line 1 is not the journal's base record")
        if head["snapshot"] != base:
            return []  # FILE was rewritten after this journal began: everything in it is in FILE
        for number, record in enumerate(records[1:], start=2):
            if record.get("kind") not in ("commit", "state"):
                raise StateFileError(f"line {number} is a record of unknown kind {record.get('kind')!r}")
    except StateFileError as exc:
        raise StateFileError(f"{path.name} is damaged: {exc}; files left as they are") from None
    return records[1:]


# ------------------------------------------------------------------------------ the store


class DurableState:
    """The ``--state FILE`` of one fiscal core (see the module docstring).

    ``open()`` once (loads, writes the first snapshot, installs the hook, starts the saver thread:
    call it with the stop signals already blocked), ``save()`` on SIGTERM, ``close()`` at exit.
    ``on_failure(message)`` is called, and must not return, when a write fails while serving
    (default: one line on stderr, exit status 1)."""

    def __init__(
        self,
        core: FiscalCore,
        path: Path | str,
        *,
        interval: float = SAVE_INTERVAL,
        on_failure: Callable[[str], NoReturn] | None = None,
    ) -> None:
        self.core = core
        self.path = Path(path)
        self.journal = journal_path(self.path)
        self.interval = interval
        self._on_failure = on_failure or self._stop_process
        self._fd: int | None = None
        self._seq = 0
        self.journal_bytes = 0
        self._snapshot = b""  # FILE's bytes as last read or written
        self._last_key = ""  # what the last record said, to skip a state record that says it again
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self, after_load: Callable[[], None] | None = None) -> bool:
        """Check the path, load FILE and its journal into the core (then call ``after_load``),
        write the first snapshot and journal every commit from now on.  True if a state was
        loaded; :class:`StateFileError` (one line) before anything is written."""
        check_path(self.path)
        loaded = load(self.path)
        if loaded is not None:
            data, self._snapshot = loaded
            try:
                restore_core(self.core, data)
            except ValueError as exc:
                raise StateFileError(f"{exc}; files left as they are") from None
            if after_load is not None:
                after_load()
        try:
            self.compact()
        except OSError as exc:
            raise StateFileError(f"cannot write it: {_reason(exc)}") from None
        self.core.on_commit = self._on_commit
        self._thread = threading.Thread(target=self._saver, name="kkt-state", daemon=True)
        self._thread.start()
        return loaded is not None

    def compact(self) -> None:
        """Rewrite FILE from the core and restart the journal."""
        with self.core.lock:
            data = _encode_snapshot(snapshot(self.core))
            if data != self._snapshot:
                _write_atomic(self.path, data)
                self._snapshot = data
            head = encode_record({"seq": 0, "kind": "base", "snapshot": hashlib.sha256(data).hexdigest()})
            _write_atomic(self.journal, head)
            fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND)
            old, self._fd = self._fd, fd
            if old is not None:
                os.close(old)
            self._seq, self.journal_bytes = 0, len(head)
            self._last_key = self._key(journal_entry(self.core, []))

    def save(self) -> None:
        """Journal the rest of the state if it changed since the last record (commits are on disk
        already)."""
        with self.core.lock:
            if self._fd is None:
                return
            entry = journal_entry(self.core, [])
            key = self._key(entry)
            if key == self._last_key:
                return
            try:
                self._append({"kind": "state", **entry})
            except OSError as exc:
                self._on_failure(f"cannot write {self.journal.name}: {_reason(exc)}")
            self._last_key = key

    def close(self) -> None:
        """The final snapshot: the journal folded into FILE, then removed.  OSError if FILE cannot
        be written (the journal then stays, and holds every commit)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self.core.lock:
            if self._fd is None:
                return
            data = _encode_snapshot(snapshot(self.core))
            if data != self._snapshot:
                _write_atomic(self.path, data)
                self._snapshot = data
            self.core.on_commit = None
            os.close(self._fd)
            self._fd = None
            self.journal.unlink(missing_ok=True)
            _fsync_dir(self.path.parent)

    def abandon(self) -> None:
        """Stop saving and let go of the journal without a final snapshot: what a kill leaves
        on disk (the files are not touched)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self.core.lock:
            self.core.on_commit = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # -------------------------------------------------------------------------- inside

    def _on_commit(self, documents: list[Document]) -> None:
        """The core's hook: the lock is held and the answer has not left yet."""
        entry = journal_entry(self.core, documents)
        try:
            self._append({"kind": "commit", **entry})
        except OSError as exc:
            numbers = ", ".join(str(d.number) for d in documents)
            self._on_failure(f"cannot journal FD {numbers}: {_reason(exc)}")
        self._last_key = ""  # the next save() writes a state record (cheaper than comparing here)

    def _append(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            raise OSError("the journal is closed")
        line = encode_record({"seq": self._seq + 1, **record})
        _write_all(self._fd, line)
        os.fdatasync(self._fd)
        self._seq += 1
        self.journal_bytes += len(line)

    def _key(self, entry: dict[str, Any]) -> str:
        state = entry["state"]
        if self.core.clock.flowing:  # wall time moving the clock is no change worth a record
            state = {**state, "clock": None}
        return json.dumps([state, entry["unsent"], entry["unprinted"]], sort_keys=True, ensure_ascii=False)

    def _saver(self) -> None:
        while not self._stop.wait(self.interval):
            self.save()
            if self.journal_bytes > max(MIN_COMPACT_BYTES, len(self._snapshot)):
                try:
                    self.compact()
                except OSError as exc:
                    self._on_failure(f"cannot compact: {_reason(exc)}")

    def _stop_process(self, message: str) -> NoReturn:
        print(f"kkt-hil: --state {self.path}: {message}; stopping without answering", file=sys.stderr, flush=True)
        os._exit(EXIT_FAILED)


# ------------------------------------------------------------------------------ files


def _encode_snapshot(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: all of it or none of it, also across a power cut."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)
