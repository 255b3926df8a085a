"""harness.report: Allure metadata files and the HTML report through the Allure 3 CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness import report
from harness.errors import HarnessError
from harness.report import categories
from harness.report.tidy import tidy_fixtures

from .plugin_helpers import load_properties

# ------------------------------------------------------------------------------------------
# helpers


def write_result(results: Path, *, name: str = "test_sale", status: str = "passed", message: str | None = None) -> Path:
    """A minimal hand-written allure-pytest style ``*-result.json``."""
    results.mkdir(parents=True, exist_ok=True)
    test_uuid = str(uuid.uuid4())
    data: dict[str, object] = {
        "uuid": test_uuid,
        "historyId": uuid.uuid4().hex,
        "name": name,
        "fullName": f"scenarios.test_x#{name}",
        "status": status,
        "start": 1_700_000_000_000,
        "stop": 1_700_000_000_250,
        "labels": [{"name": "suite", "value": "Продажа"}, {"name": "framework", "value": "pytest"}],
        "steps": [{"name": "Открыть смену", "status": "passed", "start": 1_700_000_000_000, "stop": 1_700_000_000_100}],
    }
    if message is not None:
        data["statusDetails"] = {"message": message, "trace": "Traceback ..."}
    path = results / f"{test_uuid}-result.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def make_script(path: Path, body: str) -> Path:
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def assert_one_line(message: str) -> None:
    assert "\n" not in message
    assert "Traceback" not in message
    assert message.strip() == message and message


# ------------------------------------------------------------------------------------------
# environment.properties


def test_environment_escapes_like_java_properties(tmp_path: Path) -> None:
    props = {
        "plain": "value",
        "key with spaces": "a b",
        "lead": "  two leading spaces",
        "seps=and:colons": "x=1:2",
        "comment#bang!": "#not a comment !",
        "backslash": "C:\\path\\to",
        "controls": "tab\there\nnew\rline\fform",
        "Модель": "АТОЛ 30Ф",
        "emoji": "чек 🧾",
    }
    path = report.write_environment(tmp_path / "allure-results", props)
    assert path == tmp_path / "allure-results" / "environment.properties"
    text = path.read_bytes().decode("ascii")  # pure ASCII: readable as ISO-8859-1 and UTF-8
    lines = text.splitlines()
    assert "key\\ with\\ spaces=a b" in lines
    assert "lead=\\  two leading spaces" in lines
    assert "seps\\=and\\:colons=x\\=1\\:2" in lines
    assert "comment\\#bang\\!=\\#not a comment \\!" in lines
    assert "backslash=C\\:\\\\path\\\\to" in lines
    assert "controls=tab\\there\\nnew\\rline\\fform" in lines
    assert "\\u041C\\u043E\\u0434\\u0435\\u043B\\u044C=\\u0410\\u0422\\u041E\\u041B 30\\u0424" in lines
    assert "emoji=\\u0447\\u0435\\u043A \\uD83E\\uDDFE" in lines
    assert len(lines) == len(props)
    assert load_properties(text) == props


def test_environment_keys_sorted_and_file_replaced(tmp_path: Path) -> None:
    report.write_environment(tmp_path, {"old": "1"})
    path = report.write_environment(tmp_path, {"b": "2", "a": "1", "c": "3"})
    assert path.read_text(encoding="ascii") == "a=1\nb=2\nc=3\n"


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "DB_PASSWORD",
        "ofd.passwd",
        "OFD_TOKEN",
        "access-token",
        "client_secret",
        "Secret",
        "credentials",
        "api_key",
    ],
)
def test_environment_masks_secret_keys(tmp_path: Path, key: str) -> None:
    path = report.write_environment(tmp_path, {key: "hunter2 s3cr3t", "model": "Пирит 2Ф"})
    text = path.read_text(encoding="ascii")
    assert "hunter2" not in text and "s3cr3t" not in text
    assert load_properties(text)[key] == "***"
    assert load_properties(text)["model"] == "Пирит 2Ф"


def test_environment_masks_credentials_in_urls(tmp_path: Path) -> None:
    path = report.write_environment(
        tmp_path, {"ofd_url": "https://inn:pa55@ofd.example:7777/kkt", "port": "/dev/ttyUSB0"}
    )
    parsed = load_properties(path.read_text(encoding="ascii"))
    assert parsed == {"ofd_url": "https://***@ofd.example:7777/kkt", "port": "/dev/ttyUSB0"}


# ------------------------------------------------------------------------------------------
# categories.json


# (status, message, the category it belongs to): allure-pytest writes "<ExceptionClass>: <text>"
# for failed and broken results, "Skipped: <reason>" for skipped ones, sometimes over several lines.
CATEGORY_CASES = [
    ("failed", "AssertionError: получено ok, ожидалось out", categories.PRODUCT_DEFECT),
    ("failed", "NoPaper: end of paper (pirit, command 0x30, code 0x08)", categories.PRODUCT_DEFECT),
    ("failed", "Failed: Timeout (>1.0s) from pytest-timeout.", categories.PRODUCT_DEFECT),
    ("broken", "LinkError: no answer", categories.LINK_BROKEN),
    ("broken", "LinkTimeout: no answer in 2.0 s", categories.LINK_BROKEN),
    ("broken", "LinkDisconnected: port closed", categories.LINK_BROKEN),
    ("broken", "LinkCorrupted: bad CRC", categories.LINK_BROKEN),
    ("broken", "TimeoutError: timed out", categories.LINK_BROKEN),
    ("broken", "SerialException: device Disconnected", categories.LINK_BROKEN),
    ("broken", "OutcomeUnknown: the receipt may or may not be in the ФН", categories.LINK_BROKEN),
    ("broken", "harness.errors.LinkTimeout:\nno answer from /dev/pts/1\nwithin 0.075 s", categories.LINK_BROKEN),
    ("broken", "HarnessError: unknown model 'x'", categories.HARNESS_ERROR),
    ("broken", "UsageError: bad --kkt spec", categories.HARNESS_ERROR),
    ("broken", "SafetyRefusal: real device", categories.HARNESS_ERROR),
    ("broken", "KeyboardInterrupt", categories.HARNESS_ERROR),
    ("skipped", "Skipped: Безопасность: разрушающий сценарий на реальной ККТ", categories.SKIPPED_SAFETY),
    (
        "skipped",
        "Skipped: Нужно реальное время или оператор: «Выньте бумагу»: нужен оператор",
        categories.SKIPPED_REAL_TIME,
    ),
    (
        "skipped",
        "Skipped: Нужно реальное время или оператор: нужно 1:00:00\nреального времени\n",
        categories.SKIPPED_REAL_TIME,
    ),
    ("skipped", "Skipped: Устройство не умеет: у устройства kf нет: journal", categories.SKIPPED_CAPABILITY),
    ("skipped", "Skipped: Стенд не умеет: нельзя управлять бумагой", categories.SKIPPED_CAPABILITY),
    ("skipped", "Skipped: no Dreamkas hub", categories.SKIPPED_CAPABILITY),
    ("skipped", "Skipped: Безопасность без двоеточия", categories.SKIPPED_CAPABILITY),  # a prefix ends in ":"
]


def first_category(rules: list[dict[str, object]], status: str, message: str, *, full: bool) -> str | None:
    """The category a result is filed under, the first rule that matches: ``full`` as Allure 2
    (Java ``matches``), else as Allure 3 (JS ``RegExp.test``, a search)."""
    match = re.fullmatch if full else re.search
    for rule in rules:
        statuses = rule["matchedStatuses"]
        assert isinstance(statuses, list)
        regex = rule.get("messageRegex")
        if status in statuses and (regex is None or match(str(regex), message)):
            return str(rule["name"])
    return None


def test_categories_json(tmp_path: Path) -> None:
    path = report.write_categories(tmp_path / "res")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [c["name"] for c in data] == [
        "Дефект ККТ (поведение не соответствует ожиданию)",
        "Стенд/связь: нет ответа или ошибка канала",
        "Ошибка стенда (harness)",
        "Пропущено: безопасность (нужна жертвенная ККТ)",
        "Пропущено: нужно реальное время или оператор",
        "Пропущено: устройство не умеет",
    ]
    assert [c["name"] for c in data] == [
        categories.PRODUCT_DEFECT,
        categories.LINK_BROKEN,
        categories.HARNESS_ERROR,
        categories.SKIPPED_SAFETY,
        categories.SKIPPED_REAL_TIME,
        categories.SKIPPED_CAPABILITY,
    ]
    statuses = [["failed"], ["broken"], ["broken"], ["skipped"], ["skipped"], ["skipped"]]
    assert [c["matchedStatuses"] for c in data] == statuses
    # the last rule of each status takes the rest: no regex
    assert [("messageRegex" in c) for c in data] == [False, True, False, True, True, False]
    assert data[1]["messageRegex"].startswith(
        r"[\s\S]*LinkError[\s\S]*|[\s\S]*Timeout[\s\S]*|[\s\S]*Disconnected[\s\S]*|[\s\S]*OutcomeUnknown[\s\S]*"
    )
    assert data[3]["messageRegex"] == r"[\s\S]*Безопасность:[\s\S]*"
    assert data[4]["messageRegex"] == r"[\s\S]*Нужно реальное время или оператор:[\s\S]*"
    for status, message, expected in CATEGORY_CASES:
        assert first_category(data, status, message, full=False) == expected, message
        assert first_category(data, status, message, full=True) == expected, message


def test_category_prefixes_are_the_skip_reasons_the_plugin_writes() -> None:
    assert categories.SKIP_CAPABILITY == "Устройство не умеет"
    assert categories.SKIP_LAB == "Стенд не умеет"
    assert categories.SKIP_SAFETY == "Безопасность"
    assert categories.SKIP_REAL_TIME == "Нужно реальное время или оператор"
    expected = {
        categories.SKIP_SAFETY: categories.SKIPPED_SAFETY,
        categories.SKIP_REAL_TIME: categories.SKIPPED_REAL_TIME,
        categories.SKIP_CAPABILITY: categories.SKIPPED_CAPABILITY,
        categories.SKIP_LAB: categories.SKIPPED_CAPABILITY,
    }
    for prefix, category in expected.items():
        message = f"Skipped: {prefix}: причина"
        assert first_category(report.CATEGORIES, "skipped", message, full=True) == category, prefix


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed (run make setup)")
def test_category_regexes_read_alike_in_javascript() -> None:
    """Allure 3 compiles ``messageRegex`` with JavaScript's ``new RegExp`` and ``.test``: the same
    category for every message as Python's reading above."""
    script = (
        "const [rules, cases] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "const first = (s, m) => { for (const r of rules) {"
        " if (r.matchedStatuses.includes(s) && (r.messageRegex === undefined || new RegExp(r.messageRegex).test(m)))"
        " return r.name; } return null; };"
        "process.stdout.write(JSON.stringify(cases.map(([s, m]) => first(s, m))));"
    )
    cases = [[status, message] for status, message, _ in CATEGORY_CASES]
    proc = subprocess.run(
        ["node", "-e", script],
        input=json.dumps([report.CATEGORIES, cases], ensure_ascii=False),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=30,
        check=True,
    )
    assert json.loads(proc.stdout) == [expected for _, _, expected in CATEGORY_CASES]


def test_categories_constant_matches_file(tmp_path: Path) -> None:
    data = json.loads(report.write_categories(tmp_path).read_text(encoding="utf-8"))
    assert data == report.CATEGORIES


# ------------------------------------------------------------------------------------------
# fixture rows in *-container.json (harness/report/tidy.py)


def fixture_row(name: str, status: str | None = "passed", **extra: object) -> dict[str, object]:
    row: dict[str, object] = {"name": name, "start": 1_700_000_000_000, "stop": 1_700_000_000_010, **extra}
    if status is not None:
        row["status"] = status
    return row


def write_container(results: Path, befores: list[dict[str, object]], afters: list[dict[str, object]]) -> Path:
    """One fixture's container, as allure-pytest writes it: its set-up, its teardown, and the
    ``<fixture>::<lambda>`` finalizer row without a status."""
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{uuid.uuid4()}-container.json"
    data = {"uuid": path.name[:36], "children": [str(uuid.uuid4())], "befores": befores, "afters": afters}
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_tidy_removes_the_plugins_empty_passed_fixture_rows(tmp_path: Path) -> None:
    empty = [
        write_container(
            tmp_path,
            [fixture_row("kkt_device")],
            [fixture_row("kkt_device::1"), fixture_row("kkt_device::<lambda>", None)],
        ),
        write_container(tmp_path, [fixture_row("kkt")], [fixture_row("kkt::<lambda>", None)]),
        write_container(tmp_path, [fixture_row("lab")], [fixture_row("lab::<lambda>", None)]),
        write_container(tmp_path, [fixture_row("hub")], [fixture_row("hub::0"), fixture_row("hub::<lambda>", None)]),
    ]
    shop = write_container(
        tmp_path, [fixture_row("shop")], [fixture_row("shop::0"), fixture_row("shop::<lambda>", None)]
    )
    before = shop.read_text(encoding="utf-8")
    assert tidy_fixtures(tmp_path) == 10
    assert not any(path.exists() for path in empty)  # nothing left to show: the containers are gone
    assert shop.read_text(encoding="utf-8") == before  # a fixture of the project's own stays as it is
    assert tidy_fixtures(tmp_path) == 0  # idempotent
    assert sorted(tmp_path.glob("*-container.json")) == [shop]


def test_tidy_keeps_and_renames_rows_with_something_to_show(tmp_path: Path) -> None:
    prepared = {"name": "Исходное состояние ККТ перед тестом", "source": "p-attachment.txt", "type": "text/plain"}
    restored = {"name": "Приведение ККТ в исходное состояние", "source": "r-attachment.txt", "type": "text/plain"}
    step = {"name": "Стенд: бумага: ok", "status": "passed"}
    skipped = {"message": "Skipped: Устройство не умеет: x"}
    device = write_container(
        tmp_path,
        [fixture_row("kkt_device", attachments=[prepared])],
        [fixture_row("kkt_device::1", attachments=[restored]), fixture_row("kkt_device::<lambda>", None)],
    )
    refused = write_container(
        tmp_path,
        [fixture_row("kkt_device", "skipped", statusDetails=skipped)],
        [fixture_row("kkt_device::<lambda>", None)],
    )
    lab = write_container(tmp_path, [fixture_row("lab", steps=[step])], [fixture_row("lab::<lambda>", None)])
    hub = write_container(
        tmp_path, [fixture_row("hub", "broken")], [fixture_row("hub::0", "failed"), fixture_row("hub::<lambda>", None)]
    )
    assert tidy_fixtures(tmp_path) == 4  # the finalizer rows only

    def rows(path: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [(r["name"], r["status"]) for r in data["befores"]], [(r["name"], r["status"]) for r in data["afters"]]

    assert rows(device) == (
        [("ККТ: подключение и подготовка", "passed")],
        [("ККТ: подключение и подготовка: после теста", "passed")],
    )
    assert rows(refused) == ([("ККТ: подключение и подготовка", "skipped")], [])
    assert rows(lab) == ([("Стенд", "passed")], [])
    assert rows(hub) == ([("Кабинет", "broken")], [("Кабинет: после теста", "failed")])
    data = json.loads(device.read_text(encoding="utf-8"))
    assert data["befores"][0]["attachments"] == [prepared] and data["afters"][0]["attachments"] == [restored]
    assert json.loads(refused.read_text(encoding="utf-8"))["befores"][0]["statusDetails"] == skipped
    assert json.loads(lab.read_text(encoding="utf-8"))["befores"][0]["steps"] == [step]


def test_tidy_renames_the_rows_of_a_container_it_removes_nothing_from(tmp_path: Path) -> None:
    attachment = {"name": "Приведение ККТ в исходное состояние", "source": "r-attachment.txt", "type": "text/plain"}
    path = write_container(
        tmp_path, [fixture_row("kkt_device", "failed")], [fixture_row("kkt_device::1", attachments=[attachment])]
    )
    assert tidy_fixtures(tmp_path) == 0
    data = json.loads(path.read_text(encoding="utf-8"))
    assert [r["name"] for r in data["befores"] + data["afters"]] == [
        "ККТ: подключение и подготовка",
        "ККТ: подключение и подготовка: после теста",
    ]


def test_tidy_leaves_what_it_cannot_read(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    broken = tmp_path / "x-container.json"
    broken.write_text("{not json", encoding="utf-8")
    listed = tmp_path / "y-container.json"
    listed.write_text("[]", encoding="utf-8")
    result = write_result(tmp_path)  # results are not containers
    before = result.read_text(encoding="utf-8")
    assert tidy_fixtures(tmp_path) == 0
    assert broken.read_text(encoding="utf-8") == "{not json"
    assert listed.read_text(encoding="utf-8") == "[]"
    assert result.read_text(encoding="utf-8") == before


# ------------------------------------------------------------------------------------------
# executor.json


def test_executor_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    data = json.loads(report.write_executor(tmp_path).read_text(encoding="utf-8"))
    assert data == {"name": "kkt-hil", "type": "local"}


def test_executor_ci(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    path = report.write_executor(tmp_path, name="стенд-1", build_name="#42", build_url="https://ci:tok@ci.example/b/42")
    assert path.name == "executor.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data == {"name": "стенд-1", "type": "ci", "buildName": "#42", "buildUrl": "https://***@ci.example/b/42"}


# ------------------------------------------------------------------------------------------
# find_allure_cli


@pytest.fixture
def no_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty repo root and a PATH with nothing on it."""
    root = tmp_path / "repo"
    empty_bin = tmp_path / "empty-bin"
    root.mkdir()
    empty_bin.mkdir()
    monkeypatch.setattr(report, "repo_root", lambda: root)
    monkeypatch.setenv("PATH", str(empty_bin))
    return root


def test_find_allure_cli_none_when_absent(no_cli: Path) -> None:
    assert report.find_allure_cli() is None


def test_find_allure_cli_prefers_repo_node_modules(
    no_cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_js = no_cli / "node_modules" / "allure" / "cli.js"
    cli_js.parent.mkdir(parents=True)
    cli_js.write_text("// stub\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    node = make_script(bin_dir / "node", "")
    make_script(bin_dir / "allure", "")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert report.find_allure_cli() == [str(node), str(cli_js)]


def test_find_allure_cli_falls_back_to_path(no_cli: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    allure = make_script(bin_dir / "allure", "")
    monkeypatch.setenv("PATH", str(bin_dir))
    assert report.find_allure_cli() == [str(allure)]


def test_repo_root_is_the_checkout() -> None:
    assert (report.repo_root() / "harness" / "report" / "__init__.py").is_file()


# ------------------------------------------------------------------------------------------
# generate_html errors


def test_generate_html_missing_cli(no_cli: Path, tmp_path: Path) -> None:
    results = tmp_path / "allure-results"
    write_result(results)
    with pytest.raises(HarnessError) as info:
        report.generate_html(results, tmp_path / "allure-report")
    message = str(info.value)
    assert message == "Allure CLI not found: run `make setup` (npm ci)"
    assert_one_line(message)
    assert not (tmp_path / "allure-report").exists()


@pytest.mark.parametrize("setup", ["missing", "empty", "metadata-only"])
def test_generate_html_empty_results(tmp_path: Path, setup: str) -> None:
    results = tmp_path / "allure-results"
    if setup != "missing":
        results.mkdir()
    if setup == "metadata-only":
        report.write_environment(results, {"a": "b"})
        report.write_categories(results)
    with pytest.raises(HarnessError) as info:
        report.generate_html(results, tmp_path / "allure-report")
    message = str(info.value)
    assert message.startswith("Allure results are empty")
    assert str(results) in message
    assert_one_line(message)


def test_generate_html_cli_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = make_script(
        tmp_path / "fake-allure",
        "import sys\nprint('starting')\nsys.stderr.write('warn: x\\n\\x1b[31mNo test results directories found\\x1b[39m\\n')\nsys.exit(3)\n",
    )
    monkeypatch.setattr(report, "find_allure_cli", lambda: [sys.executable, str(script)])
    results = tmp_path / "res"
    write_result(results)
    with pytest.raises(HarnessError) as info:
        report.generate_html(results, tmp_path / "rep")
    assert str(info.value) == "Allure CLI failed (exit 3): No test results directories found"
    assert not (tmp_path / "rep").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".rep")] == []  # staging removed


def test_generate_html_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = make_script(tmp_path / "slow-allure", "import time\ntime.sleep(30)\n")
    monkeypatch.setattr(report, "find_allure_cli", lambda: [sys.executable, str(script)])
    results = tmp_path / "res"
    write_result(results)
    with pytest.raises(HarnessError) as info:
        report.generate_html(results, tmp_path / "rep", timeout=0.5)
    assert str(info.value).startswith("Allure CLI timed out after 0.5 s")
    assert_one_line(str(info.value))


def test_generate_html_passes_argv_without_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI gets: generate <results> --config <allurerc.json> --output <dir>; config has the categories."""
    seen = tmp_path / "seen.json"
    script = make_script(
        tmp_path / "fake-allure",
        "import json, sys, pathlib\n"
        "args = sys.argv[1:]\n"
        "cfg = json.loads(pathlib.Path(args[args.index('--config') + 1]).read_text(encoding='utf-8'))\n"
        f"pathlib.Path({str(seen)!r}).write_text(json.dumps({{'args': args, 'cfg': cfg}}), encoding='utf-8')\n"
        "out = pathlib.Path(args[args.index('--output') + 1]); out.mkdir(parents=True)\n"
        "(out / 'index.html').write_text('<!DOCTYPE html>')\n",
    )
    monkeypatch.setattr(report, "find_allure_cli", lambda: [sys.executable, str(script)])
    results = tmp_path / "res; rm -rf x"  # a shell would split this
    write_result(results)
    old = tmp_path / "rep"
    old.mkdir()
    (old / "index.html").write_text("old")
    (old / "stale.js").write_text("old")
    index = report.generate_html(results, old)
    assert index == old.resolve() / "index.html"
    assert index.read_text() == "<!DOCTYPE html>"
    assert not (old / "stale.js").exists()
    recorded = json.loads(seen.read_text(encoding="utf-8"))
    assert recorded["args"][:2] == ["generate", str(results.resolve())]
    assert recorded["cfg"]["plugins"]["awesome"]["options"]["singleFile"] is True
    assert [r["name"] for r in recorded["cfg"]["categories"]["rules"]] == [c["name"] for c in report.CATEGORIES]


def test_generate_html_refuses_foreign_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "find_allure_cli", lambda: [sys.executable, "-c", "pass"])
    results = tmp_path / "res"
    write_result(results)
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "important.txt").write_text("keep me")
    with pytest.raises(HarnessError, match="Refusing to overwrite"):
        report.generate_html(results, foreign)
    assert (foreign / "important.txt").read_text() == "keep me"


# ------------------------------------------------------------------------------------------
# the real Allure 3 CLI


@pytest.mark.skipif(report.find_allure_cli() is None, reason="Allure CLI not installed (run make setup)")
def test_generate_html_with_real_allure(tmp_path: Path) -> None:
    results = tmp_path / "allure-results"
    write_result(results, name="test_sale_receipt")
    report.write_environment(results, {"Модель": "АТОЛ 30Ф", "ofd_token": "zzz"})
    report.write_categories(results)
    report.write_executor(results)
    report_dir = tmp_path / "reports" / "allure-report"

    index = report.generate_html(results, report_dir, timeout=120)

    assert index == report_dir.resolve() / "index.html"
    assert index.is_file()
    html = index.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert len(html) > 10_000  # single-file mode: the app and the data are inlined
    # A second run replaces the report in place and leaves no staging directories behind.
    again = report.generate_html(results, report_dir, timeout=120)
    assert again == index and again.is_file()
    assert sorted(p.name for p in report_dir.parent.iterdir()) == ["allure-report"]
    assert os.access(index, os.R_OK)
