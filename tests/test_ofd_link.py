"""Emulated registers sending their documents over TCP to the emulated OFD (devices/emulator/
ofd_link.py), directly and through the lab's OFD proxy (harness/ofd/proxy.py).

Real network I/O, so conditions are awaited with a deadline loop (``until``), never a sleep; the
link runs with short retry intervals.  Where a test must show that something does *not*
happen, it watches a short window (``not until(..., 0.3)``).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

import pytest

from devices.emulator.build import Emulator, build_emulator
from devices.emulator.core import FiscalCore
from harness import open_kkt
from harness.device import Item, PaymentKind, ReceiptKind
from harness.ofd.protocol import MessageReader, ReceiptMessage, encode_document
from harness.ofd.proxy import OfdProxy
from harness.ofd.server import OfdServer, serve_ofd_command

CLOCK = "2021-03-01T10:00:00"
FAST = {"clock": CLOCK, "ofd_retry": "0.05", "ofd_timeout": "0.5"}


def until(condition: Callable[[], object], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


@pytest.fixture
def server() -> Iterator[OfdServer]:
    with OfdServer() as srv:
        yield srv


@pytest.fixture
def proxy(server: OfdServer) -> Iterator[OfdProxy]:
    with OfdProxy("tcp://127.0.0.1:0", server.url) as px:
        yield px


@pytest.fixture
def emulators() -> Iterator[Callable[..., Emulator]]:
    made: list[Emulator] = []

    def make(ofd: str, **settings: str) -> Emulator:
        emulator = build_emulator("kf", {**FAST, "ofd": ofd, **settings})
        made.append(emulator)
        emulator.core.start_work(emulator.core.now())
        return emulator

    yield make
    for emulator in made:
        emulator.close()


def address(url: str) -> tuple[str, int]:
    return "127.0.0.1", int(url.rsplit(":", 1)[1])


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port: int = probe.getsockname()[1]
    return port


def sale(core: FiscalCore) -> int:
    core.open_receipt(ReceiptKind.SALE, None, "Кассир")
    core.add_item("Хлеб", Decimal(1), Decimal("50.00"))
    core.pay(PaymentKind.CASH, Decimal("50.00"))
    return core.close_receipt().number


def unsent(core: FiscalCore) -> list[int]:
    with core.lock:
        return [d.number for d in core.unsent()]


def delivered_log(core: FiscalCore, number: int) -> int:
    return sum(1 for e in list(core.journal) if e.event == "OFD receipt" and e.detail == f"FD {number} delivered")


# ------------------------------------------------------------------ straight to the OFD


def test_documents_reach_the_ofd_in_order_and_the_queue_drains(server: OfdServer, emulators) -> None:
    core = emulators(server.url).core
    assert core.ofd_network
    assert until(lambda: core.ofd_online)
    numbers = [core.open_shift("Кассир").number, sale(core), sale(core)]
    assert until(lambda: not unsent(core))
    assert server.documents(core.fn.serial) == numbers == [2, 3, 4]
    assert all(core.document_by_number(n).delivered for n in numbers)
    assert [delivered_log(core, n) for n in numbers] == [1, 1, 1]
    sent = server.messages(core.fn.serial)[1]
    doc = core.document_by_number(3)
    assert (sent.fiscal_sign, sent.kind, sent.at) == (doc.fiscal_sign, 3, doc.at)


def test_open_kkt_spec_with_ofd_and_the_exchange_status_bit(server: OfdServer, proxy: OfdProxy) -> None:
    spec = f"emulator:kf?ofd={proxy.url}&ofd_retry=0.05&ofd_timeout=0.5&clock={CLOCK}"
    with open_kkt(spec) as h:
        serial = h.kkt.info().fn_serial
        h.kkt.open_shift("Кассир")
        h.kkt.sell([Item("Молоко", Decimal("80.00"))])
        assert until(lambda: h.kkt.ofd_queue().count == 0)
        assert h.kkt.ofd_queue().connected is True  # Pirit 0x78/7 bit 0
        assert server.documents(serial) == [2, 3]

        proxy.set_mode("block")
        h.kkt.sell([Item("Молоко", Decimal("80.00"))])
        h.kkt.sell([Item("Кефир", Decimal("70.00"))])
        assert until(lambda: h.kkt.ofd_queue().connected is False)
        queue = h.kkt.ofd_queue()
        assert (queue.count, queue.first_number) == (2, 4)
        assert server.documents(serial) == [2, 3]

        proxy.set_mode("pass")
        assert until(lambda: h.kkt.ofd_queue().count == 0)
        assert h.kkt.ofd_queue().connected is True
        assert server.documents(serial) == [2, 3, 4, 5]


def test_refuse_mode_keeps_documents_queued(server: OfdServer, proxy: OfdProxy, emulators) -> None:
    core = emulators(proxy.url).core
    assert until(lambda: core.ofd_online)
    proxy.set_mode("refuse")
    core.open_shift("Кассир")
    number = sale(core)
    assert until(lambda: not core.ofd_online)
    assert unsent(core) == [2, number]
    assert server.documents(core.fn.serial) == []
    proxy.set_mode("pass")
    assert until(lambda: not unsent(core) and core.ofd_online)
    assert server.documents(core.fn.serial) == [2, number]


def test_a_delayed_link_still_delivers(server: OfdServer, proxy: OfdProxy, emulators) -> None:
    core = emulators(proxy.url, ofd_timeout="3").core
    assert until(lambda: core.ofd_online)
    proxy.set_mode("delay", delay=0.2)
    started = time.monotonic()
    core.open_shift("Кассир")
    assert until(lambda: not unsent(core))
    assert time.monotonic() - started >= 0.35  # 0.2 s each way
    assert server.documents(core.fn.serial) == [2]
    assert proxy.forwarded_messages >= 2  # the document, then its receipt


def test_ofd_down_retries_until_it_is_up(emulators) -> None:
    port = free_port()
    emulator = emulators(f"tcp://127.0.0.1:{port}")
    core = emulator.core
    core.open_shift("Кассир")
    number = sale(core)
    assert until(lambda: emulator.ofd_link is not None and emulator.ofd_link.last_error is not None)
    assert not core.ofd_online and unsent(core) == [2, number]
    with OfdServer(port=port) as late:
        assert until(lambda: not unsent(core) and core.ofd_online)
        assert late.documents(core.fn.serial) == [2, number]


def test_proxy_with_its_upstream_down(emulators) -> None:
    port = free_port()
    with OfdProxy("tcp://127.0.0.1:0", f"tcp://127.0.0.1:{port}") as px:
        reason = px.check_upstream(timeout=0.5)
        assert reason is not None and str(port) in reason and "\n" not in reason
        emulator = emulators(px.url)
        core = emulator.core
        core.open_shift("Кассир")
        assert until(lambda: emulator.ofd_link is not None and emulator.ofd_link.last_error is not None)
        assert not core.ofd_online and unsent(core) == [2]
        with OfdServer(port=port) as late:
            assert px.check_upstream(timeout=0.5) is None
            assert until(lambda: not unsent(core) and core.ofd_online)
            assert late.documents(core.fn.serial) == [2]


def test_a_lost_receipt_means_a_resend_and_one_delivery(server: OfdServer, proxy: OfdProxy, emulators) -> None:
    """The document stays unsent until a receipt arrives; the resend reaches the OFD again (it
    records it twice or more), the register marks it delivered once and never sends it again."""
    core = emulators(proxy.url).core
    proxy.set_mode("lose_receipts")
    number = core.open_shift("Кассир").number
    assert until(lambda: server.documents(core.fn.serial).count(number) >= 2)
    assert unsent(core) == [number] and not core.ofd_online
    proxy.set_mode("pass")
    assert until(lambda: not unsent(core))
    copies = server.documents(core.fn.serial).count(number)
    assert delivered_log(core, number) == 1
    following = sale(core)
    assert until(lambda: following in server.documents(core.fn.serial))
    assert server.documents(core.fn.serial).count(number) == copies
    assert delivered_log(core, number) == 1


def test_a_receipt_arriving_while_powered_off_is_dropped(server: OfdServer, proxy: OfdProxy, emulators) -> None:
    emulator = emulators(proxy.url, ofd_timeout="3")
    core, link = emulator.core, emulator.ofd_link
    assert link is not None and until(lambda: core.ofd_online)
    proxy.set_mode("delay", delay=0.3)
    number = core.open_shift("Кассир").number
    assert until(lambda: link.sent == 1)
    core.set_power(False)  # the document is on its way; its receipt comes back 0.6 s after it left
    assert until(lambda: not core.ofd_online)  # the link finished that exchange and saw the power off
    assert server.documents(core.fn.serial) == [number]
    assert unsent(core) == [number]
    proxy.set_mode("pass")
    assert not until(lambda: len(server.documents(core.fn.serial)) > 1, 0.3)  # nothing sent while off
    core.set_power(True)
    assert until(lambda: not unsent(core))
    assert server.documents(core.fn.serial) == [number, number]
    assert delivered_log(core, number) == 1


def test_the_lab_ofd_op_unplugs_a_network_link(server: OfdServer, emulators) -> None:
    emulator = emulators(server.url)
    core = emulator.core
    assert until(lambda: core.ofd_online)
    assert emulator.control({"op": "ofd", "online": False}) == {"ok": True, "online": False, "unsent": 0}
    number = core.open_shift("Кассир").number
    assert not until(lambda: server.documents(core.fn.serial), 0.3)
    assert unsent(core) == [number] and not core.ofd_online
    emulator.control({"op": "ofd", "online": True})
    assert until(lambda: not unsent(core) and core.ofd_online)
    assert server.documents(core.fn.serial) == [number]


def test_close_detaches_the_link_and_without_the_setting_nothing_changes(server: OfdServer) -> None:
    emulator = build_emulator("kf", {**FAST, "ofd": server.url})
    assert emulator.ofd_link is not None and emulator.core.ofd_network
    emulator.close()
    assert not emulator.core.ofd_network and not emulator.core.ofd_online and not emulator.core.ofd_wakeups
    plain = build_emulator("kf", {"clock": CLOCK})  # the in-process OFD, online: delivered at once
    plain.core.start_work(plain.core.now())
    assert plain.ofd_link is None and not plain.core.ofd_network and plain.core.ofd_online
    plain.core.open_shift("Кассир")
    assert unsent(plain.core) == []
    assert plain.control({"op": "ofd", "online": False}) == {"ok": True, "online": False, "unsent": 0}
    plain.core.close_shift("Кассир")
    assert unsent(plain.core) == [3]
    assert plain.control({"op": "ofd", "online": True}) == {"ok": True, "online": True, "unsent": 0}
    plain.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ofd": "http://127.0.0.1:1"}, "tcp://"),
        ({"ofd": "tcp://10.1.2.3:21101"}, "loopback"),
        ({"ofd_retry": "1"}, "goes with ofd"),
        ({"ofd": "tcp://127.0.0.1:1", "ofd_timeout": "soon"}, "ofd_timeout"),
        ({"ofd": "tcp://127.0.0.1:1", "ofd_retry": "0"}, "ofd_retry"),
    ],
)
def test_bad_ofd_settings(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_emulator("kf", settings)


# ------------------------------------------------------------------ the proxy and the server on the wire


def exchange(sock: socket.socket, number: int, serial: str = "9999078900000001") -> None:
    sock.sendall(encode_document(serial, number, "123", 3, datetime(2021, 3, 1, 10, 0)))


def read_receipts(sock: socket.socket, reader: MessageReader, timeout: float) -> list[int]:
    """Receipt numbers read until the first receipt arrives or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(4096)
        except TimeoutError:
            break
        if not data:
            break
        numbers = [m.number for m in reader.feed(data) if isinstance(m, ReceiptMessage)]
        if numbers:
            return numbers
    return []


def test_block_applies_to_an_established_connection(server: OfdServer, proxy: OfdProxy) -> None:
    with socket.create_connection(address(proxy.url), timeout=2) as sock:
        reader = MessageReader()
        exchange(sock, 1)
        assert read_receipts(sock, reader, 2.0) == [1]
        proxy.set_mode("block")
        assert proxy.mode == "block"
        exchange(sock, 2)
        assert read_receipts(sock, reader, 0.3) == []
        proxy.set_mode("pass")
        exchange(sock, 3)
        assert read_receipts(sock, reader, 2.0) == [3]
    assert server.documents("9999078900000001") == [1, 3]


def test_a_delayed_connection_does_not_hold_up_another(server: OfdServer, proxy: OfdProxy) -> None:
    where = address(proxy.url)
    with socket.create_connection(where, timeout=2) as slow, socket.create_connection(where, timeout=2) as fast:
        proxy.set_mode("delay", delay=1.0)
        exchange(slow, 1)
        assert until(lambda: proxy.held_bytes > 0)  # the proxy holds the slow document
        proxy.set_mode("pass")
        exchange(fast, 2)
        assert read_receipts(fast, MessageReader(), 0.8) == [2]
        assert server.documents("9999078900000001") == [2]
        assert read_receipts(slow, MessageReader(), 3.0) == [1]


@pytest.mark.parametrize(
    "call",
    [
        lambda: OfdProxy("tcp://127.0.0.1:0", "tcp://192.0.2.1:21101"),
        lambda: OfdProxy("tcp://192.0.2.1:0", "tcp://127.0.0.1:21101"),
        lambda: OfdServer("192.0.2.1"),
        lambda: serve_ofd_command("tcp://192.0.2.1:0"),
    ],
)
def test_loopback_only(call) -> None:
    with pytest.raises(ValueError, match="loopback"):
        call()


def test_bad_modes(proxy: OfdProxy) -> None:
    with pytest.raises(ValueError, match="mode"):
        proxy.set_mode("cut")
    with pytest.raises(ValueError, match="delay"):
        proxy.set_mode("delay")
    assert proxy.mode == "pass"


def test_serve_ofd_command_serves_on_loopback() -> None:
    with serve_ofd_command("tcp://127.0.0.1:0") as srv:
        assert srv.url.startswith("tcp://127.0.0.1:")
        with socket.create_connection(address(srv.url), timeout=2) as sock:
            exchange(sock, 5)
            assert read_receipts(sock, MessageReader(), 2.0) == [5]
        assert srv.documents("9999078900000001") == [5] and srv.connections == 1
