"""pyserial URL handlers the harness puts in front of pyserial's own (``protocol_<scheme>``
modules, found through ``serial.protocol_handler_packages``): importing this package registers
it first in that list, so every ``serial_for_url`` in the process (the harness's, a
``faulty://`` link's inner port, a lab script's) gets them.

* :mod:`.protocol_rfc2217` -- pyserial's RFC 2217 client (ser2net's ``telnet(rfc2217)``
  accepter) with a write deadline, without renegotiating the line on every read, waiting for
  the server's answers instead of polling with sleeps, and without a pause after close.
* :mod:`.protocol_socket` -- pyserial's raw TCP client without its 0.3 s pause after close.
"""

from __future__ import annotations

import serial

PACKAGE = __name__

if PACKAGE not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.insert(0, PACKAGE)
