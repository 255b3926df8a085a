"""A real OFD link for an emulated register: documents go over TCP to an OFD (``harness.ofd``'s
emulated server, or the lab's OFD proxy in front of it) instead of the in-process instant drain.

While a :class:`NetworkOfd` is attached, ``core.ofd_network`` is True: the core's
``_drain_ofd`` then delivers nothing and only calls ``core.ofd_wakeups`` (on every commit and
every lab change), which wakes this link's thread.  The thread, while the ФН queue is not empty:
connects (``timeout``), sends the first unsent document, waits for its receipt (``timeout``),
then marks that document delivered under ``core.lock`` — the lock is never held during network
I/O.  Any failure marks the link down (``core.ofd_online = False``) and retries after ``retry``
seconds.

``core.ofd_online`` (Pirit 0x78/7 bit 0, ATOL "transport connected") means "the OFD answers":
it starts down, goes up when a receipt arrives, or when a connection opens and stays open with
nothing to send; it goes down on any failure.  A connection accepted by a link that then answers nothing
(the proxy's block mode) therefore does not raise it.

Lost receipts: a document stays unsent until its receipt arrives.  A document whose receipt was
lost is sent again on the next attempt (the OFD sees it twice) and marked delivered once.  A
receipt that arrives while the register is powered off is dropped (the ФН was not there to take
it); the document is resent after power-on.  The lab's ``{"op": "ofd", "online": false}``
unplugs the link (``core.ofd_allowed``): nothing is sent until it is plugged back in.  The link
starts plugged in, as the core was built (``FiscalCore(ofd_online=...)``).
"""

from __future__ import annotations

import select
import socket
import threading
import time

from harness.net import check_loopback, parse_tcp_url
from harness.ofd.protocol import MessageReader, ReceiptMessage, encode_document

from .core import FiscalCore

POLL = 0.05  # seconds: longest blocking wait between looks at the stop flag
PROBE_WAIT = 0.05  # a fresh idle connection must stay open this long to count as "link up"
JOIN_TIMEOUT = 5.0


class LinkDown(Exception):
    """One exchange with the OFD failed (no connection, no receipt, rejected)."""


class NetworkOfd:
    def __init__(
        self, core: FiscalCore, upstream: str, *, retry: float = 1.0, timeout: float = 2.0, allow_lan: bool = False
    ) -> None:
        host, port = parse_tcp_url(upstream)
        if not allow_lan:
            check_loopback(host)
        if retry <= 0 or timeout <= 0:
            raise ValueError("OFD retry and timeout must be positive seconds")
        self.core = core
        self.upstream = upstream
        self.retry = retry
        self.timeout = timeout
        self.last_error: str | None = None
        self.sent = 0  # documents sent, resends included
        self._address = (host, port)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._reader = MessageReader()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        with self.core.lock:
            self.core.ofd_network = True
            self.core.ofd_online = False  # "the OFD answers": not known until it does
            self.core.ofd_wakeups.append(self._wake.set)
        self._thread = threading.Thread(target=self._run, name="kkt-ofd-link", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread; the core is left with no OFD link at all (offline, nothing drains)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=JOIN_TIMEOUT)
        self._disconnect()
        with self.core.lock:
            if self._wake.set in self.core.ofd_wakeups:
                self.core.ofd_wakeups.remove(self._wake.set)
            self.core.ofd_network = False
            self.core.ofd_online = False

    # ------------------------------------------------------------------ the link thread

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before looking at the queue: a commit after the look wakes us
            try:
                busy = self._step()
            except (OSError, ValueError, LinkDown) as exc:
                self.last_error = str(exc) or type(exc).__name__
                self._disconnect()
                self._set_online(False, self.last_error)
                self._stop.wait(self.retry)
                continue
            if not busy:
                self._wake.wait(self.retry)

    def _step(self) -> bool:
        """One exchange; True when a document was acknowledged (look at the queue again now)."""
        core = self.core
        with core.lock:
            usable = core.powered and core.ofd_allowed
            queue = core.undelivered() if usable else []
            serial = core.fn.serial
            number = queue[0].number if queue else None
            message = b""
            if queue:
                first = queue[0]
                message = encode_document(serial, first.number, first.fiscal_sign, int(first.kind), first.at)
        if not usable:
            self._disconnect()
            self._set_online(False, "link unplugged or register off")
            return False
        fresh = self._connect()
        sock = self._sock
        assert sock is not None
        if number is None:
            if fresh:
                self._probe(sock)
            self._set_online(True)
            return False
        sock.settimeout(self.timeout)
        sock.sendall(message)
        self.sent += 1
        receipt = self._await_receipt(sock, serial, number)
        if not receipt.accepted:
            raise LinkDown(f"OFD rejected FD {number} (result {receipt.result})")
        with core.lock:
            if not core.powered:
                return False  # the ФН is off: the receipt is lost, the document stays unsent
            doc = next((d for d in core.fn.archive if d.number == number), None)
            if doc is not None and not doc.delivered:
                doc.delivered = True
                core.log("OFD receipt", f"FD {number} delivered")
            self._set_online(True)
        return True

    def _connect(self) -> bool:
        """Reuse the open connection if the OFD has not closed it; True for a new connection."""
        if self._sock is not None and self._alive(self._sock):
            return False
        self._disconnect()
        self._sock = socket.create_connection(self._address, timeout=self.timeout)
        self._reader.reset()
        return True

    def _alive(self, sock: socket.socket) -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return True
            data = sock.recv(4096)
        except (OSError, ValueError):
            return False
        self._reader.feed(data)  # stale answers of an earlier exchange are dropped
        return bool(data)

    def _probe(self, sock: socket.socket) -> None:
        """A new connection with nothing to send: an OFD that hangs up at once is not "up"."""
        readable, _, _ = select.select([sock], [], [], PROBE_WAIT)
        if readable and not self._alive(sock):
            raise LinkDown("OFD closed the connection")

    def _await_receipt(self, sock: socket.socket, serial: str, number: int) -> ReceiptMessage:
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LinkDown(f"no OFD receipt for FD {number} within {self.timeout:g} s")
            if self._stop.is_set():
                raise LinkDown("link closing")
            sock.settimeout(min(left, POLL))
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            if not data:
                raise LinkDown(f"OFD closed the connection before the receipt for FD {number}")
            for item in self._reader.feed(data):
                if isinstance(item, ReceiptMessage) and item.number == number and item.fn_serial == serial:
                    return item

    def _disconnect(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
            self._reader.reset()

    def _set_online(self, online: bool, reason: str = "") -> None:
        core = self.core
        with core.lock:
            if core.ofd_online == online:
                return
            core.ofd_online = online
            if core.powered:
                core.log("OFD link", f"up ({self.upstream})" if online else f"down: {reason}")
