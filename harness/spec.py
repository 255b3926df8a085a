"""``--kkt`` device specs (a contract: users' scripts rely on the syntax).

emulator:kf                                  an in-process emulator of a model
emulator:all                                 every emulator (the default when no --kkt is given)
emulator:kf?firmware=2.25.0&defects=a,b      profile overrides and seeded defects
url:/dev/ttyUSB0#model=kf                    a device (or an out-of-process emulator) by pyserial URL;
url:socket://127.0.0.1:50003#model=kf&control=tcp://127.0.0.1:7000
                                             ... with the emulator's control channel as its lab
lab:<inventory id>                           a device from the lab inventory (--inventory FILE)
pool:<name>                                  any free one of the inventory entries with pool = "<name>"
                                             (equivalent registers, one model): one test id per pool
                                             (test_x[pool-kf-lab]); each test leases whichever member is
                                             free first (all tried without waiting, then any waited for);
                                             the report's «Устройство» names the member it got
labgrid:<place>                              a register on a labgrid place (harness.labgrid): acquired for
labgrid:kf1?coordinator=127.0.0.1:20408#model=kf  the run; coordinator= (else LG_COORDINATOR), model= (else
                                             the place's tag kkt_model); hub=URL as for url: specs

emulator:kf?faults=seed:7,p:0.01             ... through a fault-injecting link (harness.faults): the
url:socket://127.0.0.1:50003#model=kf&faults=seed:7,p:0.01,kinds:drop|corrupt
                                             register's URL wrapped in faulty://; the faults value is
                                             comma-separated key:value items: seed (integer), p (per-byte
                                             probability), kinds (drop|corrupt|duplicate|replay|truncate|
                                             delay|disconnect), dir (tx|rx|both), at (DIR:FRAME:BYTE[:KIND],
                                             |-separated), after, limit, hold (see harness.faults.schedule)

emulator:kf?transport=tcp                    how the driver reaches the emulator: pty (default: its pty),
emulator:all?transport=rfc2217               tcp (loopback TCP), rfc2217 (its pty exported by a real
                                             ser2net as RFC 2217: rfc2217://127.0.0.1:PORT, line settings
                                             reach the pty) or ser2net (the same as raw TCP: socket://);
                                             the export comes from a ser2net the process keeps
                                             (harness.ser2net: a symlink re-pointed at each test's pty)
emulator:kf?transport=rfc2217&pace=line      answers no faster than the pty's current line rate
                                             (pace: off by default, or line; a pty transport)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from . import families
from .errors import UsageError
from .faults.schedule import Schedule, parse_schedule


@dataclass(frozen=True)
class DeviceSpec:
    kind: str  # "emulator" | "url" | "lab" | "labgrid"
    model: str  # catalogue model id; "" for lab (labgrid) specs until the inventory (the place) is read
    text: str  # as the user wrote it
    url: str = ""
    target: str = ""  # inventory id for lab specs, place name for labgrid specs
    params: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The test-id suffix: ``emulator-kf``, ``url-kf``, ``lab-bench1``."""
        base = f"{self.kind}-{self.target or self.model}"
        hidden = ("control", "transport", "coordinator")  # where it is reached, not what it is
        extra = [f"{k}={v}" for k, v in sorted(self.params.items()) if k not in hidden]
        return base + (f"[{','.join(extra)}]" if extra else "")

    @property
    def faults(self) -> Schedule | None:
        """The fault schedule of ``faults=`` (None without it); UsageError naming what is wrong."""
        text = self.params.get("faults")
        return None if text is None else _schedule(self.text, text)


def parse_spec(text: str, *, known_models: tuple[str, ...] | None = None) -> list[DeviceSpec]:
    """Parse one spec; ``emulator:all`` expands to several.  UsageError names what is wrong."""
    text = text.strip()
    kind, sep, rest = text.partition(":")
    if not sep or not rest:
        raise UsageError(
            f"bad --kkt spec {text!r}: expected emulator:MODEL, url:URL#model=MODEL, lab:ID, pool:NAME or labgrid:PLACE"
        )
    if kind == "emulator":
        model, _, query = rest.partition("?")
        params = _params(text, query)
        models = known_models or families.model_ids()
        if "faults" in params:
            _schedule(text, params["faults"])
        if model == "all":  # the catalogue's default set; other known models by name only
            chosen = [m for m in families.default_models() if m in models] or list(models)
            return [
                DeviceSpec("emulator", m, f"emulator:{m}" + (f"?{query}" if query else ""), params=params)
                for m in chosen
            ]
        if model not in models:
            raise UsageError(f"bad --kkt spec {text!r}: unknown model {model!r} (known: {', '.join(models)}, all)")
        return [DeviceSpec("emulator", model, text, params=params)]
    if kind == "url":
        url, _, fragment = rest.partition("#")
        params = _params(text, fragment)
        model = params.pop("model", "")
        if not url:
            raise UsageError(f"bad --kkt spec {text!r}: no URL")
        if not model:
            raise UsageError(f"bad --kkt spec {text!r}: name the model, e.g. url:{url}#model=kf")
        models = known_models or families.model_ids()
        if model not in models:
            raise UsageError(f"bad --kkt spec {text!r}: unknown model {model!r} (known: {', '.join(models)})")
        if "faults" in params:
            _schedule(text, params["faults"])
        return [DeviceSpec("url", model, text, url=url, params=params)]
    if kind == "lab":
        target, _, query = rest.partition("?")
        if not target:
            raise UsageError(f"bad --kkt spec {text!r}: name the inventory id, e.g. lab:bench1")
        params = _params(text, query)
        if "faults" in params:
            raise UsageError(f"bad --kkt spec {text!r}: faults= works with emulator: and url: specs, not lab:")
        return [DeviceSpec("lab", "", text, target=target, params=params)]
    if kind == "pool":
        return [_pool(text, rest)]
    if kind == "labgrid":
        return [_labgrid(text, rest, known_models or families.model_ids())]
    raise UsageError(f"bad --kkt spec {text!r}: unknown kind {kind!r} (emulator, url, lab, pool or labgrid)")


_PLACE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_HOST_PORT = re.compile(r"[A-Za-z0-9_.-]+:\d{1,5}|\[[0-9A-Fa-f:]+\]:\d{1,5}")
LABGRID_QUERY = ("coordinator", "hub")


def _labgrid(text: str, rest: str, models: tuple[str, ...]) -> DeviceSpec:
    """``labgrid:PLACE[?coordinator=HOST:PORT&hub=URL][#model=MODEL&control=tcp://HOST:PORT]``."""
    rest, _, fragment = rest.partition("#")
    place, _, query = rest.partition("?")
    if not _PLACE_NAME.fullmatch(place):
        raise UsageError(f"bad --kkt spec {text!r}: name the labgrid place, e.g. labgrid:kf1 (letters, digits, _ . -)")
    params = _params(text, query)
    extra = _params(text, fragment)
    unknown = [k for k in params if k not in LABGRID_QUERY] + [k for k in extra if k not in ("model", "control")]
    if unknown:
        raise UsageError(
            f"bad --kkt spec {text!r}: labgrid: takes ?coordinator=HOST:PORT, ?hub=URL, #model=MODEL and "
            f"#control=tcp://HOST:PORT, "
            f"not {unknown[0]!r}"
        )
    coordinator = params.get("coordinator")
    if coordinator is not None and not (
        _HOST_PORT.fullmatch(coordinator) and 0 < int(coordinator.rsplit(":", 1)[1]) <= 65535
    ):
        raise UsageError(f"bad --kkt spec {text!r}: coordinator must be HOST:PORT (port 1-65535), not {coordinator!r}")
    model = extra.get("model", "")
    if model and model not in models:
        raise UsageError(f"bad --kkt spec {text!r}: unknown model {model!r} (known: {', '.join(models)})")
    if "control" in extra:  # an emulator exported on the place: its control channel is the lab
        params["control"] = extra["control"]
    return DeviceSpec("labgrid", model, text, target=place, params=params)


def _params(text: str, query: str) -> dict[str, str]:
    if not query:
        return {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise UsageError(f"bad --kkt spec {text!r}: parameters must look like key=value&key=value") from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in params:
            raise UsageError(f"bad --kkt spec {text!r}: parameter {key!r} given twice")
        params[key] = value
    return params


def _schedule(text: str, faults: str) -> Schedule:
    try:
        return parse_schedule(faults)
    except ValueError as exc:
        raise UsageError(f"bad --kkt spec {text!r}: {exc}") from None


def _pool(text: str, rest: str) -> DeviceSpec:
    """``pool:NAME``: the members are read from the inventory when the run starts."""
    name, _, query = rest.partition("?")
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        raise UsageError(f"bad --kkt spec {text!r}: name the pool, e.g. pool:kf-lab (lower-case letters, digits, _ -)")
    params = _params(text, query)
    if "faults" in params:
        raise UsageError(f"bad --kkt spec {text!r}: faults= works with emulator: and url: specs, not pool:")
    return DeviceSpec("pool", "", text, target=name, params=params)
