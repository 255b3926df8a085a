"""README.md taken apart into what it shows a user (tests/test_readme_*.py runs each of them).

Pure text work, nothing imported from the product: fenced blocks and inline code spans (a span
may cross a line break, as Markdown allows), each with its line number and the heading it sits
under; from them the command lines, the ``--kkt`` specs, the control-channel requests and the
list of control ops, the inventory and Python blocks, option fragments (``--fn fn15``), and the
names the README lists (seeded defects, profile settings).

README conventions the extractors rely on (a reformat that breaks them trips the minimum counts
in tests/test_readme_*.py, never silently):
- a command is a line of an unlabelled fenced block, or an inline span, starting with
  ``.venv/bin/kkt-hil``, ``kkt-hil``, ``make`` or ``.venv/bin/python``; two spaces and ``#``
  start a comment; ``[...]`` is an optional part and ``a|b`` inside it alternatives;
- a control request is a JSON object with an ``"op"`` key, inline or on a fenced line (``->``
  and what follows is the reply the README promises);
- the control ops are the bullets after a line ``Ops…:``, each starting with its op name(s).
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"

COMMAND_PREFIXES = (".venv/bin/kkt-hil ", "kkt-hil ", "make ", ".venv/bin/python ")
SPEC = re.compile(r"(?:emulator|url|lab):[^\s\"'`]+")
_FENCE = re.compile(r"^```(\S*)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_COMMENT = re.compile(r"\s+#\s.*$|\s{2,}#.*$")
_OPTIONAL = re.compile(r"\[([^\[\]]+)\]")
_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_ALTERNATION = re.compile(r"`([^`\s]+)`(?:\s*\|\s*`([^`\s]+)`)+")


@dataclass(frozen=True)
class Snippet:
    """One thing the README shows: ``text`` at ``line`` (1-based), under heading ``section``."""

    line: int
    text: str
    section: str
    fenced: bool
    lang: str = ""
    comment: str = ""  # a command line's trailing comment (``# → listening …``)

    @property
    def label(self) -> str:
        """The test id: line number and text, short."""
        text = " ".join(self.text.split())
        return f"L{self.line} {text if len(text) <= 90 else text[:87] + '...'}"


@dataclass(frozen=True)
class Fence:
    line: int  # of the opening ```
    lang: str
    section: str
    lines: tuple[tuple[int, str], ...]  # (line number, text) of its content

    @property
    def text(self) -> str:
        return "\n".join(text for _, text in self.lines) + "\n"


@dataclass
class Readme:
    path: Path
    fences: list[Fence] = field(default_factory=list)
    spans: list[Snippet] = field(default_factory=list)
    prose: list[tuple[int, str, str]] = field(default_factory=list)  # (line, text, section) outside fences


def parse(path: Path = README) -> Readme:
    doc = Readme(path)
    section = ""
    fence: tuple[int, str, list[tuple[int, str]]] | None = None
    masked: list[str] = []  # the text with fenced lines blanked: inline spans are found in the rest
    sections: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        opening = _FENCE.match(line)
        if fence is None and opening:
            fence = (number, opening.group(1), [])
            masked.append("")
        elif fence is not None and line.strip() == "```":
            doc.fences.append(Fence(fence[0], fence[1], section, tuple(fence[2])))
            fence = None
            masked.append("")
        elif fence is not None:
            fence[2].append((number, line))
            masked.append("")
        else:
            heading = _HEADING.match(line)
            if heading:
                section = heading.group(2).strip()
            doc.prose.append((number, line, section))
            masked.append(line)
        sections.append(section)
    text = "\n".join(masked)
    starts = [0, *itertools.accumulate(len(line) + 1 for line in masked)]
    for match in _SPAN.finditer(text):
        if "\n\n" in match.group(2):
            continue  # not a span: an unpaired backtick further up
        number = _line_at(starts, match.start())
        doc.spans.append(Snippet(number, " ".join(match.group(2).split()), sections[number - 1], fenced=False))
    return doc


def _line_at(starts: list[int], offset: int) -> int:
    lo, hi = 0, len(starts) - 1
    while lo < hi - 1:
        mid = (lo + hi) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid
    return lo + 1


@cache
def readme() -> Readme:
    return parse(README)


# ------------------------------------------------------------------------------ commands


def commands(doc: Readme) -> list[Snippet]:
    """Every command line: fenced (unlabelled or shell blocks) and inline spans with arguments.

    An inline ``kkt-hil run`` alone names the command rather than showing one: see
    :func:`command_names`."""
    found: list[Snippet] = []
    for fence in doc.fences:
        if fence.lang not in ("", "sh", "bash", "console", "shell"):
            continue
        for number, line in fence.lines:
            stripped = line.strip().removeprefix("$ ")  # a shell prompt before a command
            if stripped.startswith(COMMAND_PREFIXES):
                comment = _COMMENT.search(stripped)
                text = stripped[: comment.start()] if comment else stripped
                found.append(
                    Snippet(
                        number,
                        text.strip(),
                        fence.section,
                        fenced=True,
                        lang=fence.lang,
                        comment=comment.group(0).strip() if comment else "",
                    )
                )
    for span in doc.spans:
        words = span.text.split()
        if span.text.startswith(COMMAND_PREFIXES) and len(words) >= (2 if words[0] == "make" else 3):
            found.append(span)
    return sorted(found, key=lambda s: s.line)


def command_names(doc: Readme) -> list[Snippet]:
    """Inline ``kkt-hil COMMAND`` with nothing after it: a subcommand the README names."""
    return [s for s in doc.spans if re.fullmatch(r"(?:\.venv/bin/)?kkt-hil [a-z]+", s.text)]


def variants(text: str) -> list[list[str]]:
    """The argument lists a command line stands for: without its ``[optional]`` parts, and with
    all of them, once per alternative of an ``a|b`` inside one (``[--sacrificial yes|no]``)."""
    groups = _OPTIONAL.findall(text)
    minimal = _OPTIONAL.sub(" ", text)
    result = [shlex.split(minimal)]
    if groups:
        widest = max(len(_alternatives(g)) for g in groups)
        for choice in range(widest):

            def pick(match: re.Match[str], choice: int = choice) -> str:
                options = _alternatives(match.group(1))
                return " " + options[min(choice, len(options) - 1)] + " "

            result.append(shlex.split(_OPTIONAL.sub(pick, text)))
    unique: list[list[str]] = []
    for argv in result:
        if argv not in unique:
            unique.append(argv)
    return unique


def _alternatives(group: str) -> list[str]:
    """``--sacrificial yes|no`` → [``--sacrificial yes``, ``--sacrificial no``]."""
    words = group.split()
    for index, word in enumerate(words):
        if "|" in word and "://" not in word:
            return [" ".join([*words[:index], alt, *words[index + 1 :]]) for alt in word.split("|")]
    return [group]


# ------------------------------------------------------------------------------ specs


def specs(doc: Readme) -> list[Snippet]:
    """Every device spec: ``--kkt`` values of the commands, inline spans that are specs, and the
    spec strings of the Python blocks (code and comments).  A bare kind (``url:``) is a name."""
    found: dict[tuple[int, str], Snippet] = {}
    for command in commands(doc):
        for argv in variants(command.text):
            for flag, value in itertools.pairwise(argv):
                if flag == "--kkt":
                    found.setdefault((command.line, value), Snippet(command.line, value, command.section, True))
    for span in doc.spans:
        if SPEC.fullmatch(span.text):
            found.setdefault((span.line, span.text), span)
    for fence in doc.fences:
        if fence.lang == "python":
            for number, line in fence.lines:
                for match in re.finditer(r"[\"']((?:emulator|url|lab):[^\"']+)[\"']", line):
                    found.setdefault((number, match.group(1)), Snippet(number, match.group(1), fence.section, True))
    return sorted(found.values(), key=lambda s: (s.line, s.text))


# ------------------------------------------------------------------------------ control channel


@dataclass(frozen=True)
class ControlRequest:
    snippet: Snippet
    request: dict[str, Any]
    promised: dict[str, Any] | None  # a JSON reply shown after ``->``
    promise_text: str  # what follows ``->`` (prose or JSON), "" when nothing does


def control_requests(doc: Readme) -> list[ControlRequest]:
    """Every JSON object with an ``"op"`` the README shows, inline or on a fenced line."""
    found: list[ControlRequest] = []
    candidates = list(doc.spans)
    for fence in doc.fences:
        candidates.extend(Snippet(n, line.strip(), fence.section, True) for n, line in fence.lines)
    for snippet in candidates:
        left, arrow, right = snippet.text.partition("->")
        try:
            request = json.loads(left)
        except ValueError:
            continue
        if not isinstance(request, dict) or "op" not in request:
            continue
        promised = None
        if arrow:
            try:
                promised = json.loads(right)
            except ValueError:
                promised = None
        found.append(ControlRequest(snippet, request, promised, right.strip()))
    return sorted(found, key=lambda r: r.snippet.line)


@dataclass(frozen=True)
class OpBullet:
    line: int
    names: tuple[str, ...]
    text: str  # the whole bullet, continuation lines joined

    def alternations(self) -> list[tuple[str, ...]]:
        """The ``a`` | ``b`` | ``c`` value lists of the bullet."""
        return [tuple(re.findall(r"`([^`\s]+)`", m.group(0))) for m in _ALTERNATION.finditer(self.text)]


def listed_ops(doc: Readme) -> list[OpBullet]:
    """The bullets after the line ``Ops…:`` (the control channel's op list)."""
    bullets: list[OpBullet] = []
    inside = False
    current: list[tuple[int, str]] = []

    def flush() -> None:
        if current:
            text = " ".join(t.strip() for _, t in current)[2:]
            head = text.split(" — ")[0]
            names = tuple(re.findall(r"`([a-z_]+)`", head))
            bullets.append(OpBullet(current[0][0], names, text))
            current.clear()

    for number, line, _section in doc.prose:
        if re.match(r"^Ops\b.*:\s*$", line):
            inside = True
            continue
        if not inside:
            continue
        if line.startswith("- "):
            flush()
            current.append((number, line))
        elif line.startswith("  ") and current:
            current.append((number, line))
        else:
            flush()
            if bullets:
                break
    flush()
    return bullets


# ------------------------------------------------------------------------------ other blocks


def fences_of(doc: Readme, lang: str, containing: str = "") -> list[Fence]:
    return [f for f in doc.fences if f.lang == lang and containing in f.text]


def option_fragments(doc: Readme) -> list[Snippet]:
    """Inline spans that show an option: ``--fn fn15``, ``--allow-destructive``, ``-k``."""
    return [s for s in doc.spans if re.match(r"^--?[a-zA-Z][\w-]*(?:[ =]\S+)?$", s.text)]


def bullets_under(doc: Readme, heading_part: str, after: str = "") -> list[tuple[int, str]]:
    """The bullets (continuation lines joined) of the section whose heading contains
    ``heading_part``, after the first line containing ``after``."""
    items: list[tuple[int, str]] = []
    started = not after
    for number, line, section in doc.prose:
        if heading_part not in section:
            continue
        if not started:
            started = after in line
            continue
        if line.startswith("- "):
            items.append((number, line[2:].strip()))
        elif line.startswith("  ") and items and items[-1][0] < number:
            items[-1] = (items[-1][0], items[-1][1] + " " + line.strip())
        elif items and not line.strip():
            break
    return items
