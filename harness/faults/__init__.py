"""A fault-injecting link: the ``faulty://`` pyserial URL handler and a loopback TCP fault proxy,
both driven by one seeded, reproducible fault schedule (:mod:`.schedule`).

Importing this package registers it with pyserial (``serial.protocol_handler_packages``), so
``serial.serial_for_url("faulty://?seed=7&p=0.01&url=socket://127.0.0.1:50003")`` works; the
harness imports it when it checks such a URL.  From Python::

    from harness.faults import Schedule, faulty_url

    url = faulty_url("socket://127.0.0.1:50003", seed=7, p=0.01, kinds=("drop", "corrupt"))
    port = serial.serial_for_url(url, timeout=1)   # port.injected: every fault so far

``--kkt "emulator:kf?faults=seed:7,p:0.01"`` (or ``url:...#model=kf&faults=...``) runs the suite
through it; every fault is a note in the wire trace.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

import serial

from .schedule import DEFAULT_KINDS, KINDS, Fault, Injector, Placement, Schedule, parse_schedule, schedule_from_pairs

PACKAGE = __name__

if PACKAGE not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append(PACKAGE)

__all__ = [
    "DEFAULT_KINDS",
    "KINDS",
    "Fault",
    "Injector",
    "Placement",
    "Schedule",
    "faulty_url",
    "parse_faulty_url",
    "parse_schedule",
]

SCHEME = "faulty://"


def faulty_url(
    url: str,
    schedule: Schedule | None = None,
    *,
    seed: int = 0,
    p: float = 0.0,
    kinds: tuple[str, ...] = DEFAULT_KINDS,
    direction: str = "both",
    at: tuple[Placement, ...] = (),
    hold: float | None = None,
) -> str:
    """``url`` wrapped in ``faulty://`` with ``schedule`` (or one built from the keywords);
    ValueError for a bad schedule.  The inner URL goes last, verbatim."""
    if schedule is None:
        schedule = Schedule(seed=seed, p=p, kinds=tuple(kinds), direction=direction, at=tuple(at), hold=hold)
    if not url:
        raise ValueError("faulty:// needs an inner URL")
    return f"{SCHEME}?{schedule.query()}&url={url}"


def parse_faulty_url(url: str) -> tuple[Schedule, str]:
    """``faulty://?OPTIONS&url=INNER`` → (schedule, inner URL); ValueError with one line.

    ``url=`` is either the last parameter, verbatim (it may carry its own ``?`` and ``&``), or
    percent-encoded anywhere (``url=socket%3A%2F%2F127.0.0.1%3A50003``)."""
    if not url.lower().startswith(SCHEME):
        raise ValueError(f"expected faulty://?seed=N&...&url=INNER, not {url!r}")
    rest = url[len(SCHEME) :]
    if not rest.startswith("?"):
        raise ValueError(f"expected faulty://?seed=N&...&url=INNER (options after ?), not {url!r}")
    query = rest[1:]
    if query.startswith("url="):
        head, tail = "", query[4:]
    elif "&url=" in query:
        head, _, tail = query.partition("&url=")
    else:
        raise ValueError(f"faulty:// needs url=<inner URL> (last, or percent-encoded): {url!r}")
    if "://" in tail:
        inner = tail  # verbatim, to the end
    else:
        encoded, _, more = tail.partition("&")
        inner = unquote(encoded)
        head = "&".join(part for part in (head, more) if part)
    if not inner:
        raise ValueError(f"faulty:// has an empty url= parameter: {url!r}")
    try:
        pairs = parse_qsl(head, keep_blank_values=True, strict_parsing=True) if head else []
    except ValueError:
        raise ValueError(f"faulty:// options must look like key=value&key=value: {url!r}") from None
    return schedule_from_pairs(pairs, separators=",|"), inner
