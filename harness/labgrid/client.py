"""labgrid-client, the one way the stand talks to labgrid: which client, which coordinator, its
errors as one line, and ``labgrid-client -p P show`` read back (see harness.labgrid)."""

from __future__ import annotations

import ast
import getpass
import os
import re
import shutil
import socket
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HarnessError, UsageError
from ..spec import DeviceSpec

CLIENT_ENV = "KKT_HIL_LABGRID_CLIENT"
HELD_ENV = "KKT_HIL_LABGRID_HELD"  # JSON: what the controlling process of a pytest run holds
MODEL_TAG = "kkt_model"
DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default
REPO_CLIENT = Path(__file__).resolve().parents[2] / ".venv-labgrid" / "bin" / "labgrid-client"
CALL_TIMEOUT = 30.0  # seconds for one labgrid-client command (acquire starts ser2net on the exporter)
RELEASE_TIMEOUT = 15.0
WATCHDOG_EXIT_TIMEOUT = 5.0
# environment variables that would make labgrid-client act on other places than the one named
_LABGRID_SELECTORS = ("LG_ENV", "LG_PLACE", "PLACE", "LG_STATE", "STATE", "LG_INITIAL_STATE", "LG_TOKEN")
POWER_CLASSES = (  # what `labgrid-client power` drives (labgrid.remote.client.ClientSession.power)
    "NetworkPowerPort",
    "PDUDaemonPort",
    "NetworkUSBPowerPort",
    "NetworkSiSPMPowerPort",
    "TasmotaPowerPort",
    "NetworkYKUSHPowerPort",
    "NetworkSysfsGPIO",
)
PROTOCOLS = {"rfc2217": "rfc2217", "raw": "socket"}  # NetworkSerialPort.protocol -> pyserial scheme
_PLACE = re.compile(r"Place '(?P<name>.*)':")
_RESOURCE = re.compile(r"(?P<kind>Acquired|Matching|Orphaned) resource '(?P<name>[^']*)' \((?P<path>[^)]*)\):?")


def find_client() -> str:
    """The ``labgrid-client`` to use (see the module docstring); UsageError if there is none."""
    configured = os.environ.get(CLIENT_ENV)
    if configured:
        if not os.access(configured, os.X_OK):
            raise UsageError(f"{CLIENT_ENV}={configured}: not an executable labgrid-client")
        return configured
    found = shutil.which("labgrid-client") or (str(REPO_CLIENT) if os.access(REPO_CLIENT, os.X_OK) else None)
    if found is None:
        raise UsageError(
            f"labgrid-client not found: run `make setup` (installs labgrid into {REPO_CLIENT.parents[1]}), "
            f"put labgrid-client on PATH, or set {CLIENT_ENV}"
        )
    return found


def coordinator_of(spec: DeviceSpec) -> str:
    return spec.params.get("coordinator") or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


def client_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _LABGRID_SELECTORS}


def me() -> str:
    """``host/user`` as labgrid names this client (LG_HOSTNAME / LG_USERNAME override)."""
    return f"{os.environ.get('LG_HOSTNAME', socket.gethostname())}/{os.environ.get('LG_USERNAME', getpass.getuser())}"


@dataclass(frozen=True)
class Place:
    """An acquired place: where its register is and what it is."""

    name: str
    coordinator: str
    holder: str  # host/user
    model: str
    host: str
    port: int
    speed: int
    protocol: str  # rfc2217 | raw
    power: str | None = None  # the class of its power resource, if any
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """``socket://host:port``, or ``rfc2217://host:port?ign_set_control``: the exporter's ser2net
        runs its port ``local`` (no modem lines) and never acknowledges DTR/RTS settings."""
        options = "?ign_set_control" if self.protocol == "rfc2217" else ""
        return f"{PROTOCOLS[self.protocol]}://{self.host}:{self.port}{options}"

    @property
    def where(self) -> str:
        return f"labgrid:{self.name} ({self.coordinator})"


class ClientTimeout(HarnessError):
    """labgrid-client did not finish in time (what it did is unknown)."""


class Client:
    """``labgrid-client -x COORDINATOR -p PLACE ...`` with a deadline; failures as one line."""

    def __init__(self, place: str, coordinator: str) -> None:
        self.place = place
        self.coordinator = coordinator
        self.executable = find_client()
        self.where = f"labgrid:{place}"

    def command(self, *args: str) -> list[str]:
        return [self.executable, "-x", self.coordinator, "-p", self.place, *args]

    def call(self, *args: str, timeout: float = CALL_TIMEOUT) -> str:
        try:
            done = subprocess.run(
                self.command(*args),
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                env=client_env(),
            )
        except subprocess.TimeoutExpired:
            raise ClientTimeout(
                f"{self.where}: `labgrid-client {args[0]}` did not finish within {timeout:g} s "
                f"(the coordinator at {self.coordinator} hangs?)"
            ) from None
        except OSError as exc:
            raise UsageError(f"{self.where}: cannot run {self.executable}: {exc.strerror or exc}") from None
        if done.returncode != 0:
            raise self.failure(done.stderr or done.stdout, args[0])
        return done.stdout

    def failure(self, text: str, command: str) -> HarnessError:
        """labgrid-client's own error, as one line naming the place."""
        if "Could not connect to coordinator" in text or "coordinator is unavailable" in text:
            return HarnessError(
                f"{self.where}: the labgrid coordinator at {self.coordinator} does not answer "
                "(is labgrid-coordinator running? ?coordinator=HOST:PORT or LG_COORDINATOR)"
            )
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        said = next((line for line in reversed(lines) if "rror" in line), lines[-1] if lines else "no output")
        for prefix in ("labgrid-client:", "Server error:", "error:", "Error:"):
            said = said.removeprefix(prefix).strip()
        said = said.split(". To work simultaneously")[0].rstrip(".")
        if "matches nothing" in said:
            return UsageError(f"{self.where}: no place {self.place!r} on the coordinator at {self.coordinator}")
        if "You have already acquired" in said:
            return HarnessError(f"{self.where}: {_held_by_me(self.place)}")
        return HarnessError(f"{self.where}: labgrid-client {command}: {said}")


def _held_by_me(name: str) -> str:
    return (
        f"place {name} is already acquired by {me()} (this user: another run holds it, or one was killed "
        f"before it released it: labgrid-client -p {name} release)"
    )


@dataclass
class Shown:
    """``labgrid-client -p P show``, parsed."""

    name: str
    tags: dict[str, str]
    acquired: str | None
    resources: list[tuple[str, str, dict[str, Any]]]  # (Acquired|Matching|Orphaned, path, resource)


def parse_show(text: str) -> Shown:
    """The place, its tags, who holds it and its resources (ValueError on an unknown layout)."""
    lines = text.splitlines()
    head = _PLACE.fullmatch(lines[0].strip()) if lines else None
    if head is None:
        raise ValueError(f"no \"Place '...':\" line in {text[:200]!r}")
    tags: dict[str, str] = {}
    acquired: str | None = None
    resources: list[tuple[str, str, dict[str, Any]]] = []
    index = 1
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith("  tags: "):
            tags = dict(pair.partition("=")[::2] for pair in line[len("  tags: ") :].split(", "))
        elif line.startswith("  acquired: "):
            value = line[len("  acquired: ") :].strip()
            acquired = None if value == "None" else value
        elif found := _RESOURCE.fullmatch(line.strip()):
            block = []
            while index < len(lines) and lines[index].startswith("  "):
                block.append(lines[index])
                index += 1
            data = ast.literal_eval(textwrap.dedent("\n".join(block))) if block else {}
            resources.append((found["kind"], found["path"], data if isinstance(data, dict) else {}))
    return Shown(head["name"], tags, acquired, resources)
