"""Allure plumbing: report metadata in ``allure-results`` and the HTML report (Allure 3).

The metadata writers are plain Python and work anywhere.  The HTML report is built by the
Allure 3 command line from npm (the TypeScript Allure, no Java), pinned in the repository's
``package.json``/``package-lock.json`` and installed into ``<repo>/node_modules`` by
``make setup`` (``npm ci``).  Importing this module never needs Node.js.

Allure 3 reads ``environment.properties`` and ``executor.json`` from the results directory.
Categories are a report *config* setting in Allure 3 (``categories.json`` in the results is
read only by the Allure 2 style plugins), so :func:`generate_html` passes the same rules in
the config it writes for the CLI, and :func:`write_categories` keeps ``categories.json`` for
Allure 2 compatible viewers.

The report is a single self-contained ``index.html`` (the Awesome plugin's ``singleFile``
mode): it opens from disk or from a CI artifact without a web server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness.errors import HarnessError

from . import categories

__all__ = [
    "CATEGORIES",
    "HOST_PARAMETER",
    "find_allure_cli",
    "generate_html",
    "repo_root",
    "write_categories",
    "write_environment",
    "write_executor",
]

#: Labels allure-pytest adds that a QA engineer has no use for on a test page.
HIDDEN_LABELS = (
    "host",
    "thread",
    "framework",
    "language",
    "package",
    "parentSuite",
    "suite",
    "subSuite",
    "testname",
)
#: The parameter naming the host a result ran on (shown; the ``host`` label above stays hidden).
HOST_PARAMETER = "Хост"
MISSING_CLI_MESSAGE = "Allure CLI not found: run `make setup` (npm ci)"

#: A key whose value must never reach a report (matched case-insensitively anywhere in the key).
_SECRET_KEY = re.compile(r"passw(or)?d|token|secret|credential|api[_-]?key|private[_-]?key", re.I)
_MASK = "***"
#: ``scheme://user:password@host`` in a value: the userinfo is replaced by the mask.
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


# --------------------------------------------------------------------------------------------
# Repository and CLI lookup


def repo_root() -> Path:
    """The repository root: the parent of the ``harness`` package this package lives in."""
    return Path(__file__).resolve().parent.parent.parent


def find_allure_cli() -> list[str] | None:
    """The argv prefix that runs the Allure 3 CLI, or ``None`` when there is none.

    Prefers the pinned copy in ``<repo>/node_modules`` (run as ``node .../allure/cli.js``, so
    it does not depend on the executable bit or the shebang of the ``.bin`` shim), else an
    ``allure`` executable on ``PATH``.
    """
    cli_js = repo_root() / "node_modules" / "allure" / "cli.js"
    node = shutil.which("node")
    if cli_js.is_file() and node:
        return [node, str(cli_js)]
    on_path = shutil.which("allure")
    if on_path:
        return [on_path]
    return None


# --------------------------------------------------------------------------------------------
# Metadata files in allure-results


def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def _mask_value(value: str) -> str:
    """Hide credentials embedded in URLs (``https://user:pw@host`` → ``https://***@host``)."""
    return _URL_USERINFO.sub(lambda m: f"{m['scheme']}{_MASK}@", value)


def _escape_properties(text: str, *, is_key: bool) -> str:
    """Escape like ``java.util.Properties.store(OutputStream)``.

    Backslash, ``= : # !`` and control characters are escaped; spaces everywhere in a key but
    only a leading space in a value; everything outside printable ASCII becomes ``\\uXXXX``
    (UTF-16 code units, so characters beyond the BMP become surrogate pairs).  The result is
    pure ASCII, so Java (ISO-8859-1) and Allure 3 (UTF-8) loaders read the same text.
    """
    out: list[str] = []
    for index, char in enumerate(text):
        if char == " ":
            out.append("\\ " if is_key or index == 0 else " ")
        elif char == "\\":
            out.append("\\\\")
        elif char == "\t":
            out.append("\\t")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif char == "\f":
            out.append("\\f")
        elif char in "=:#!":
            out.append("\\" + char)
        elif 0x20 <= ord(char) <= 0x7E:
            out.append(char)
        else:
            encoded = char.encode("utf-16-be")
            for i in range(0, len(encoded), 2):
                out.append(f"\\u{int.from_bytes(encoded[i : i + 2], 'big'):04X}")
    return "".join(out)


def write_environment(results_dir: Path, props: Mapping[str, str]) -> Path:
    """Write ``environment.properties`` (the report's "Environment" block).

    Keys are sorted; a key that looks secret (password, token, secret, credential, API key)
    gets the value ``***``; credentials inside URLs are masked too.
    """
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for key in sorted(props, key=str):
        raw = props[key]
        value = _MASK if _is_secret_key(str(key)) else _mask_value("" if raw is None else str(raw))
        lines.append(f"{_escape_properties(str(key), is_key=True)}={_escape_properties(value, is_key=False)}")
    path = results_dir / "environment.properties"
    path.write_text("".join(line + "\n" for line in lines), encoding="ascii")
    return path


def _categories() -> list[dict[str, object]]:
    return categories.categories()


#: Category rules in Allure's ``categories.json`` format (first match wins).
CATEGORIES: list[dict[str, object]] = _categories()


def write_categories(results_dir: Path) -> Path:
    """Write ``categories.json`` (Allure 2 format) with :data:`CATEGORIES`."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "categories.json"
    path.write_text(json.dumps(_categories(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def _ci_env() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def write_executor(
    results_dir: Path,
    name: str = "kkt-hil",
    build_name: str | None = None,
    build_url: str | None = None,
) -> Path:
    """Write ``executor.json``: who ran the suite (``type`` is ``ci`` when ``$CI`` is set)."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    data: dict[str, str] = {"name": name, "type": "ci" if _ci_env() else "local"}
    if build_name:
        data["buildName"] = build_name
    if build_url:
        data["buildUrl"] = _mask_value(build_url)
    path = results_dir / "executor.json"
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# HTML report


def _last_line(text: str) -> str:
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    return lines[-1] if lines else ""


#: The analytics the Awesome plugin puts in every page (it loads from the internet).
_ANALYTICS = re.compile(
    r'<script async src="https://www\.googletagmanager\.com/[^"]*"></script>\s*'
    r"<script>\s*window\.dataLayer[\s\S]*?</script>"
)
#: The app script comes before the one that defines the report's data; where it runs first it
#: fetches ``data/*.json`` as files, which ``file://`` refuses (a blank page, now and then).
_DATA_FIRST = "<script>window.allureReportData = window.allureReportData || {};</script>"


def _offline(index: Path) -> None:
    """The single-file page, fit to open from disk: its data defined before the app runs, and
    no analytics request to the internet."""
    text = index.read_text(encoding="utf-8")
    text = _ANALYTICS.sub("", text, count=1)
    if _DATA_FIRST not in text:
        text = text.replace("<head>", "<head>\n" + _DATA_FIRST, 1)
    index.write_text(text, encoding="utf-8")


def _looks_like_report(path: Path) -> bool:
    return not any(path.iterdir()) or (path / "index.html").is_file()


def generate_html(
    results_dir: Path,
    report_dir: Path,
    *,
    timeout: float = 300,
    report_name: str = "kkt-hil",
    language: str = "ru",
    history: Path | None = None,
    append_history: bool = True,
    global_attachments: Sequence[Path] = (),
) -> Path:
    """Build the single-file HTML report from ``results_dir`` into ``report_dir``.

    Returns the path of ``report_dir/index.html``.  An existing report in ``report_dir`` is
    replaced (a non-empty directory that is not an Allure report is refused).  Raises
    :class:`HarnessError` with a one-line message when the CLI is missing, the results are
    empty, or the CLI fails or times out.  The CLI runs without a shell.
    """
    results_dir = Path(results_dir).resolve()
    report_dir = Path(report_dir).resolve()
    if not results_dir.is_dir():
        raise HarnessError(f"Allure results are empty: {results_dir} does not exist")
    if not any(results_dir.glob("*-result.json")):
        raise HarnessError(f"Allure results are empty: no *-result.json in {results_dir}")
    if report_dir.exists() and not (report_dir.is_dir() and _looks_like_report(report_dir)):
        raise HarnessError(f"Refusing to overwrite {report_dir}: it is not an Allure report")
    cli = find_allure_cli()
    if cli is None:
        raise HarnessError(MISSING_CLI_MESSAGE)

    config: dict[str, object] = {
        "name": report_name,
        "plugins": {
            "awesome": {
                "options": {
                    "singleFile": True,
                    "reportLanguage": language,
                    "groupBy": ["epic", "feature", "story"],  # the scenario matrix, not Python modules
                }
            }
        },
        "categories": {"rules": _categories()},
        "hideLabels": list(HIDDEN_LABELS),
    }
    if global_attachments:  # the run's own pages (the release matrix), on the report's front page
        config["globalAttachments"] = [str(Path(page).resolve()) for page in global_attachments]
    if history is not None:  # successive runs: trends, and flaky results marked from their history
        history = Path(history).resolve()
        history.parent.mkdir(parents=True, exist_ok=True)
        config["historyPath"] = str(history)
        config["appendHistory"] = append_history  # a rebuild of the same results adds nothing
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    # A fresh output directory each time (Allure 3 does not clean it), swapped in at the end.
    staging = Path(tempfile.mkdtemp(prefix=f".{report_dir.name}-", dir=report_dir.parent))
    try:
        with tempfile.TemporaryDirectory(prefix="kkt-hil-allure-") as work:
            config_path = Path(work) / "allurerc.json"
            config_path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
            out = staging / "report"
            argv = [*cli, "generate", str(results_dir), "--config", str(config_path), "--output", str(out)]
            env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
            try:
                proc = subprocess.run(
                    argv,
                    cwd=work,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    encoding="utf-8",
                    errors="replace",
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise HarnessError(f"Allure CLI timed out after {timeout:g} s: {' '.join(argv)}") from None
            except OSError as exc:
                raise HarnessError(f"Allure CLI could not be started ({cli[0]}): {exc.strerror or exc}") from None
        if proc.returncode != 0:
            detail = _last_line(proc.stderr) or _last_line(proc.stdout) or "no output"
            raise HarnessError(f"Allure CLI failed (exit {proc.returncode}): {detail}")
        if not (out / "index.html").is_file():
            raise HarnessError(f"Allure CLI wrote no index.html into {out}")
        _offline(out / "index.html")
        if report_dir.exists():
            shutil.rmtree(report_dir)
        os.replace(out, report_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report_dir / "index.html"
