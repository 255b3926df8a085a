"""Service commands: the settings table (0x11/0x12), pictures and logos (two-stage uploads
0x15/0x17/0x18/0x55/0x67, 0x16, 0x19), the drawer and the beeper (0x80-0x82), the serial speed
(0x93), memory and service data (0x91, 0x94), the Кабинет commands (0xA6-0xA9), services
activation (0xAA) and the OFD server (0x9E, 0x9F, 0xA5)."""

from __future__ import annotations

from ..protocol import Field, Request
from .fields import Fields, ParamError


class ServiceCommands(Fields):
    def _upload(self, request: Request, data: bytes | None, *, first_stage: bool) -> list[Field]:
        """A two-stage upload: at the first stage, the byte count to take; then the answer."""
        raise ParamError(f"0x{request.command:02X} uploads are not emulated")
