"""The Dreamkas hub's HTTP server under hostile requests on 127.0.0.1: deep or huge JSON is a 400,
a body that never arrives is given up (408) without stalling anyone else, a bad Content-Length is
a 400/413, and the server keeps serving."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
from collections.abc import Iterator

import pytest

from devices.dreamkas.hub import Hub, HubServer, serve
from devices.dreamkas.hub import http as hub_http
from devices.dreamkas.hub_client import AdminClient, HubClient, HubRequestError

KF = "0497124323"
TIMEOUT = 5.0


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    monkeypatch.setattr(
        hub_http, "BODY_TIMEOUT", 0.3
    )  # read at request time; the answer is awaited with a socket timeout
    with serve(Hub()) as running:
        yield running


def _connect(server: HubServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)


def _response(sock: socket.socket) -> tuple[int, dict]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read())


def _post(server: HubServer, body: bytes, headers: dict[str, str] | None = None, path: str = "/poll/v3") -> tuple:
    with _connect(server) as sock:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"X-Kkt-Serial: {KF}"]
        given = headers if headers is not None else {"Content-Length": str(len(body))}
        head += [f"{name}: {value}" for name, value in given.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        return _response(sock)


def _still_serves(server: HubServer) -> None:
    assert HubClient(server.url, KF, timeout=TIMEOUT).poll() == []


def _is_error(answer: dict, fragment: str) -> None:
    assert answer["ok"] is False and answer["result"] == "ERROR"
    assert fragment in answer["error"] and "\n" not in answer["error"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[" * 100000 + b"]" * 100000, "nested deeper than"),
        (b'{"serial": "0497124323", "task_results": ' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper than"),
        (b'{"serial": "0497124323", "n": ' + b"7" * 5000 + b"}", "a number of 5000 characters"),
        (b'{"serial": "0497124323", "n": 1e999}', "out of range"),
        (b'{"serial": "0497124323", "n": NaN}', "NaN is not JSON"),
        (b'{"serial": "\\ud800"}', "serial"),
    ],
)
def test_hostile_json_is_a_400_with_one_line(server: HubServer, body: bytes, fragment: str) -> None:
    status, answer = _post(server, body)
    assert status == 400
    _is_error(answer, fragment)
    _still_serves(server)


@pytest.mark.parametrize(
    ("length", "status", "fragment"),
    [
        ("-5", 400, "bad Content-Length"),
        ("abc", 400, "bad Content-Length"),
        ("1e3", 400, "bad Content-Length"),
        ("\u00b2", 400, "bad Content-Length"),  # a latin-1 "digit" that int() refuses
        ("9" * 5000, 413, "body too large"),
        (str(1 << 40), 413, "body too large"),
    ],
)
def test_bad_content_length_is_refused(server: HubServer, length: str, status: int, fragment: str) -> None:
    got, answer = _post(server, b"{}", {"Content-Length": length})
    assert got == status
    _is_error(answer, fragment)
    _still_serves(server)


def test_conflicting_content_lengths_are_a_400(server: HubServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /poll/v3 HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}")
        status, answer = _response(sock)
    assert status == 400
    _is_error(answer, "conflicting Content-Length")


def test_a_body_shorter_than_its_content_length_times_out_without_stalling_others(server: HubServer) -> None:
    with _connect(server) as stalled:
        stalled.sendall(b'POST /poll/v3 HTTP/1.1\r\nContent-Length: 100\r\nX-Kkt-Serial: 0497124323\r\n\r\n{"ser')
        _still_serves(server)  # another connection is served while that body is awaited
        status, answer = _response(stalled)  # waits at most the socket timeout
        assert status == 408
        _is_error(answer, "not received within 0.3 s")
        assert stalled.recv(1) == b""  # and that connection is closed: its leftovers are never a request
    _still_serves(server)


def test_a_body_cut_short_by_the_client_is_a_400(server: HubServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /poll/v3 HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}")
        sock.shutdown(socket.SHUT_WR)
        status, answer = _response(sock)
    assert status == 400
    _is_error(answer, "body ended after 2 of 100 bytes")
    _still_serves(server)


@pytest.mark.parametrize("size", [b"-1", b"zz", b"1" * 40])
def test_bad_chunk_sizes_are_refused(server: HubServer, size: bytes) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /poll/v3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\n{}\r\n0\r\n\r\n")
        status, answer = _response(sock)
    assert status == 400
    _is_error(answer, "bad chunk size")
    _still_serves(server)


def test_a_stalled_chunked_body_times_out(server: HubServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"POST /poll/v3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{}")
        status, answer = _response(sock)
    assert status == 408
    _is_error(answer, "not received within")
    _still_serves(server)


def test_a_good_request_on_a_kept_alive_connection_still_works(server: HubServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        for _ in range(3):
            connection.request("POST", "/poll/v3", body=json.dumps({"serial": KF}).encode())
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read()) == {"result": "OK", "data": {"tasks": []}}
    finally:
        connection.close()


def test_a_body_trickled_byte_by_byte_is_given_up_after_the_whole_body_time(server: HubServer) -> None:
    """BODY_TIMEOUT bounds the whole body, not each receive: a client sending one byte every
    0.1 s (each within the socket timeout) is answered 408 once 0.3 s have gone by."""
    body = b'{"serial": "0497124323"}'
    done = threading.Event()
    with _connect(server) as sock:
        sock.sendall(f"POST /poll/v3 HTTP/1.1\r\nContent-Length: {len(body)}\r\n\r\n".encode())

        def trickle() -> None:
            for byte in body:
                if done.wait(0.1):  # a slow client's pace, not time passing in a test
                    return
                with contextlib.suppress(OSError):
                    sock.sendall(bytes([byte]))

        sender = threading.Thread(target=trickle)
        sender.start()
        try:
            status, answer = _response(sock)
        finally:
            done.set()
            sender.join()
    assert status == 408
    _is_error(answer, "not received within 0.3 s")
    _still_serves(server)


def _counting_connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    accepted: list[object] = []
    original = hub_http._HubHTTPServer.process_request

    def counting(self: hub_http._HubHTTPServer, request: object, client_address: object) -> None:
        accepted.append(request)
        original(self, request, client_address)

    monkeypatch.setattr(hub_http._HubHTTPServer, "process_request", counting)
    return accepted


def test_a_client_keeps_one_connection_for_its_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    accepted = _counting_connections(monkeypatch)
    with serve(Hub()) as server:
        kkt = HubClient(server.url, KF, timeout=TIMEOUT)
        admin = AdminClient(server.url, timeout=TIMEOUT)
        try:
            kkt.handshake()
            assert kkt.poll() == [] and kkt.poll() == []
            with pytest.raises(HubRequestError):  # an error answer does not end the connection either
                admin.device("0000000000")
            assert admin.devices()[0]["serial"] == KF
            assert len(accepted) == 2  # one per client
        finally:
            kkt.close()
            admin.close()


def test_a_connection_the_hub_dropped_is_opened_again_not_the_request_sent_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accepted = _counting_connections(monkeypatch)
    with serve(Hub()) as server:
        admin = AdminClient(server.url, timeout=TIMEOUT)
        try:
            admin.schedule(KF, ["usn_income"], "2026-12-01")
            server._httpd.close_connections()  # as an idle timeout does: the server ends the kept connection
            admin.schedule(KF, ["osn"], "2026-12-02")
            assert len(accepted) == 2
            assert [task["date"] for task in admin.tasks(KF)] == ["2026-12-01", "2026-12-02"]  # each once
        finally:
            admin.close()


def test_closing_the_hub_ends_its_kept_connections() -> None:
    server = serve(Hub())
    kkt = HubClient(server.url, KF, timeout=TIMEOUT)
    try:
        assert kkt.poll() == []
        server.close()
        with pytest.raises(OSError):  # the hub is gone, as when every answer closed its connection
            kkt.poll()
    finally:
        kkt.close()
        server.close()


@pytest.mark.parametrize(
    ("version", "headers"),
    [("HTTP/1.0", ""), ("HTTP/1.1", "Connection: close\r\n")],
)
def test_a_client_that_asks_for_it_gets_its_connection_closed(server: HubServer, version: str, headers: str) -> None:
    body = json.dumps({"serial": KF}).encode()
    with _connect(server) as sock:
        head = f"POST /poll/v3 {version}\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body)
        status, answer = _response(sock)
        assert status == 200 and answer == {"result": "OK", "data": {"tasks": []}}
        assert sock.recv(1) == b""  # closed after the answer


def test_expect_100_continue_is_answered_before_the_body_is_sent(server: HubServer) -> None:
    """curl sends a larger body only after ``100 Continue`` (or after a second of waiting)."""
    body = json.dumps({"serial": KF}).encode()
    with _connect(server) as sock:
        head = (
            f"POST /poll/v3 HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode())
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):  # within the socket timeout, before any body byte
            piece = sock.recv(1)
            assert piece, interim
            interim += piece
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        status, answer = _response(sock)
    assert status == 200 and answer == {"result": "OK", "data": {"tasks": []}}
