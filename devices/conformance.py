"""The conformance table of the emulators: every command of the vendor manual × every emulated
model → served, not applicable to that model, or not emulated.  Generated from the code — the
Pirit catalogue of the manual (:mod:`devices.pirit.catalogue`), the handlers the front-ends
really have, and the model catalogue — so it cannot drift from what the emulator does.

    python -m devices.conformance            # print the table (Markdown)
    python -m devices.conformance --write README.md   # replace the README's generated block

The README's block sits between ``<!-- conformance:begin -->`` and ``<!-- conformance:end -->``;
tests/test_conformance.py fails when it is not what this module generates.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from devices.emulator.profiles import PROFILES, ModelProfile
from devices.pirit.catalogue import COMMANDS_LIST, EDITION_TITLES, Command, has_command, has_sub

BEGIN, END = "<!-- conformance:begin -->", "<!-- conformance:end -->"
SERVED, NOT_APPLICABLE, MISSING = "да", "—", "нет"
LEGEND = (
    f"«{SERVED}» — served with the manual's answer layout and refusals; «{NOT_APPLICABLE}» — not in "
    "this model's edition of the manual: answered 0x02 (unknown command), as the register does; "
    f"«{MISSING}» — in the manual, not emulated (answered 0x02). A number after «{SERVED}» counts the "
    "sub-requests served of those the edition lists."
)


def _pirit_handlers() -> frozenset[int]:
    from devices.pirit.emulator.frontend import HANDLERS

    return frozenset(HANDLERS)


def _atol_handlers() -> tuple[list[tuple[int, str]], frozenset[int]]:
    from devices.atol.emulator.transport import AtolFrontEnd
    from devices.atol.protocol import Cmd
    from devices.emulator.core import FiscalCore

    frontend = AtolFrontEnd(FiscalCore(PROFILES["atol"]))
    commands = sorted((int(c), c.name.lower().replace("_", " ")) for c in Cmd)
    return commands, frozenset(int(code) for code in frontend._commands)


def served_subs(command: Command, model: ModelProfile) -> frozenset[int]:
    """The sub-requests of ``command`` the model's front-end serves, found by asking it each one
    on a fresh emulated register (shift open): a handler answers or refuses a number it knows,
    and raises UnknownSub for one it does not."""
    from devices.emulator.core import FiscalCore
    from devices.pirit.emulator.fields import UnknownSub
    from devices.pirit.emulator.frontend import HANDLERS, PiritFrontEnd
    from devices.pirit.protocol import DEFAULT_PASSWORD, Request

    core = FiscalCore(model)
    core.start_work(core.now())
    core.open_shift()
    frontend = PiritFrontEnd(core)
    handler = getattr(frontend, HANDLERS[command.code])
    found = set()
    for sub in command.subs:
        try:
            handler(Request(DEFAULT_PASSWORD, 0x21, command.code, (str(sub.number),)))
        except UnknownSub:
            continue
        except Exception:  # noqa: BLE001 -- a refusal of a known sub-request still serves it
            pass
        found.add(sub.number)
    return frozenset(found)


def pirit_cell(command: Command, model: ModelProfile, served: frozenset[int]) -> str:
    if not has_command(command.code, model.edition, model.ffd):
        return NOT_APPLICABLE
    if command.code not in served:
        return MISSING
    if not command.subs:
        return SERVED
    listed = {s.number for s in command.subs if has_sub(command.code, s.number, model.edition, model.ffd)}
    answered = served_subs(command, model) & listed
    if not answered:
        return MISSING
    return f"{SERVED} {len(answered)}/{len(listed)}"


def pirit_models() -> list[ModelProfile]:
    return [p for p in PROFILES.values() if p.family == "pirit"]


def pirit_table(served: frozenset[int] | None = None) -> list[str]:
    served = _pirit_handlers() if served is None else served
    models = pirit_models()
    head = " | ".join(f"{m.id} ({EDITION_TITLES[m.edition]}, ФФД {m.ffd})" for m in models)
    lines = [f"| код | команда | {head} |", "|---|---|" + "---|" * len(models)]
    for command in COMMANDS_LIST:
        title = command.title + (" (снята из руководства в 2021)" if command.dropped else "")
        cells = " | ".join(pirit_cell(command, m, served) for m in models)
        lines.append(f"| 0x{command.code:02X} | {title} | {cells} |")
    return lines


def atol_table() -> list[str]:
    commands, served = _atol_handlers()
    models = [p for p in PROFILES.values() if p.family == "atol"]
    lines = [f"| код | команда | {' | '.join(m.id for m in models)} |", "|---|---|" + "---|" * len(models)]
    for code, name in commands:
        cell = SERVED if code in served else MISSING
        lines.append(f"| {code:02X}h | {name} | {' | '.join(cell for _ in models)} |")
    return lines


def table() -> str:
    parts: Iterable[str] = (
        "Pirit (the manual: dreamkas/pirit_documentation, every command heading of its six editions):",
        "",
        *pirit_table(),
        "",
        "АТОЛ (every command of the protocol codec, `devices/atol/protocol/commands.py`):",
        "",
        *atol_table(),
        "",
        LEGEND,
    )
    return "\n".join(parts)


def replace_block(text: str, generated: str) -> str:
    """``text`` with its generated block replaced; ValueError when the markers are missing."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {BEGIN} … {END} block")
    return text[: start + len(BEGIN)] + "\n" + generated + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devices.conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="FILE", help="replace the generated block of FILE (the README)")
    args = parser.parse_args(argv)
    generated = table()
    if args.write is None:
        print(generated)
        return 0
    path = Path(args.write)
    try:
        path.write_text(replace_block(path.read_text(encoding="utf-8"), generated), encoding="utf-8")
    except (OSError, ValueError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 1
    print(f"conformance table written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
