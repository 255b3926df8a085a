"""pyvisa-sim profiles of the lab instruments, shipped as package data.

``pyvisa.ResourceManager(f"{SIM_DEFINITION}@sim")`` serves the bench supply of
:mod:`harness.instruments.supply` as ``TCPIP::127.0.0.1::5025::SOCKET`` and ``ASRL1::INSTR``.
"""

from __future__ import annotations

from pathlib import Path

SIM_DEFINITION: Path = Path(__file__).with_name("supply.yaml")
"""The pyvisa-sim definition of the bench supply (a real file: pyvisa-sim opens it by path)."""

SIM_RESOURCE = "TCPIP::127.0.0.1::5025::SOCKET"
SIM_SERIAL_RESOURCE = "ASRL1::INSTR"
