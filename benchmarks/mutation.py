"""Mutation score of the emulators against the scenario suite (``pytest scenarios``), with mutmut 3.

Why mutmut and not cosmic-ray: mutmut is maintained, runs in-process with fork, and runs only the
scenarios that reach each mutated function (its stats pass records them), so the whole scenario
suite per mutant stays cheap; cosmic-ray starts a test process per mutant.

    .venv/bin/python benchmarks/mutation.py [--group core|fisgo|pirit|atol|all] [--max-children N] [--budget SECONDS]
    .venv/bin/python benchmarks/mutation.py --group core --report     # no run: the last results, from mutants/
    .venv/bin/python benchmarks/mutation.py --group fisgo --diffs     # ... and a one-line diff per survivor
    .venv/bin/python benchmarks/mutation.py --show 'devices.dreamkas.fisgo.x_name__mutmut_3'   # one mutant's diff

The mutmut configuration is ``[tool.mutmut]`` in pyproject.toml: all four groups' files are
mutated in one generation pass into ``mutants/``; a run picks its group's mutants by name globs,
re-tests all of them (previous verdicts of the group are cleared first) and collects fresh stats.
Honesty checks: the unmutated suite must pass first; inside the run a probe (this module loaded
as a pytest plugin, ``-p benchmarks.mutation``) records the files the scenarios really imported,
and every mutated module must come from ``mutants/`` with mutmut's trampolines in it (an editable
install could otherwise serve the unmutated package and every mutant would "survive"); and at
least one mutant must be killed.

Score = killed / (total - listed equivalent), in %; timeouts, "no tests" and suspicious mutants are
counted in the total, not as kills ("det." = (killed + timeout) / the same, as mutmut's badge counts).
``benchmarks/mutation_equivalent.txt`` lists mutants triaged as equivalent (one name a line,
``# reason`` required); they leave the denominator and are printed apart.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MUTANTS = REPO / "mutants"
EQUIVALENT_FILE = REPO / "benchmarks" / "mutation_equivalent.txt"
PROBE_FILE = "mutmut-import-probe.json"  # written into mutants/ (the run's working directory)
RUN_LOG = "mutmut-run.log"
GENERATED_MARKER = "# mutmut generated"  # on every line mutmut adds to a mutated file

# the fiscal core; ofd_link.py (the OFD over a network socket) is transport, tested by tests/test_ofd_link.py:
# the scenarios use the in-process OFD and never reach it
CORE_FILES = ("core", "rules", "receipts", "cashdesk", "records", "printing", "clock")
GROUP_NAMES = ("core", "fisgo", "pirit", "atol")
# the emulators a group's mutants are tested on (PYTEST_ADDOPTS of the run): the scenarios on the
# models that reach the group's code, not all four — a survivor costs the whole selected suite
GROUP_DEVICES: dict[str, tuple[str, ...]] = {
    "core": ("emulator:kf",),  # the Pirit front-end reaches the core's rules; АТОЛ only doubles the time
    "fisgo": ("emulator:kf",),  # Старт's differences (gate, R4.6) take the same fisGo paths
    "pirit": ("emulator:kf", "emulator:start"),
    "atol": ("emulator:atol",),
}


def suite_env(groups: Iterable[str]) -> dict[str, str]:
    """The environment of the baseline and of ``mutmut run``: ``--kkt`` for the groups' devices."""
    devices = dict.fromkeys(d for g in groups for d in GROUP_DEVICES[g])
    return {**os.environ, "PYTEST_ADDOPTS": " ".join(f"--kkt={d}" for d in devices)}


# mutmut 3.8.1 exit-code meanings (mutmut.stats.status_by_exit_code); anything else is "suspicious"
STATUS_BY_EXIT_CODE: dict[int | None, str] = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    2: "check was interrupted by user",
    None: "not checked",
    33: "no tests",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
}
SPINNER = re.compile(r"^\s*[\u2800-\u28ff] ")  # mutmut's progress spinner (braille glyphs)
COLUMNS = ("killed", "survived", "timeout", "no tests", "suspicious", "not checked", "other")


def status_of(exit_code: int | None) -> str:
    return STATUS_BY_EXIT_CODE.get(exit_code, "suspicious")


def group_files(group: str, root: Path = REPO) -> list[str]:
    """Repository-relative paths of the source files one group mutates."""
    if group == "core":
        return [f"devices/emulator/{name}.py" for name in CORE_FILES]
    if group == "fisgo":
        return ["devices/dreamkas/fisgo.py"]
    if group in ("pirit", "atol"):
        folder = root / "devices" / group / "emulator"
        return sorted(str(p.relative_to(root)) for p in folder.glob("*.py"))
    raise ValueError(f"unknown group {group!r}")


def module_of(path: str) -> str:
    """The dotted module mutmut derives from a file path (``pkg/__init__.py`` is ``pkg``)."""
    module = path[: -len(".py")].replace("/", ".")
    return module[: -len(".__init__")] if module.endswith(".__init__") else module


def file_glob(path: str) -> str:
    """A mutmut mutant-name glob matching exactly the mutants of one file."""
    return f"{module_of(path)}.x*"  # mangled names start with x_ (functions) or xǁ (methods)


def parse_equivalent(text: str) -> dict[str, str]:
    """``name  # reason`` lines -> {name: reason}; blank and ``#`` lines are skipped; a reason is required."""
    listed: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, _, reason = line.partition("#")
        name, reason = name.strip(), reason.strip()
        if not reason or " " in name:
            raise ValueError(f"line {number}: expected 'mutant_name  # reason', got {raw!r}")
        listed[name] = reason
    return listed


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))
    equivalent: int = 0
    survivors: list[str] = field(default_factory=list)
    equivalent_killed: list[str] = field(default_factory=list)  # listed as equivalent, yet a test killed it

    @property
    def total(self) -> int:
        return sum(self.counts.values()) + self.equivalent

    @property
    def score(self) -> float | None:
        """killed / (total - equivalent) in %; None when nothing is left to score."""
        denominator = self.total - self.equivalent
        return None if denominator <= 0 else 100.0 * self.counts["killed"] / denominator

    @property
    def detected(self) -> float | None:
        """(killed + timeout) / (total - equivalent) in %: mutmut's own badge counts a hang as caught."""
        denominator = self.total - self.equivalent
        return None if denominator <= 0 else 100.0 * (self.counts["killed"] + self.counts["timeout"]) / denominator

    def add(self, other: Tally) -> None:
        for column in COLUMNS:
            self.counts[column] += other.counts[column]
        self.equivalent += other.equivalent
        self.survivors += other.survivors
        self.equivalent_killed += other.equivalent_killed


def tally(exit_codes: Mapping[str, int | None], equivalent: Iterable[str] = ()) -> Tally:
    """Count one file's verdicts (mutant name -> mutmut exit code); listed equivalents are set apart
    (a listed mutant a test killed is still set apart, and reported, since the listing is wrong)."""
    listed = set(equivalent)
    t = Tally()
    for name in sorted(exit_codes):
        status = status_of(exit_codes[name])
        if name in listed:
            t.equivalent += 1
            if status == "killed":
                t.equivalent_killed.append(name)
            continue
        t.counts[status if status in COLUMNS else "other"] += 1
        if status == "survived":
            t.survivors.append(name)
    return t


def read_meta(path: str, mutants: Path = MUTANTS) -> dict[str, int | None]:
    """mutmut's verdicts for one source file (``mutants/<path>.meta``); empty when never generated."""
    meta = mutants / (path + ".meta")
    if not meta.exists():
        return {}
    data = json.loads(meta.read_text("utf-8"))
    codes: dict[str, int | None] = data["exit_code_by_key"]
    return codes


def diff_summary(diff: str, limit: int = 220) -> str:
    """One line from a unified diff: the removed and added lines, ``old → new``."""
    removed, added = [], []
    for line in diff.splitlines():
        if line.startswith(("---", "+++", "@@")):
            continue
        if line.startswith("-"):
            removed.append(line[1:].strip())
        elif line.startswith("+"):
            added.append(line[1:].strip())
    text = f"{' ⏎ '.join(removed)}  →  {' ⏎ '.join(added)}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_score(score: float | None) -> str:
    return "   n/a" if score is None else f"{score:5.1f}%"


def report_lines(results: Mapping[str, Mapping[str, Tally]]) -> list[str]:
    """The table: one row per file, a total row per group, and then the survivors per file."""
    head = (
        f"{'file':44} {'total':>5} " + " ".join(f"{c:>11}" for c in COLUMNS) + f" {'equiv':>5} {'score':>6} {'det.':>6}"
    )
    lines = [head, "-" * len(head)]

    def row(label: str, t: Tally) -> str:
        cells = " ".join(f"{t.counts[c]:>11}" for c in COLUMNS)
        return f"{label:44} {t.total:>5} {cells} {t.equivalent:>5} {fmt_score(t.score)} {fmt_score(t.detected)}"

    grand = Tally()
    for group, files in results.items():
        group_total = Tally()
        for path, t in files.items():
            lines.append(row(path, t))
            group_total.add(t)
        lines.append(row(f"== {group}", group_total))
        lines.append("")
        grand.add(group_total)
    if len(results) > 1:
        lines.append(row("== all groups", grand))
        lines.append("")
    for files in results.values():
        for path, t in files.items():
            if t.survivors:
                lines.append(f"survivors in {path} ({len(t.survivors)}):")
                lines += [f"    {name}" for name in t.survivors]
            for name in t.equivalent_killed:
                lines.append(f"WARNING: {name} is listed as equivalent but a scenario killed it")
    return lines


def collect(
    groups: Iterable[str], equivalent: Mapping[str, str], mutants: Path = MUTANTS
) -> dict[str, dict[str, Tally]]:
    return {g: {p: tally(read_meta(p, mutants), equivalent) for p in group_files(g)} for g in groups}


# --- the probe: this module as a pytest plugin inside the mutmut run --------------------------------


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    """In mutmut's stats pass (every scenario, trampolines recording): which files were imported."""
    if os.environ.get("MUTANT_UNDER_TEST") != "stats":
        return
    imported = {
        name: getattr(module, "__file__", None)
        for name, module in list(sys.modules.items())
        if name.split(".")[0] in ("devices", "harness", "scenarios")
    }
    Path(PROBE_FILE).write_text(json.dumps(imported, indent=1, sort_keys=True), "utf-8")


def probe_problems(imported: Mapping[str, str | None], paths: Iterable[str], mutants: Path = MUTANTS) -> list[str]:
    """Every mutated module the run imported must be the mutants/ copy, trampolines in it."""
    problems = []
    for path in paths:
        module = module_of(path)
        where = imported.get(module)
        if where is None:
            problems.append(f"{module}: not imported by the scenario run")
            continue
        file = Path(where).resolve()
        if mutants.resolve() not in file.parents:
            problems.append(f"{module}: imported from {file}, not from {mutants}")
        elif GENERATED_MARKER not in file.read_text("utf-8"):
            problems.append(f"{module}: {file} carries no mutmut trampolines")
    return problems


# --- mutmut, taught two decorators ---------------------------------------------------------------------

# mutmut 3 mutates no decorated function (a decorator may register it, or run at definition time); here
# that would leave out every @locked core operation and every @handles command handler. These two are
# safe on mutmut's trampoline: @locked wraps the trampoline, so the original and every mutant run under
# the lock as before; @handles marks the trampoline, which keeps the method's name. The copies (the
# original and the mutants) are generated WITHOUT them: a mutant must not lock twice nor register
# itself as a second handler of the same command.
MUTATE_DECORATED = frozenset({"locked", "handles"})


def decorator_name(decorator: Any) -> str:
    """``locked`` for ``@locked``, ``handles`` for ``@handles(0x10)``, the dotted text otherwise."""
    import libcst as cst

    node = decorator.decorator
    if isinstance(node, cst.Call):
        node = node.func
    return node.value if isinstance(node, cst.Name) else cst.Module([]).code_for_node(node)


def mutable_decorated(node: Any) -> bool:
    import libcst as cst

    return (
        isinstance(node, cst.FunctionDef)
        and bool(node.decorators)
        and all(decorator_name(d) in MUTATE_DECORATED for d in node.decorators)
    )


def patch_mutmut() -> None:
    """Let mutmut 3.8.1 mutate functions whose decorators are all in MUTATE_DECORATED."""
    from libcst.metadata import PositionProvider
    from mutmut.mutation import file_mutation as fm

    skip_original = fm.MutationVisitor._skip_node_and_children
    arrange_original = fm.function_trampoline_arrangement

    def skip(self: Any, node: Any) -> bool:
        if not mutable_decorated(node):
            return skip_original(self, node)
        position = self.get_metadata(PositionProvider, node, None)  # as mutmut: "# pragma: no mutate" still holds
        if position and position.start.line in self._ignored_node_lines:
            self.ignored_functions.add(node.name.value)
            return True
        return node.name.value in fm.NEVER_MUTATE_FUNCTION_NAMES

    def arrange(function: Any, mutants: Any, class_name: str | None) -> Any:
        declarations, nodes, assignments, names = arrange_original(function, mutants, class_name)
        if mutable_decorated(function):  # nodes: the trampoline (decorated), then the undecorated copies
            nodes = [nodes[0], *(n.with_changes(decorators=()) for n in nodes[1:])]
        return declarations, nodes, assignments, names

    fm.MutationVisitor._skip_node_and_children = skip  # type: ignore[method-assign]
    fm.function_trampoline_arrangement = arrange


MUTMUT_MAIN = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); import mutation; mutation.patch_mutmut(); "
    "from mutmut.__main__ import cli; sys.argv[0] = 'mutmut'; cli()"
)


# --- running ------------------------------------------------------------------------------------------


def mutmut_exe() -> str:
    exe = Path(sys.executable).parent / "mutmut"
    if not exe.exists():
        sys.exit(f"mutmut is not installed in {exe.parent}: .venv/bin/pip install mutmut==3.8.1")
    return str(exe)


def mutmut_cmd(*args: str) -> list[str]:
    """``mutmut ARGS`` with :func:`patch_mutmut` applied (the generation runs in forks of this process)."""
    mutmut_exe()
    return [sys.executable, "-c", MUTMUT_MAIN, str(Path(__file__).resolve().parent), *args]


def baseline_suite(env: Mapping[str, str]) -> None:
    """The scenario suite must pass unmutated, else every kill means nothing."""
    print(f"baseline: pytest scenarios (unmutated) {env.get('PYTEST_ADDOPTS', '')} ...", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios", "-q", "-x", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(env),
    )
    tail = proc.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"baseline: {tail[0]}  [{time.monotonic() - t0:.1f}s]", flush=True)
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-2000:], sep="\n")
        sys.exit("FAIL: the scenario suite does not pass unmutated; mutation results would be meaningless")


def prepare(paths: Iterable[str]) -> None:
    """Fresh copies of what the scenarios import besides devices/, fresh stats, the group's mutants generated anew."""
    MUTANTS.mkdir(exist_ok=True)
    for stale in ("harness", "scenarios", "tests", "benchmarks"):
        shutil.rmtree(MUTANTS / stale, ignore_errors=True)  # mutmut re-copies them; deleted files must not linger
    for name in ("mutmut-stats.json", PROBE_FILE):
        (MUTANTS / name).unlink(missing_ok=True)
    for path in paths:  # generated afresh (mutmut keeps a generated file whose source is older)
        for suffix in ("", ".meta", ".spans"):
            (MUTANTS / (path + suffix)).unlink(missing_ok=True)


def checked_so_far(paths: Iterable[str]) -> tuple[int, int]:
    done = total = 0
    for path in paths:
        try:
            codes = read_meta(path)
        except (OSError, ValueError):
            continue  # mutmut is rewriting it
        total += len(codes)
        done += sum(code is not None for code in codes.values())
    return done, total


def stop_session(proc: subprocess.Popen[bytes], why: str) -> None:
    """SIGINT to mutmut (it stops its workers and keeps the verdicts so far), then SIGKILL to its session."""
    print(f"{why}: stopping mutmut (SIGINT to pid {proc.pid})", flush=True)
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the session this script started for mutmut
        proc.wait()


def run_mutmut(paths: list[str], max_children: int, budget: float | None, env: Mapping[str, str]) -> bool:
    """``mutmut run`` on the paths' mutants; False when the budget stopped it."""
    log = MUTANTS / RUN_LOG
    cmd = mutmut_cmd("run", "--max-children", str(max_children), *(file_glob(p) for p in paths))
    print(f"mutmut run --max-children {max_children} <{len(paths)} file globs>  (log: {log})", flush=True)
    started = time.monotonic()

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # a killed benchmark must not leave mutmut running on its own
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=dict(env)
        )
        stopped = False
        last_note = started
        try:
            while proc.poll() is None:
                time.sleep(1)
                now = time.monotonic()
                if budget is not None and now - started > budget:
                    stop_session(proc, f"budget of {budget:.0f}s spent")
                    stopped = True
                    break
                if now - last_note >= 30:
                    done, total = checked_so_far(paths)
                    print(f"  ... {now - started:5.0f}s  {done}/{total} mutants checked", flush=True)
                    last_note = now
        except KeyboardInterrupt:
            stop_session(proc, "interrupted")
            raise
    if proc.returncode != 0 and not stopped:
        print(log_tail(log.read_text("utf-8", errors="replace")))
        sys.exit(f"FAIL: mutmut run exited {proc.returncode} (see {log})")
    return not stopped


def log_tail(text: str, lines: int = 60) -> str:
    """The end of mutmut's output without its spinner lines (``⠋ Generating mutants`` and the like)."""
    kept = [line for line in text.replace("\r", "\n").splitlines() if line.strip() and not SPINNER.match(line)]
    return "\n".join(kept[-lines:])


def mutant_diffs(names_by_path: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """The diff of each mutant, as ``mutmut show`` prints it, in this process (one ``mutmut show`` costs ~0.5 s)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diffs = {}
    cwd = os.getcwd()
    os.chdir(REPO)  # mutmut reads mutants/ relative to the project
    try:
        for path, names in names_by_path.items():
            for name in names:
                try:
                    diffs[name] = get_diff_for_mutant(name, path=path)
                except Exception as exc:  # noqa: BLE001 - one unreadable mutant must not hide the others
                    diffs[name] = f"(no diff: {exc})"
    finally:
        os.chdir(cwd)
    return diffs


def mutmut_show(name: str) -> str:
    proc = subprocess.run([mutmut_exe(), "show", name], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        return f"(mutmut show failed: {proc.stderr.strip()[-300:]})"
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", choices=[*GROUP_NAMES, "all"], default="all")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--budget", type=float, help="stop mutmut after this many seconds; unchecked mutants count")
    parser.add_argument("--report", action="store_true", help="no run: report the last results in mutants/")
    parser.add_argument("--diffs", action="store_true", help="after the report, a one-line diff of every survivor")
    parser.add_argument("--show", metavar="NAME", help="print one mutant's diff (mutmut show NAME) and exit")
    args = parser.parse_args(argv)

    if args.show:
        print(mutmut_show(args.show), end="")
        return 0

    groups = list(GROUP_NAMES) if args.group == "all" else [args.group]
    paths = [p for g in groups for p in group_files(g)]
    equivalent = parse_equivalent(EQUIVALENT_FILE.read_text("utf-8")) if EQUIVALENT_FILE.exists() else {}
    t0 = time.monotonic()
    complete = True
    if not args.report:
        env = suite_env(groups)
        baseline_suite(env)
        prepare(paths)
        complete = run_mutmut(paths, args.max_children, args.budget, env)
        probe = MUTANTS / PROBE_FILE
        if not probe.exists():
            sys.exit(f"FAIL: the import probe did not run ({probe} missing): cannot tell what the scenarios imported")
        problems = probe_problems(json.loads(probe.read_text("utf-8")), paths)
        if problems:
            sys.exit("FAIL: the scenarios did not import the mutated code:\n  " + "\n  ".join(problems))
        print(f"import probe: all {len(paths)} mutated modules came from {MUTANTS}/ with trampolines")

    results = collect(groups, equivalent)
    print()
    print("\n".join(report_lines(results)))
    if equivalent:
        listed = [(n, r) for n, r in sorted(equivalent.items()) if any(n.startswith(module_of(p) + ".") for p in paths)]
        print(f"\nlisted as equivalent ({len(listed)}, not in the score):")
        known = {name for path in paths for name in read_meta(path)}
        for name, reason in listed:
            stale = "" if name in known else "   <- STALE: no such mutant now (the source changed?)"
            print(f"    {name}  # {reason}{stale}")
    if args.diffs:
        print("\nsurvivor diffs:")
        for files in results.values():
            diffs = mutant_diffs({path: t.survivors for path, t in files.items()})
            for name, diff in diffs.items():
                print(f"  {name}: {diff_summary(diff)}")
    elapsed = time.monotonic() - t0
    killed = sum(t.counts["killed"] for files in results.values() for t in files.values())
    print(f"\nwall time: {elapsed:.0f}s" + ("" if complete else "  (stopped by --budget: 'not checked' remain)"))
    if not args.report and killed == 0:
        print("FAIL: no mutant was killed: the scenarios did not exercise the mutated code")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
