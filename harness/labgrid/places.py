"""Acquiring a place and releasing it — when done, or by a watchdog when the holder is killed —
and who holds what in a pytest run (``$KKT_HIL_LABGRID_HELD``, see harness.labgrid)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

from .. import families
from ..errors import HarnessError, UsageError
from ..spec import DeviceSpec, parse_spec
from .client import (
    HELD_ENV,
    MODEL_TAG,
    POWER_CLASSES,
    PROTOCOLS,
    RELEASE_TIMEOUT,
    WATCHDOG_EXIT_TIMEOUT,
    Client,
    ClientTimeout,
    Place,
    Shown,
    _held_by_me,
    client_env,
    coordinator_of,
    me,
    parse_show,
)

if TYPE_CHECKING:
    from ..inventory import Inventory, LabDevice


def _show(client: Client) -> Shown:
    text = client.call("show")
    try:
        return parse_show(text)
    except (ValueError, SyntaxError) as exc:
        raise HarnessError(f"{client.where}: cannot read `labgrid-client show` (labgrid version?): {exc}") from None


def _model(spec: DeviceSpec, shown: Shown, known: tuple[str, ...]) -> str:
    tagged = shown.tags.get(MODEL_TAG, "")
    wanted = spec.model
    if tagged and wanted and tagged != wanted:
        raise UsageError(f"{spec.text}: the place is tagged {MODEL_TAG}={tagged}, the spec says model={wanted}")
    model = tagged or wanted
    if not model:
        raise UsageError(
            f"{spec.text}: the place names no register model: labgrid-client -p {shown.name} set-tags "
            f"{MODEL_TAG}=kf (or the spec: labgrid:{shown.name}#model=kf)"
        )
    if model not in known:
        raise UsageError(f"{spec.text}: unknown model {model!r} (known: {', '.join(known)})")
    return model


def _place(spec: DeviceSpec, client: Client, shown: Shown, model: str) -> Place:
    """The acquired place's serial port and power resource (UsageError/HarnessError naming the place)."""
    orphaned = [path for kind, path, _ in shown.resources if kind == "Orphaned"]
    if orphaned:
        raise HarnessError(f"{spec.text}: resource {orphaned[0]} is gone (its labgrid-exporter disconnected?)")
    ports = [(path, r) for kind, path, r in shown.resources if r.get("cls") == "NetworkSerialPort"]
    if len(ports) != 1:
        named = ", ".join(path for path, _ in ports) or "none"
        raise UsageError(
            f"{spec.text}: the place must hold exactly one serial port (NetworkSerialPort), it has: {named}"
        )
    path, resource = ports[0]
    params = resource.get("params", {})
    if params.get("extra", {}).get("proxy_required"):
        raise UsageError(f"{spec.text}: {path} is on an isolated exporter (SSH proxy only); kkt-hil needs direct TCP")
    protocol = params.get("protocol", "rfc2217")
    if protocol not in PROTOCOLS or not isinstance(params.get("port"), int) or not params.get("host"):
        raise HarnessError(f"{spec.text}: {path} has no usable endpoint: {params}")
    power = next((r["cls"] for _, _, r in shown.resources if r.get("cls") in POWER_CLASSES), None)
    holder = shown.acquired or me()
    return Place(
        shown.name,
        client.coordinator,
        holder,
        model,
        str(params["host"]),
        int(params["port"]),
        int(params.get("speed") or families.model(model).baudrate),  # labgrid omits it when default
        protocol,
        power,
        shown.tags,
    )


class Acquisition:
    """One acquired place, released by :meth:`release` — or by the watchdog if this process dies."""

    def __init__(self, spec: DeviceSpec, known_models: tuple[str, ...]) -> None:
        self.client = Client(spec.target, coordinator_of(spec))
        before = _show(self.client)
        if before.name != spec.target:
            raise UsageError(f"{spec.text}: no place named exactly {spec.target!r} (labgrid matched {before.name!r})")
        if before.acquired is not None:
            held = (
                _held_by_me(spec.target)
                if before.acquired == me()
                else f"place {spec.target} is acquired by {before.acquired}"
            )
            raise HarnessError(f"{self.client.where}: {held}")
        model = _model(spec, before, known_models)
        # the watchdog first: a holder killed right after `acquire` still gets its place released
        self._watchdog: subprocess.Popen[bytes] | None = _start_watchdog(self.client.command("release"))
        self._spec = spec
        try:
            self.client.call("acquire")
        except ClientTimeout:
            self._stop_watchdog(released=False)  # it may have been acquired: the watchdog releases it
            raise
        except BaseException:
            self._stop_watchdog(released=True)  # not ours (e.g. another run of this user holds it)
            raise
        try:
            self.place = _place(spec, self.client, _show(self.client), model)
        except BaseException:
            with contextlib.suppress(HarnessError):
                self.release()
            raise
        _export(spec, self.place)  # for this process's inventory entries and its xdist workers

    def release(self) -> None:
        """Release the place (once); the watchdog is told it has nothing left to do."""
        if self._watchdog is None:
            return
        _unexport(self._spec)
        released = False
        try:
            self.client.call("release", timeout=RELEASE_TIMEOUT)
            released = True
        finally:
            self._stop_watchdog(released=released)  # not released: the watchdog tries on its own

    def _stop_watchdog(self, *, released: bool) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None or watchdog.stdin is None:
            return
        with contextlib.suppress(OSError):
            if released:
                watchdog.stdin.write(b"done\n")
            watchdog.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):  # still trying: it carries on by itself
            watchdog.wait(WATCHDOG_EXIT_TIMEOUT)


# Runs in a child of its own session with nothing of the stand imported: it blocks on the pipe
# from the holder; EOF without "done" means the holder is gone (killed), so it releases.
_WATCHDOG = """
import json, signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
said = sys.stdin.buffer.read()
if b"done" not in said:
    command = json.loads(sys.argv[1])
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            break
        if done.returncode == 0 or b"is not acquired" in done.stderr:
            break
        time.sleep(1.0)
"""


def _start_watchdog(release: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-c", _WATCHDOG, json.dumps(release), str(RELEASE_TIMEOUT * 3)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=client_env(),
        start_new_session=True,  # a Ctrl-C or a kill of the run's process group does not reach it
    )


# ------------------------------------------------------------------------------ who holds what


def _key(spec: DeviceSpec) -> str:
    return f"{coordinator_of(spec)}/{spec.target}"


def held(spec: DeviceSpec) -> Place | None:
    """The place as this run's controlling process holds it (itself, or the parent of an xdist worker)."""
    try:
        record = json.loads(os.environ.get(HELD_ENV, "{}")).get(_key(spec))
    except (ValueError, AttributeError):
        return None
    if not isinstance(record, dict) or record.get("pid") not in (os.getpid(), os.getppid()):
        return None
    record = {k: v for k, v in record.items() if k != "pid"}
    try:
        return Place(**record)
    except TypeError:
        return None


def _export(spec: DeviceSpec, place: Place) -> None:
    try:
        records = json.loads(os.environ.get(HELD_ENV, "{}"))
    except ValueError:
        records = {}
    records = {k: v for k, v in records.items() if isinstance(v, dict) and v.get("pid") == os.getpid()}
    records[_key(spec)] = {**asdict(place), "pid": os.getpid()}
    os.environ[HELD_ENV] = json.dumps(records)


def _unexport(spec: DeviceSpec) -> None:
    with contextlib.suppress(ValueError, AttributeError):
        records = json.loads(os.environ.get(HELD_ENV, "{}"))
        records.pop(_key(spec), None)
        os.environ[HELD_ENV] = json.dumps(records)


def hold_places(
    specs: list[DeviceSpec],
    on_cleanup: Callable[[Callable[[], None]], None],
    *,
    controller: bool,
    known_models: tuple[str, ...],
    inventory: Inventory | None = None,
) -> list[DeviceSpec]:
    """For a pytest run: every place of a ``labgrid:`` spec or of an inventory entry a ``lab:`` /
    ``pool:`` spec names, acquired once by the controlling process (each release registered with
    ``on_cleanup`` at once) and exported for the workers, which only read it; ``labgrid:`` specs
    come back with their model and URL (a worker's equal to its controller's)."""
    out: list[DeviceSpec] = []
    for spec in specs:
        wanted = [spec] if spec.kind == "labgrid" else entry_specs(spec, inventory)
        for one in wanted:
            if held(one) is None:
                if not controller:
                    raise UsageError(f"{one.text}: this xdist worker's controller does not hold the place")
                on_cleanup(_warn_on_failure(Acquisition(one, known_models)))
        place = held(spec) if spec.kind == "labgrid" else None
        out.append(spec if place is None else replace(spec, model=place.model, url=place.url))
    return out


def _warn_on_failure(acquisition: Acquisition) -> Callable[[], None]:
    """The release at the end of a run: a failure is one line on stderr (the watchdog retries)."""

    def release() -> None:
        try:
            acquisition.release()
        except HarnessError as exc:
            print(f"kkt-hil: {exc} (a watchdog keeps trying to release it)", file=sys.stderr, flush=True)

    return release


def open_place(spec: DeviceSpec, known_models: tuple[str, ...]) -> tuple[Place, Callable[[], None]]:
    """The place of ``spec``: this run's (nothing to release), else acquired now (release it)."""
    place = held(spec)
    if place is not None:
        return place, lambda: None
    acquisition = Acquisition(spec, known_models)
    return acquisition.place, acquisition.release


def entry_spec(entry: LabDevice) -> DeviceSpec:
    """The ``labgrid:`` spec of an inventory entry's ``labgrid = "PLACE[?coordinator=...]"``."""
    [spec] = parse_spec(f"labgrid:{entry.labgrid}#model={entry.model}")
    return replace(spec, text=f"lab:{entry.id} ({entry.source}, labgrid:{entry.labgrid})")


def entry_specs(spec: DeviceSpec, inventory: Inventory | None) -> list[DeviceSpec]:
    if inventory is None or spec.kind not in ("lab", "pool"):
        return []
    from ..lab_open import lab_entries

    return [entry_spec(entry) for entry in lab_entries(inventory, spec) if entry.labgrid is not None]
