"""АТОЛ wire front-end: real "Протокол ККТ 3.x" frames in, real frames out, over the fiscal core.

Transport (reference §3.2-§3.4, §8.3)
=====================================

* **v3** (0xFE framing, CRC-8): every host payload is a task-buffer command.  ADD / ACK_ADD
  execute the task at once (the emulator never has a task in progress); the *synchronous* answer
  (same packet ID) is ``A1`` (pending) by default or ``A3``/``A4`` + result when the task was
  added with NeedResult -- switch with ``core.wire_memory["atol_sync_result"] = "result"`` (or
  ``profile.extra``); the default follows the reference's recommendation.  The result always
  also goes out asynchronously on packet ID 0xF0 as ``A6 TId answer`` / ``A7 TId answer``; an
  application error (error byte ≠ 0) makes the task an *error* (A4/A7) [inferred], and the data
  is the same application answer either way (``55 67 00`` for "no paper").  REQ answers the
  task's status (+ data when finished) or ``B3``; ACK drops the task and answers its final status
  byte [inferred]; ABORT clears the buffer and answers ``A3`` [inferred].  A task without
  NeedResult is dropped as soon as it ran.  A failed task without IgnoreError *stops* the buffer
  until it is acknowledged: later ADDs are kept as ``A5`` (stopped) and not executed.  A TId
  already in the buffer gets ``B2``, a full buffer ``B1``, an unknown buffer command or flag bit
  ``B4``.  A corrupted host frame is answered with an empty frame carrying its ID (the
  retransmission request); an empty host frame asks for our last answer with that ID again; an
  exact repeat of the previous packet is answered from memory, not executed twice.
* **v2** (ENQ/ACK/EOT, DLE stuffing, LRC) for old clients: ENQ → ACK, frame → ACK (NAK on a bad
  LRC; the host repeats the frame without a new ENQ), EOT → ENQ when the answer is ready, ACK →
  answer frame, ACK → EOT, NAK → the frame again.  A frame is received only after the ENQ/ACK
  of the line discipline (§3.4 steps 1-3); on an idle line only the control bytes are heard, so
  a v2 frame without the handshake is neither executed nor answered (no ACK, no NAK)
  [inferred: the reference gives the handshake, not what the register does without it].  A
  0xFE byte starts a v3 frame (the link never confuses a v2 frame for one, at the cost of not
  accepting raw 0xFE inside v2 data), except as the correct LRC right after a v2 frame's ETX
  (1 frame in 256 has LRC 0xFE; a wrong LRC there is a corrupt v2 frame cut short by a v3
  frame).  Timing (T1..T8) is not emulated.
* Garbage is skipped; an unfinished frame is dropped on the inter-byte timeout (``reset``).  A
  powered-off register answers nothing and loses its task buffer and mode.

Application layer (§3.5)
========================

The access password (2 BCD, default 0) is checked on every task (wrong → 140).  The mode machine:
56h ``mode(1) password(4 BCD)`` from mode 0 (select); passwords 1-28 are cashiers (modes 1, 2),
29 the administrator (1-3), 30 the system administrator (1-6); a wrong password → 140, a
non-BCD one → 164; 48h back to mode 0 (refused with 155 while a receipt is open in mode 1).
Commands outside their mode → 102: receipts, 9Ah, 59h in mode 1; 67h in mode 2; 5Ah in mode 3;
64h/4Bh/EDh in mode 4 (programming) [inferred]; A6h in mode 6 (FN access) [inferred].  3Fh, 45h,
A5h, 9Dh, A4h, 4Dh, 58h, 91h, B3h, E8h, E9h and 95h work in every mode.

* 3Fh: the 30-byte 'D' block from the core (serial = last 8 digits of the 10-digit core serial;
  flags bit 4 = a printout is pending after the ФН commit [inferred], :data:`STATUS_PRINT_PENDING`).
* 92h opens a receipt; on a closed shift the core opens one implicitly when the profile says so
  (``auto_open_shift``).  The receipt's tax system is the 1055 requisite written with E8h before
  92h (consumed); without it the core takes the lowest registered one.  The cashier is requisite
  1021 if written, else "Кассир N" of the mode password.
* E6h position (tax byte: libfptr numbering [inferred]), 99h payment (``U err remainder change``),
  4Ah close (a non-zero sum is paid first), 59h cancel; 9Ah open shift; 5Ah Z; 67h X (type 1).
* 95h: finishes a printout pending after the ФН commit (no new document), otherwise prints a copy
  of the last document.  This is the emulator's "continue print" [inferred: libfptr's
  ``continuePrint`` has no documented binary command].
* 64h / 4Bh / EDh set the date, the time, both (the core's rules: shift closed → 156, before the
  last document → 32, more than 24 h ahead → 22 once, then accepted on the identical repeat).
* A6h (mode 6): ``kind(1) [tax-system mask(1)]`` [inferred]; kind 2 changes the registration
  parameters without ФН replacement: the new 1062 mask is the byte given directly, else the 1062
  last written with E8h (consumed), else the current one (→ "nothing changed", 231).  Kind 1
  (activation) answers 208, kind 3 (ФН replacement) 122.
* E8h writes TLVs (tag, length LE): 1021 cashier, 1055 receipt tax system, 1062 tax systems for
  A6h, 1101/1205 reasons (kept; the core records bit 7 itself).  E9h reads 1013, 1018, 1021,
  1037, 1041, 1062, 1209 and answers ``U err blocks(1) TLV``; other tags → 218.
* A4h/43h: the last (re-)registration (FD number, fiscal sign, 1062) [inferred, see the codec].
* A4h/10h (state 2 = expired [plausible, not confirmed]; receipt number = next receipt like 3Fh;
  the numbers' encoding is the ``atol_a4_10_encoding`` setting: ``binary`` LE, S7's reading of
  the [conflict] and the default, or ``bcd`` low byte first, atol4j's), 20h, 30h, 31h, 32h,
  33h, 42h.
* 58h last shift totals, B3h last error, 91h registers 10 (cash), 17 (date/time), 19 (receipt
  and shift state), 22 (serial), 55 (extended error of the last command); another register →
  108.  See :mod:`.diagnostics` for what "last" means here [inferred].

Settings (``emulator:atol?KEY=VALUE``, ``kkt-hil emulate atol --set KEY=VALUE``; the family's
``settings`` in :mod:`devices.atol.family`): ``atol_sync_result`` and ``atol_a4_10_encoding``,
read from ``core.profile.extra`` (``core.wire_memory`` overrides ``atol_sync_result`` at run
time).

Modules
=======

* :mod:`.state` -- :class:`AtolState` (mode, task buffer, written requisites; kept in
  ``core.wire_memory["atol"]``), :class:`Task`, ``AtolError``, :func:`modes_for_password`, the
  command → mode table, the core ↔ АТОЛ enum maps, the constants, :func:`describe_state`.
* :mod:`.transport` -- :class:`AtolFrontEnd`: byte stream (``feed``/``reset``), the v2 line, v3
  frames and the buffer commands ADD/ACK_ADD/ACK/REQ/ABORT, and ``_execute`` (access password,
  mode check, error mapping) over the command table.
* :mod:`.commands` -- ``AtolCommands``: modes 56h/48h, shift 9Ah/5Ah/67h, 95h, receipts
  92h/E6h/99h/4Ah/59h, date/time 64h/4Bh/EDh, E8h, A6h.
* :mod:`.queries` -- ``AtolQueries``: the read-only answers 3Fh, 45h, A5h, 9Dh, 4Dh, A4h, E9h and
  the shared helpers (cashier name, firmware, serial).
* :mod:`.diagnostics` -- ``AtolDiagnostics``: 58h, B3h, 91h.

The emulator never imports a driver.
"""

from .state import AtolState, Task, describe_state, modes_for_password
from .transport import AtolFrontEnd

__all__ = ["AtolFrontEnd", "AtolState", "Task", "describe_state", "modes_for_password"]
