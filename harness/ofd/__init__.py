"""The OFD side of the stand: the register ↔ OFD message format (:mod:`.protocol`), the emulated
OFD server (:mod:`.server`, ``kkt-hil ofd``) and the OFD link proxy the lab controls
(:mod:`.proxy`, ``lab.ofd`` on lab registers)."""

from __future__ import annotations

from .protocol import (
    Corrupt,
    DocumentMessage,
    Message,
    MessageReader,
    ReceiptMessage,
    decode_message,
    encode_document,
    encode_receipt,
)
from .proxy import OfdProxy
from .server import OfdServer, serve_ofd_command

__all__ = [
    "Corrupt",
    "DocumentMessage",
    "Message",
    "MessageReader",
    "OfdProxy",
    "OfdServer",
    "ReceiptMessage",
    "decode_message",
    "encode_document",
    "encode_receipt",
    "serve_ofd_command",
]
