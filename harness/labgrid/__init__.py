"""labgrid places as registers: ``--kkt labgrid:<place>`` (DESIGN.md "Scale").

A lab that already runs labgrid keeps its registers on its exporter hosts; a *place* on the
coordinator names one register (its serial port, and maybe a power switch).  The stand takes the
place for a run exactly as a person would, through the ``labgrid-client`` command (never a
re-implementation of its protocol):

1. ``labgrid-client -p P show`` — the place exists under that exact name (labgrid matches
   substrings; a fiscal register is never picked by a pattern), is not acquired, and names the
   register's model in its tag ``kkt_model`` (``labgrid-client -p P set-tags kkt_model=kf``) or the
   spec does (``labgrid:P#model=kf``); otherwise one line and nothing is acquired;
2. ``labgrid-client -p P acquire``, then ``show`` again: the place's one ``NetworkSerialPort``
   (host, port, speed, protocol ``rfc2217`` — ser2net started by the exporter — or ``raw``) becomes
   ``rfc2217://host:port`` / ``socket://host:port``; a power resource, if any, is switched with
   ``labgrid-client -p P power on|off|cycle`` (:class:`PlaceLab`);
3. ``labgrid-client -p P release`` when the run ends — and when it is killed: a watchdog child in
   its own session holds a pipe from the holder and releases the place when the pipe reaches EOF
   (the holder died, even by SIGKILL).  labgrid itself never expires an acquisition.

Which client: ``$KKT_HIL_LABGRID_CLIENT``, else ``labgrid-client`` on PATH (the lab's own, matching
its coordinator), else ``.venv-labgrid/bin/labgrid-client`` in the repository (``make setup``
installs labgrid 26.0.1 there: it cannot share the stand's venv, its pyserial fork would replace
pyserial).  Which coordinator: the spec's ``?coordinator=HOST:PORT``, else ``$LG_COORDINATOR``,
else labgrid's default ``127.0.0.1:20408``.

A pytest run acquires each place once, in its controlling process (:func:`hold_places`), and
exports what it holds in ``$KKT_HIL_LABGRID_HELD`` for its xdist workers; ``open_kkt("labgrid:P")``
from a script acquires and releases by itself.  The register is a remote one nothing proves
sacrificial: destructive requests are refused on the wire, as for ``url:`` specs.
"""

from __future__ import annotations

from .client import CLIENT_ENV, HELD_ENV, MODEL_TAG, Client, Place, client_env, find_client, me, parse_show
from .entries import PlaceLab, PlaceSupply, entry_spec, entry_supply, entry_url, hold_entries
from .places import Acquisition, held, hold_places, open_place

__all__ = [
    "CLIENT_ENV",
    "HELD_ENV",
    "MODEL_TAG",
    "Acquisition",
    "Client",
    "Place",
    "PlaceLab",
    "PlaceSupply",
    "client_env",
    "entry_spec",
    "entry_supply",
    "entry_url",
    "find_client",
    "held",
    "hold_entries",
    "hold_places",
    "me",
    "open_place",
    "parse_show",
]
