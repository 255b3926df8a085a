"""Allure results of several runs (or hosts) as one results directory, for one HTML report.

Every file of every directory is linked (else copied) into one staging directory: result and
container files are named by their uuid, so nothing collides unless a directory was given twice
or copied (a :class:`UsageError`: the same result would count twice).  Each result says which host
it ran on, the «Хост» parameter the plugin sets (older results: allure-pytest's ``host`` label).
The parameter is excluded from the history id, so that one host's runs make one history; but
Allure 3 files results of one history id as retries of each other, and the same scenario on two
hosts (or two runs on one host: firmware A and B) is two results, not a retry — so when several
directories are merged, the staged results carry «Хост» as a parameter that counts, the host
followed by the directory's name where one host ran more than one of them (a merged report's
history is kept per run).  ``environment.properties`` of the runs become one: a key whose runs
disagree names each value with its run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UsageError

from . import HOST_PARAMETER, write_environment
from .results import MANIFEST, result_host

__all__ = ["Merged", "merge_results", "result_host"]

_ENVIRONMENT = "environment.properties"
_FIRST_WINS = ("executor.json", "categories.json")  # the same for every run of the stand


@dataclass(frozen=True)
class Merged:
    path: Path
    results: int  # *-result.json files
    hosts: tuple[str, ...]


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None  # linked as it is: Allure (and kkt-hil's own reading) says what is wrong with it
    return data if isinstance(data, dict) else None


def _place(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _with_host(data: dict[str, Any], host: str) -> dict[str, Any]:
    """The result with «Хост» as a parameter that counts in the history id."""
    parameters = [
        p for p in data.get("parameters") or [] if not (isinstance(p, dict) and p.get("name") == HOST_PARAMETER)
    ]
    parameters.append({"name": HOST_PARAMETER, "value": host})
    return {**data, "parameters": parameters}


def merge_results(dirs: Sequence[Path], into: Path) -> Merged:
    """Stage the results of ``dirs`` in the empty directory ``into``."""
    resolved = [Path(d).resolve() for d in dirs]
    for i, path in enumerate(resolved):
        if path in resolved[:i]:
            raise UsageError(f"--results {dirs[i]} is given twice")
    results: dict[Path, tuple[Path, dict[str, Any] | None, str, str]] = {}  # staged → source, data, host, run
    others: dict[str, Path] = {}
    environments: list[tuple[tuple[str, ...], str, Path]] = []  # the run's hosts, its directory, the file
    hosts: dict[str, set[str]] = {}  # host → the directories it ran
    for given, folder in zip(dirs, resolved, strict=True):
        run_hosts: dict[str, None] = {}
        for source in sorted(folder.iterdir()):
            if not source.is_file() or source.name == MANIFEST:
                continue
            if source.name == _ENVIRONMENT:
                environments.append(((), given.name, source))
                continue
            if source.name in _FIRST_WINS:
                others.setdefault(source.name, source)
                continue
            target = into / source.name
            if target.name in others or target in results:
                first = others.get(target.name) or results[target][0]
                raise UsageError(
                    f"--results {given}: {source.name} is in {first.parent} too: the same run given twice, "
                    "or a copy of it (each result would count twice)"
                )
            if source.name.endswith("-result.json"):
                data = _read(source)
                host = result_host(data)
                if host:
                    run_hosts.setdefault(host)
                results[target] = (source, data, host, given.name)
            else:
                others[target.name] = source
        if environments and environments[-1][1] == given.name and not environments[-1][0]:
            environments[-1] = (tuple(run_hosts), given.name, environments[-1][2])
        for host in run_hosts:
            hosts.setdefault(host, set()).add(given.name)

    def label(host: str, run: str) -> str:
        """«Хост» of a merged result: the host, and the run's directory where the host ran several."""
        return f"{host} ({run})" if len(hosts.get(host, ())) > 1 else host

    into.mkdir(parents=True, exist_ok=True)
    for name, source in others.items():
        _place(source, into / name)
    for target, (source, data, host, run) in results.items():
        if len(dirs) > 1 and data is not None:
            staged = _with_host(data, label(host or "?", run))
            target.write_text(json.dumps(staged, ensure_ascii=False), encoding="utf-8")
        else:
            _place(source, target)
    if environments:
        runs = [(", ".join(label(h, run) for h in run_hosts) or run, path) for run_hosts, run, path in environments]
        _merge_environment(runs, into)
    return Merged(into, len(results), tuple(hosts))


def _merge_environment(environments: list[tuple[str, Path]], into: Path) -> None:
    values: dict[str, dict[str, str]] = {}  # key → run → value
    for run, path in environments:
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        for key, value in _properties(text).items():
            values.setdefault(key, {})[run] = value
    merged = {}
    for key, by_run in values.items():
        distinct = set(by_run.values())
        merged[key] = next(iter(distinct)) if len(distinct) == 1 else "; ".join(f"{r}: {v}" for r, v in by_run.items())
    merged["hosts"] = ", ".join(run for run, _ in environments)
    write_environment(into, merged)


_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.)")
_SIMPLE = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _unescape(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.startswith("u") and len(code) == 5:
            return chr(int(code[1:], 16))
        return _SIMPLE.get(code, code)

    joined = _ESCAPE.sub(one, text)
    return joined.encode("utf-16", "surrogatepass").decode("utf-16", "replace")  # surrogate pairs, as Java writes them


def _properties(text: str) -> dict[str, str]:
    """What :func:`harness.report.write_environment` wrote (one logical line per key)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip()[0] in "#!":
            continue
        match = re.match(r"((?:\\.|[^=:\\])*)[=:](.*)", line)
        if match:
            found[_unescape(match.group(1))] = _unescape(match.group(2))
    return found
