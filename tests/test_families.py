"""The model catalogue and the family registry: one place per fact, entry points, import boundaries."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devices.models import MODELS, Model, identify
from harness import families
from harness.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent


def test_catalogue_models_belong_to_registered_families() -> None:
    registered = families.families()
    assert set(registered) == {"pirit", "atol"}
    assert dict(families.catalogue()) == dict(MODELS)
    for family in registered.values():
        assert all(m.family == family.name for m in family.models)
    assert families.default_models() == ("kf", "dkf", "start", "atol")
    assert families.model_ids() == ("kf", "dkf", "start", "atol", "atol55", "atol90")


def test_unknown_model_and_family_are_one_line_usage_errors() -> None:
    with pytest.raises(UsageError, match=r"unknown model 'shtrih' \(known: kf, dkf, start, atol, atol55, atol90\)"):
        families.model("shtrih")
    with pytest.raises(UsageError, match="unknown protocol family 'shtrih'"):
        families.family("shtrih")


def test_clouds_follow_the_firmware_gate_of_the_model() -> None:
    assert families.cloud_of("kf") is families.cloud("dreamkas")
    assert families.cloud_of("atol") is None
    gates = {m.id: m.rereg_min_firmware for m in MODELS.values() if m.has_cloud_tasks}
    assert gates == {"kf": "2.26.0", "dkf": "1.12.0", "start": "10.50.1"}


def test_hub_tables_are_derived_from_the_catalogue() -> None:
    from devices.dreamkas import hub

    assert dict(hub.FIRMWARE_THRESHOLDS) == {"kf": "2.26.0", "dkf": "1.12.0", "start": "10.50.1"}
    assert hub.model_for_serial("0497000001") == "kf" and hub.model_for_serial("0494000001") == "start"
    assert hub.MODEL_NAMES["dkf"] == MODELS["dkf"].title


@pytest.mark.parametrize(
    ("family", "serial", "code", "expected"),
    [
        ("pirit", "0497123456", 9, ("kf",)),
        ("pirit", "0496040818", 9, ("dkf",)),
        ("pirit", "0129000001", 9, ()),  # a Пирит 2СФ that is neither Касса Ф nor ДКФ
        ("pirit", "0494000001", 2, ("start",)),
        ("atol", "00106300012345", 62, ("atol55",)),
        ("atol", "1", 99, ()),
    ],
)
def test_identify_by_serial_prefix_and_model_code(
    family: str, serial: str, code: int, expected: tuple[str, ...]
) -> None:
    assert identify(family, serial, code).candidates == expected


def test_a_model_id_is_in_the_catalogue_once() -> None:
    from devices import models

    record = Model(id="kf", title="x", family="pirit", model_name="x", model_code=1, serial_prefix="1")
    with pytest.raises(ValueError, match="twice"):
        models._catalogue([record, record])


# --------------------------------------------------------------------- no model fact spelled twice

MODEL_FACTS: list[str | int] = [  # sorted: every xdist worker must collect the same ids
    *sorted({m.title for m in MODELS.values()}),
    *sorted({m.serial_prefix for m in MODELS.values()}),
    *sorted({m.rereg_min_firmware for m in MODELS.values() if m.rereg_min_firmware}),
    *sorted({m.tcp_port for m in MODELS.values() if m.tcp_port}),
    0x2912,  # the АТОЛ USB vendor id
    115200,  # the АТОЛ line speed
]


def _constants(path: Path) -> list[tuple[int, object]]:
    """String and number literals that are whole values (a docstring mentioning a model is not one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(node.lineno, node.value) for node in ast.walk(tree) if isinstance(node, ast.Constant)]


@pytest.mark.parametrize("fact", MODEL_FACTS, ids=str)
def test_no_source_file_but_the_catalogue_spells_a_model_fact(fact: str | int) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted([*(ROOT / "harness").rglob("*.py"), *(ROOT / "devices").rglob("*.py")])
        if path != ROOT / "devices" / "models.py"
        for line, value in _constants(path)
        if type(value) is type(fact) and value == fact
    ]
    assert not offenders, f"{fact!r} is spelled outside devices/models.py: {offenders}"


# --------------------------------------------------------------------- import boundaries


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_harness_never_imports_a_vendor_or_the_emulator_by_path() -> None:
    for path in (ROOT / "harness").rglob("*.py"):
        bad = {
            m
            for m in _imports(path)
            if m.startswith(("devices.emulator", "devices.dreamkas", "devices.pirit", "devices.atol"))
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_scenarios_import_no_vendor_code() -> None:
    for path in (ROOT / "scenarios").rglob("*.py"):
        assert not {m for m in _imports(path) if m.startswith("devices")}, path


def test_codecs_do_no_io_and_drivers_never_import_the_emulator() -> None:
    for family in ("pirit", "atol"):
        for path in (ROOT / "devices" / family / "protocol").rglob("*.py"):
            assert not _imports(path) & {"serial", "socket", "os", "threading", "time"}, path
        for name in ("driver.py", "wire.py"):
            bad = {m for m in _imports(ROOT / "devices" / family / name) if "emulator" in m}
            assert not bad, f"{family}/{name} imports {bad}"


def test_a_run_on_a_real_register_imports_no_emulator_and_no_other_family(tmp_path: Path) -> None:
    """Reach a Касса Ф over TCP as a lab script would: neither the emulator (core or front-end),
    nor the hub, nor the АТОЛ codec and driver may be imported in that process."""
    server = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "emulate", "kf", "--listen", "tcp://127.0.0.1:0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[1]
        script = textwrap.dedent(
            f"""
            import sys
            from harness import open_kkt
            with open_kkt("url:{url}#model=kf") as h:
                assert h.kkt.status().initialised
            records = {"devices.atol", "devices.atol.family"}  # the family record only: cheap data
            heavy = ("devices.emulator", "devices.dreamkas", "devices.atol.", "devices.pirit.emulator")
            print(sorted(m for m in sys.modules if m.startswith(heavy) and m not in records))
            """
        )
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "[]"
    finally:
        server.terminate()
        server.wait(timeout=10)


# --------------------------------------------------------------------- a third-party family


THIRD_PARTY = '''
"""A family from another package: the Pirit driver under another name, for one model."""
from devices.models import Model
from harness.families import Family

FAMILY = Family(
    name="shtrih",
    title="Штрих-М (test double)",
    models=(Model(id="shtrih", title="Штрих-М", family="shtrih", model_name="x", model_code=9, serial_prefix="0497"),),
    driver="kkt_shtrih_test:Driver",
    describe="devices.pirit.protocol:describe",
    detect="devices.pirit.wire:detect",
    safety="devices.pirit.safety:scan",
)
'''
DRIVER = """
from devices.pirit.driver import PiritDriver


class Driver(PiritDriver):
    def __init__(self, link, *, model, **kw):
        super().__init__(link, model="kf", **kw)
"""


def test_a_third_party_family_registers_through_its_entry_point(tmp_path: Path) -> None:
    """A separate distribution on sys.path with a kkt_hil.families entry point joins the catalogue."""
    site = tmp_path / "site"
    (site / "kkt_shtrih_test-1.0.dist-info").mkdir(parents=True)
    (site / "kkt_shtrih_test-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kkt-shtrih-test\nVersion: 1.0\n"
    )
    (site / "kkt_shtrih_test-1.0.dist-info" / "entry_points.txt").write_text(
        "[kkt_hil.families]\nshtrih = kkt_shtrih_family:FAMILY\n"
    )
    (site / "kkt_shtrih_family.py").write_text(THIRD_PARTY)
    (site / "kkt_shtrih_test.py").write_text(DRIVER)
    script = textwrap.dedent(
        """
        from harness import families
        print(list(families.families()), list(families.catalogue())[-1], families.family_of("shtrih").title)
        print(families.default_models())
        try:
            families.family_of("shtrih").start_emulator("shtrih")
        except Exception as exc:
            print(type(exc).__name__, exc)
        """
    )
    env_path = f"{site}:{ROOT}"
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": env_path, "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "['pirit', 'atol', 'shtrih'] shtrih Штрих-М (test double)"
    assert lines[1] == "('kf', 'dkf', 'start', 'atol')"  # emulator:all stays the emulated models
    assert lines[2] == "UsageError the Штрих-М (test double) family has no emulator"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "shtrih = kkt_nothere:FAMILY",
            "kkt_hil.families entry point shtrih = kkt_nothere:FAMILY cannot be loaded: ModuleNotFoundError",
        ),
        ("shtrih = harness.errors:UsageError", "is not a kkt-hil Family named 'shtrih'"),
        ("pirit = harness.errors:UsageError", "two packages register kkt_hil.families 'pirit'"),
    ],
)
def test_a_broken_family_entry_point_is_one_line(tmp_path: Path, entry: str, message: str) -> None:
    """Whatever a third party ships, the CLI says what is wrong in one line (exit 2), and pytest too."""
    site = tmp_path / "site"
    (site / "kkt_broken-1.0.dist-info").mkdir(parents=True)
    (site / "kkt_broken-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: kkt-broken\nVersion: 1.0\n"
    )
    (site / "kkt_broken-1.0.dist-info" / "entry_points.txt").write_text(f"[kkt_hil.families]\n{entry}\n")
    env = {"PYTHONPATH": f"{site}:{ROOT}", "PATH": ""}
    cli = subprocess.run(
        [sys.executable, "-m", "harness.cli", "emulate", "kf"], capture_output=True, text=True, timeout=60, env=env
    )
    assert cli.returncode == 2 and "Traceback" not in cli.stderr, cli.stderr
    assert message in cli.stderr and len(cli.stderr.strip().splitlines()) == 1, cli.stderr
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--kkt",
            "emulator:kf",
            "-p",
            "no:cacheprovider",
            str(ROOT / "scenarios" / "test_no_paper.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 4 and message in run.stderr and "INTERNALERROR" not in run.stdout + run.stderr, (
        run.stdout + run.stderr
    )
