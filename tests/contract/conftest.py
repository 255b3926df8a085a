"""The contract every registered protocol family keeps: its driver against its emulator.

Parametrized over ``harness.families.families()`` (and over pty and TCP), so a third-party
family that registers through the ``kkt_hil.families`` entry point is held to the same tests.
Only the public surface is used: the family record, ``open_kkt``, the device interface and the
lab; vendor codes and wire details stay in the per-family test files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from harness import families, open_kkt
from harness.connect import DeviceHandle
from harness.device import Item
from harness.families import Emulated, Family

from ..tcp_peers import AnsweringPeer

START = datetime(2020, 12, 30, 10, 0, 0)
SUGAR = Item("Сахар", Decimal("100.00"))
SCALE = 0.3  # every vendor timeout, scaled: a missing answer fails in well under a second or two
FAMILIES = list(families.families().values())


@pytest.fixture(params=FAMILIES, ids=[f.name for f in FAMILIES])
def family(request: pytest.FixtureRequest) -> Family:
    return request.param


@dataclass
class Rig:
    handle: DeviceHandle
    family: Family

    @property
    def kkt(self) -> Any:
        return self.handle.kkt

    @property
    def lab(self) -> Any:
        return self.handle.lab

    @property
    def emulated(self) -> Emulated:
        assert self.handle.emulator is not None
        return self.handle.emulator

    def state(self) -> dict[str, Any]:
        return self.lab.state()


@pytest.fixture(params=["pty", "tcp"])
def rig(request: pytest.FixtureRequest, family: Family) -> Iterator[Rig]:
    model = family.models[0]
    spec = f"emulator:{model.id}?clock={START.isoformat()}&transport={request.param}"
    with open_kkt(spec, timeout_scale=SCALE) as handle:
        yield Rig(handle, family)


def _peer_url(payload: bytes) -> Iterator[str]:
    with AnsweringPeer(lambda: payload) as peer:
        yield f"socket://127.0.0.1:{peer.port}"


@pytest.fixture
def garbage_url() -> Iterator[str]:
    """A TCP peer that answers every chunk with bytes no register sends."""
    yield from _peer_url(b"\xff\x00garbage\x10")


@pytest.fixture
def unterminated_url() -> Iterator[str]:
    """A TCP peer that answers every request with its first half: a frame that starts and never ends."""

    with AnsweringPeer(respond=lambda chunk: chunk[: max(1, len(chunk) // 2)]) as peer:
        yield f"socket://127.0.0.1:{peer.port}"


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A TCP peer that reads everything and never answers (a register that is off)."""
    yield from _peer_url(b"")
