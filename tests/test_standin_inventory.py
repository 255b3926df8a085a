"""The stand-in's inventory entry: a marked block added to the user's file, which is otherwise
left as written (comments included) and restored when the stand-in stops; a stale block of a
killed stand-in is replaced; a real register's id is not taken over; two stand-ins of one model
get different factory serials; a missing folder is one line."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.inventory import LabDevice, load_inventory
from harness.standin import check_inventory, default_serial, write_entry

from .cli_helpers import assert_clean_failure, run_cli

USER_FILE = """\
# the lab's registers
[[device]]
id = "bench1"
model = "kf"
url = "socket://127.0.0.1:50003"
serial = "0497000001"
fn = "fn36"
sacrificial = false   # PRODUCTION FN: never burn
operator = "tty"
"""

STANDIN = LabDevice(
    id="standin-kf",
    model="kf",
    url="/dev/pts/77",
    usb_serial=None,
    port=None,
    serial=default_serial("kf"),
    fn="fn36",
    sacrificial=True,
    rereg_floor=2,
    fn_registration_limit=30,
    utc_offset=timedelta(hours=3),
    operator="tcp://127.0.0.1:40000",
    hub=None,
    hub_poll_seconds=None,
    baud=None,
    supply=None,
    ofd=None,
    source="stand-in",
)


def test_the_users_file_is_kept_and_restored(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    remove = write_entry(path, STANDIN)
    text = path.read_text(encoding="utf-8")
    assert text.startswith(USER_FILE) and "# PRODUCTION FN: never burn" in text
    assert set(load_inventory(path).devices) == {"bench1", "standin-kf"}
    remove()
    assert path.read_text(encoding="utf-8") == USER_FILE


def test_a_new_file_is_removed_again(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    remove = write_entry(path, STANDIN)
    assert list(load_inventory(path).devices) == ["standin-kf"]
    remove()
    assert not path.exists()


def test_a_stale_block_of_a_killed_standin_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    write_entry(path, STANDIN)  # killed: never removed
    assert check_inventory(path, STANDIN.id, STANDIN.serial) == {}
    write_entry(path, dataclasses.replace(STANDIN, url="/dev/pts/78"))
    inventory = load_inventory(path)
    assert inventory.device("standin-kf").url == "/dev/pts/78"
    assert path.read_text(encoding="utf-8").count("# kkt-hil standin standin-kf:") == 1


def test_a_real_registers_id_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    with pytest.raises(UsageError, match=rf"{path}:2 already describes a device 'bench1'.*another --id"):
        check_inventory(path, "bench1", STANDIN.serial)


def test_a_second_standin_of_the_model_gets_another_serial(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    write_entry(path, STANDIN)
    settings = check_inventory(path, "second", STANDIN.serial)
    assert settings == {"serial": "0497123457"}


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"the folder \S*nowhere does not exist"):
        check_inventory(tmp_path / "nowhere" / "lab.toml", "x", STANDIN.serial)
    result = run_cli("standin", "kf", "--inventory", str(tmp_path / "nowhere" / "lab.toml"), cwd=tmp_path)
    assert "does not exist" in assert_clean_failure(result, 2)
