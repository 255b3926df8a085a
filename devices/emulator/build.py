"""Build a complete emulated register from a model id and ``key=value`` settings.

Shared by ``kkt-hil emulate``, the pytest plugin and ``harness.open_kkt`` (through the family
registry, which names :func:`build_emulator` as each family's ``emulator``), so that a spec like
``emulator:kf?firmware=2.25.0&defects=ignore_24h_rule&fn=fn15`` means the same everywhere.
The :class:`Emulator` it returns is what the harness knows as ``harness.families.Emulated``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.families import cloud_of, family
from harness.fiscal import TaxSystem
from harness.net import check_loopback, parse_tcp_url
from harness.versions import parse_version

from .clock import VirtualClock
from .control import ControlHandler, ControlServer
from .core import FiscalCore, restore_core
from .defects import check_defects
from .durable import DurableState
from .latency import PACE as DEVICE_PACE
from .latency import device_paced
from .ofd_link import NetworkOfd
from .profiles import ModelProfile, UnknownSetting, fn_kind, profile
from .serve import PACE_MODES, FrontEndFactory, Server, serve

DEFAULT_START = datetime(2020, 12, 1, 9, 0, 0)
#: transport= values (how the harness reaches an in-process emulator: harness.connect)
TRANSPORTS = ("pty", "tcp", "rfc2217", "ser2net")

# settings that are not profile fields
EMULATOR_SETTINGS = {
    "firmware": "firmware version the device reports (x.y.z)",
    "defects": "comma-separated seeded defects",
    "fn": "ФН kind: fn15 or fn36",
    "serial": "factory number (10 digits)",
    "clock": "device local time at start, ISO (2020-12-31T23:50:00)",
    "tax": "registered tax systems, e.g. usn_income or osn+patent",
    "transport": "how the plugin reaches the emulator: pty (default), tcp, rfc2217 (its pty exported by a real "
    "ser2net as RFC 2217) or ser2net (the same as raw TCP)",
    "pace": "answer pacing on a pty: off (default) or line (answers leave no faster than the pty's current line "
    "rate, e.g. 10 bits a byte at 57600 8N1)"
    # pace=device: devices.emulator.latency
    " or device (each answer first waits the command's typical time on a real register, then leaves at the "
    "line rate)",
    "ofd": "online (default: the in-process OFD, documents delivered at once), offline (the OFD link starts "
    "down, documents queue until the control op ofd brings it up) or tcp://127.0.0.1:PORT (send documents "
    "over TCP to that OFD)",
    "ofd_retry": "with ofd=tcp://…: seconds between attempts after an OFD failure (default 1.0)",
    "ofd_timeout": "with ofd=tcp://…: seconds to wait for the OFD to connect and for each receipt (default 2.0)",
}


@dataclass
class Emulator:
    """One emulated register: profile, fiscal core, control channel, and what serves them."""

    profile: ModelProfile
    core: FiscalCore
    handler: ControlHandler
    ofd_link: NetworkOfd | None = None  # the TCP link to an OFD (ofd=tcp://…); None: in-process OFD
    pace: str = "off"  # answer pacing of the wire servers (serve.PACE_MODES)
    servers: list[Server] = field(default_factory=list, repr=False)  # what serve() started (PtyServer.line_settings)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _device_stop: threading.Event = field(default_factory=threading.Event, repr=False)  # pace=device

    @property
    def model(self) -> ModelProfile:
        return self.profile

    @property
    def serial(self) -> str:
        return self.core.serial

    @property
    def fn_kind(self) -> str:
        return self.core.fn.kind

    def control(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.handler.handle(request)

    def now(self) -> datetime:
        return self.core.now()

    def serve(self, listen: str, *, allow_lan: bool = False) -> str:
        """The wire protocol on ``pty``/``pty:LINK``/``tcp://HOST:PORT`` (loopback unless ``allow_lan``)."""
        owner = family(self.profile.family)
        factory, pace = self._device_pace(lambda: owner.make_frontend(self.core), listen)
        server = serve(
            factory,
            listen,
            inter_byte_timeout=owner.inter_byte_timeout,
            allow_lan=allow_lan,
            pace=pace,
        )
        self._closers.append(server.close)
        self.servers.append(server)
        return server.url

    def serve_control(self, listen: str, *, allow_lan: bool = False) -> str:
        """The control channel on ``tcp://HOST:PORT`` (loopback unless ``allow_lan``)."""
        server = ControlServer(self.handler, listen, allow_lan=allow_lan)
        self._closers.append(server.close)
        return server.url

    def attach_cloud(self, url: str, *, poll_interval: float | None = None) -> None:
        cloud = cloud_of(self.profile.id)
        if cloud is None:
            raise ValueError(f"{self.profile.title} has no Dreamkas cloud link")
        cloud.attach(self, url, poll_interval=poll_interval)

    def snapshot(self) -> dict[str, Any]:
        return self.core.snapshot()

    def restore(self, snapshot: dict[str, Any]) -> None:
        restore_core(self.core, snapshot)

    def persist(self, path: str, *, after_load: Callable[[], None] | None = None) -> DurableState:
        """``--state FILE``: see :mod:`.durable`; StateFileError (a ValueError) with one line."""
        state = DurableState(self.core, path)
        state.open(after_load)
        return state

    def _device_pace(self, factory: FrontEndFactory, listen: str) -> tuple[FrontEndFactory, str]:
        """pace=device (devices.emulator.latency): the front-ends wait the commands' typical time,
        and on a pty the answers then leave at the line rate; any other pace as it is."""
        if self.pace != DEVICE_PACE:
            return factory, self.pace
        return device_paced(factory, self._device_stop), "line" if listen.startswith("pty") else "off"

    def on_close(self, closer: Callable[[], None]) -> None:
        """``closer`` runs when the emulator is closed (a link it holds open, like the cloud's)."""
        self._closers.append(closer)

    def close(self) -> None:
        self._device_stop.set()  # pace=device: a waiting answer gives up at once
        while self._closers:
            with contextlib.suppress(Exception):
                self._closers.pop()()


def build_emulator(model: str, settings: Mapping[str, str] | None = None, *, flowing_clock: bool = False) -> Emulator:
    """ValueError with a one-line message for any bad setting."""
    settings = dict(settings or {})
    base = profile(model)
    overrides = {k: v for k, v in settings.items() if k not in EMULATOR_SETTINGS}
    if "firmware" in settings:
        parse_version(settings["firmware"])
        overrides["firmware"] = settings["firmware"]
    if "fn" in settings:
        overrides["fn_kind"] = fn_kind(settings["fn"]).id
    try:
        prof = base.with_overrides(overrides)
    except UnknownSetting as exc:
        known = ", ".join(dict.fromkeys([*EMULATOR_SETTINGS, *base.settings_help()]))
        raise ValueError(f"{exc} (settings: {known})") from None
    start = DEFAULT_START
    if "clock" in settings:
        try:
            start = datetime.fromisoformat(settings["clock"])
        except ValueError:
            raise ValueError(
                f"clock takes ISO local time like 2020-12-31T23:50:00, not {settings['clock']!r}"
            ) from None
        if start.tzinfo is not None or not 2000 <= start.year <= 2099:
            raise ValueError(
                f"clock takes device local time (no zone) in 2000..2099 (the registers' dates have two-digit "
                f"years), not {settings['clock']!r}"
            )
    elif flowing_clock:
        start = datetime.now().replace(microsecond=0)
    serial = settings.get("serial")
    if serial is not None and not (serial.isdigit() and len(serial) == 10):
        raise ValueError(f"serial must be 10 digits, not {serial!r}")
    tax = TaxSystem.from_names(settings["tax"]) if "tax" in settings else TaxSystem.USN_INCOME
    if not tax:
        raise ValueError("tax needs at least one tax system")
    defects = check_defects(settings.get("defects", "").split(","))
    if settings.get("transport", "pty") not in TRANSPORTS:
        raise ValueError(
            f"transport is {', '.join(TRANSPORTS[:-1])} or {TRANSPORTS[-1]}, not {settings['transport']!r}"
        )
    pace = settings.get("pace", "off").strip().lower()
    if pace not in (*PACE_MODES, DEVICE_PACE):
        raise ValueError(f"pace is {', '.join(PACE_MODES)} or {DEVICE_PACE}, not {settings['pace']!r}")
    ofd_online, ofd = _ofd_settings(settings)
    core = FiscalCore(
        prof,
        clock=VirtualClock(start, flowing=flowing_clock),
        serial=serial,
        defects=frozenset(defects),
        tax_systems=tax,
        ofd_online=ofd_online,
    )
    emulator = Emulator(prof, core, ControlHandler(core), pace=pace)
    if ofd is not None:
        url, retry, timeout = ofd
        link = NetworkOfd(core, url, retry=retry, timeout=timeout)
        link.start()
        emulator.ofd_link = link
        emulator._closers.append(link.close)
    return emulator


#: ``ofd=online`` / ``ofd=offline``: the in-process OFD, its link up (the default) or down at start
OFD_MODES = {"online": True, "offline": False}


def _ofd_settings(settings: Mapping[str, str]) -> tuple[bool, tuple[str, float, float] | None]:
    """``ofd``, ``ofd_retry``, ``ofd_timeout`` checked: whether the OFD link starts up, and the
    network OFD (URL, retry, timeout) or None for the in-process one."""
    url = settings.get("ofd", "online").strip()
    if url.lower() in OFD_MODES:
        extra = [k for k in ("ofd_retry", "ofd_timeout") if k in settings]
        if extra:
            raise ValueError(f"{extra[0]} goes with ofd=tcp://127.0.0.1:PORT")
        return OFD_MODES[url.lower()], None
    try:
        host, _port = parse_tcp_url(url)
    except ValueError:
        raise ValueError(f"ofd takes online, offline or tcp://127.0.0.1:PORT (an OFD server), not {url!r}") from None
    try:
        check_loopback(host)
    except ValueError as exc:
        raise ValueError(f"ofd: {exc}") from None
    values = []
    for key, default in (("ofd_retry", 1.0), ("ofd_timeout", 2.0)):
        text = settings.get(key, str(default))
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 < value <= 3600:
            raise ValueError(f"{key} takes seconds like 0.5, not {text!r}")
        values.append(value)
    return True, (url, values[0], values[1])
