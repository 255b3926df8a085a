"""THE model catalogue: one record per register model, and nothing else spells a model fact.

A record says what a model *is* — its Russian title, its protocol family, how its factory
numbers start, the vendor model codes it reports, its USB identity, its transport defaults, the
firmware that brings deferred re-registration and its FFD.  Everything else reads it: the family
registry (``harness.families``), the emulator profiles (which extend a record with emulator
choices), the Dreamkas hub's firmware gates, the plugin's ``emulator:all``, discovery and the CLI.

Sources: reference ``protocols.md`` §1 (who speaks what), §2.1 and §3.1 (transport defaults),
§5.6 (serial prefixes), §5.7 and the product brief (firmware gates).  Facts the reference marks
[not found] (USB ids of Pirit-family devices, АТОЛ PIDs) stay empty instead of guessed.

This module is pure data: importing it imports no driver and no emulator.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

ATOL_USB_VENDOR = 0x2912  # §3.1 (S12 udev rule); PIDs [not found]


@dataclass(frozen=True)
class UsbId:
    vendor: int
    product: int | None = None  # None: any product of that vendor

    def matches(self, vendor: int | None, product: int | None) -> bool:
        return vendor == self.vendor and (self.product is None or product == self.product)

    def __str__(self) -> str:
        return f"{self.vendor:04x}:" + (f"{self.product:04x}" if self.product is not None else "*")


@dataclass(frozen=True)
class Model:
    """What a register model is, whoever reaches it (driver, emulator, hub, discovery)."""

    id: str  # our short id: kf, dkf, start, atol …  (the ``--kkt`` and ``--model`` vocabulary)
    title: str  # the Russian name a QA engineer knows
    family: str  # protocol family (an entry point of group ``kkt_hil.families``)
    model_name: str  # what the device calls itself (printed on the tape, АТОЛ A5h name)
    model_code: int  # the vendor model code the device reports (Pirit 0x02/21, АТОЛ model byte)
    serial_prefix: str  # first digits of its factory number (§5.6)
    # codes a real device of this model may report (default: just ``model_code``)
    model_codes: frozenset[int] = frozenset()
    # factory numbers of this model start with one of these (default: just ``serial_prefix``)
    serial_prefixes: tuple[str, ...] = ()
    serial_checked: bool = True  # False: the prefix is our convention, a real device may differ
    usb_ids: tuple[UsbId, ...] = ()
    baudrate: int = 57600  # serial line default (8N1)
    tcp_port: int | None = None  # where the device's own TCP endpoint listens, if it has one
    rereg_min_firmware: str | None = None  # firmware that takes Кабинет re-registration tasks
    # recorded behaviour of the real model (R4.6): a pure СНО change is refused while documents are unsent
    rereg_requires_empty_queue: bool = False
    ffd: str = "1.2"
    # the vendor manual's edition whose command set the firmware serves (Pirit family:
    # devices.pirit.catalogue — "pirit2f", "fm16", "punix"); "" for a family without editions
    edition: str = ""
    in_default_set: bool = True  # part of ``emulator:all``

    def __post_init__(self) -> None:
        if not self.model_codes:
            object.__setattr__(self, "model_codes", frozenset({self.model_code}))
        if not self.serial_prefixes:
            object.__setattr__(self, "serial_prefixes", (self.serial_prefix,))

    @property
    def has_cloud_tasks(self) -> bool:
        """Deferred re-registration from the vendor cloud (Dreamkas Кабинет)."""
        return self.rereg_min_firmware is not None

    def accepts(self, *, serial: str, model_code: int) -> bool:
        """Could a device reporting this serial and model code be this model?"""
        if model_code not in self.model_codes:
            return False
        return not self.serial_checked or serial.startswith(self.serial_prefixes)


def _catalogue(models: Iterable[Model]) -> Mapping[str, Model]:
    table: dict[str, Model] = {}
    for record in models:
        if record.id in table:
            raise ValueError(f"model {record.id!r} is in the catalogue twice")
        table[record.id] = record
    return MappingProxyType(table)


# АТОЛ platform 2.5, "Протокол ККТ 3.x".  Model bytes are libfptr's LIBFPTR_MODEL_* (believed
# equal to the A5h/3Fh model byte, §3.1).  Real serials have 14 digits; the emulator keeps 10 (3Fh
# carries only 8 BCD digits anyway).
_ATOL_30F = Model(
    id="atol",
    title="АТОЛ 30Ф",
    family="atol",
    model_name="АТОЛ 30Ф",
    model_code=61,
    serial_prefix="0010",
    serial_checked=False,  # our emulator's convention
    usb_ids=(UsbId(ATOL_USB_VENDOR),),
    baudrate=115200,  # §3.1: 115200 8N1
    tcp_port=5555,  # libfptr default
    rereg_requires_empty_queue=True,  # ATOL 237 / libfptr 139 "unsent FDs in the FN"
)


def _atol_platform_25(model_id: str, title: str, model_code: int) -> Model:
    """Other АТОЛ platform-2.5 models: the 30Ф's transport and identity rules, their own model byte."""
    return replace(
        _ATOL_30F,
        id=model_id,
        title=title,
        model_name=title,
        model_code=model_code,
        model_codes=frozenset(),
        in_default_set=False,
    )


MODELS: Mapping[str, Model] = _catalogue(
    [
        Model(
            id="kf",
            title="Касса Ф",
            family="pirit",
            model_name="Пирит 2СФ (Касса Ф)",
            model_code=9,  # punix answers 0x02/21 with 9 "Пирит 2СФ" (§1)
            serial_prefix="0497",
            tcp_port=50003,  # fisGo's punix endpoint (§2.1)
            rereg_min_firmware="2.26.0",
            edition="punix",
        ),
        Model(
            id="dkf",
            title="Дримкас-Ф",
            family="pirit",
            model_name="Пирит 2СФ (Дримкас-Ф)",
            model_code=9,
            serial_prefix="0496",
            tcp_port=50003,
            rereg_min_firmware="1.12.0",
            edition="punix",
        ),
        Model(
            id="start",
            title="Дримкас Старт",
            family="pirit",
            model_name="Вики Принт 57Ф (Старт)",
            model_code=3,  # the built-in FM16 fiscal printer (Вики Принт 57-class)
            model_codes=frozenset({1, 2, 3, 4, 5}),  # FM16 models 1-5 (§1)
            serial_prefix="0493",
            serial_prefixes=("0493", "0494"),  # Вики Принт 57Ф / 57+Ф (§5.6); Старт has no own entry
            serial_checked=False,  # [inferred]: a real Старт may carry another Вики prefix
            tcp_port=50003,  # VikiDriver (§2.1)
            rereg_min_firmware="10.50.1",  # the Старт application version, as the hub sees it
            rereg_requires_empty_queue=True,
            edition="fm16",
        ),
        _ATOL_30F,
        _atol_platform_25("atol55", "АТОЛ 55Ф", 62),
        _atol_platform_25("atol90", "АТОЛ 90Ф", 72),
    ]
)


def models_of(family: str) -> tuple[Model, ...]:
    """The catalogue's models of one protocol family, in catalogue order."""
    return tuple(m for m in MODELS.values() if m.family == family)


@dataclass(frozen=True)
class Identified:
    """What discovery read from a device, and the catalogue models it could be."""

    family: str
    serial: str
    model_code: int
    firmware: str = ""
    candidates: tuple[str, ...] = field(default=())
    fn_serial: str = ""
    note: str = ""  # why the identity is incomplete, when it is


def identify(
    family: str, serial: str, model_code: int, firmware: str = "", *, catalogue: Mapping[str, Model] = MODELS
) -> Identified:
    """Which models of ``family`` a device with this serial and model code can be."""
    found = tuple(
        m.id for m in catalogue.values() if m.family == family and m.accepts(serial=serial, model_code=model_code)
    )
    return Identified(family, serial, model_code, firmware, found)
