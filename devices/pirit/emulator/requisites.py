"""What a host adds to an open document besides items and payments: free text (0x40), barcodes
(0x41), requisites (0x24 item requisites, 0x25 report requisites, 0x49, 0x57), a loaded picture
(0x56), the cut (0x34), the receipt discount (0x45), department sums (0x50), the total check and
set (0x52, 0x64), and the copy of a receipt (0x53)."""

from __future__ import annotations

from .fields import Fields


class RequisiteCommands(Fields):
    pass
