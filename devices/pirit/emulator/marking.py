"""Marking-code commands (0x79 and its sub-requests, FFD 1.2 editions)."""

from __future__ import annotations

from .fields import Fields


class MarkingCommands(Fields):
    pass
