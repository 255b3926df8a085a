"""The stand-in's inventory entry: a marked block added to the user's file, which is otherwise
left as written (comments included) and restored when the stand-in stops; a stale block of a
killed stand-in is replaced; a real register's id is not taken over; two stand-ins of one model
get different factory serials; a missing folder is one line."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.inventory import LabDevice, load_inventory
from harness.standin_entry import check_inventory, default_serial, write_entry

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
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    text = path.read_text(encoding="utf-8").replace(f"(pid {os.getpid()})", f"(pid {dead.stdout.strip()})")
    path.write_text(text, encoding="utf-8")  # as the killed stand-in left it
    assert check_inventory(path, STANDIN.id, STANDIN.serial) == {}
    write_entry(path, dataclasses.replace(STANDIN, url="/dev/pts/78"))
    inventory = load_inventory(path)
    assert inventory.device("standin-kf").url == "/dev/pts/78"
    assert path.read_text(encoding="utf-8").count("# kkt-hil standin standin-kf (pid") == 1


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


def test_a_running_standins_block_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    write_entry(path, STANDIN)
    text = path.read_text(encoding="utf-8").replace(f"(pid {os.getpid()})", f"(pid {os.getppid()})")
    path.write_text(text, encoding="utf-8")  # as another live stand-in process wrote it
    with pytest.raises(UsageError, match=rf"a stand-in 'standin-kf' is running \(pid {os.getppid()}\)"):
        check_inventory(path, STANDIN.id, STANDIN.serial)


def test_removal_leaves_what_the_user_wrote_meanwhile_even_if_malformed(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(USER_FILE, encoding="utf-8")
    remove = write_entry(path, STANDIN)
    with path.open("a", encoding="utf-8") as file:
        file.write('[[device]]\nid = "half-writ\n')  # the user is in the middle of an edit
    remove()
    text = path.read_text(encoding="utf-8")
    assert "kkt-hil standin" not in text and "sacrificial = true" not in text
    assert text.startswith(USER_FILE.rstrip("\n")) and 'id = "half-writ' in text


def test_a_symlinked_inventory_stays_a_link_and_keeps_its_mode(tmp_path: Path) -> None:
    real = tmp_path / "shared" / "lab.toml"
    real.parent.mkdir()
    real.write_text(USER_FILE, encoding="utf-8")
    real.chmod(0o640)
    link = tmp_path / "lab.toml"
    link.symlink_to(real)
    remove = write_entry(link, STANDIN)
    assert link.is_symlink() and "standin-kf" in real.read_text(encoding="utf-8")
    assert real.stat().st_mode & 0o777 == 0o640
    remove()
    assert link.is_symlink() and real.read_text(encoding="utf-8") == USER_FILE
