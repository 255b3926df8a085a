"""HTTP face of the Dreamkas hub: routing, the request handler, :class:`HubServer` and :func:`serve`.

:func:`route` maps one request to the :class:`~.state.Hub` and returns (status, JSON answer);
errors are answered as JSON ``{"ok": false, "result": "ERROR", "error": ...}``.  The server runs
in a background thread on loopback only (the rule is :func:`harness.net.check_loopback`); it is
an IPv4 server, so ``localhost`` binds 127.0.0.1.  Another address (``0.0.0.0``, a LAN address:
a lab register pointed at the harness hub) only with ``allow_lan``, when the user asked for it
explicitly; nothing authenticates an admin client then.

Untrusted input is bounded: JSON bodies per :mod:`harness.bounded_json` (nesting depth,
number sizes: 400); Content-Length must be plain digits (400), one value (400), at most
:data:`MAX_BODY_BYTES` (413); chunk sizes likewise.  A body that stops arriving is given up
after :data:`BODY_TIMEOUT` seconds (408); the connection of any request whose body was not
read completely is closed after the answer, so its leftover bytes are never taken for a
request.  HTTP/1.1: a connection is kept for the client's next request (unless it asks for
``Connection: close`` or speaks HTTP/1.0) and closed after :data:`REQUEST_TIMEOUT` idle seconds,
or when the server is closed.  Other connections are served meanwhile (one thread each).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import selectors
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from harness.bounded_json import BadJson, dumps_line, loads, one_line
from harness.net import check_loopback

from .parsing import HubError, check_serial
from .state import Hub

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20
BODY_TIMEOUT = 5.0  # seconds a whole request body may take to arrive (read at request time)
MAX_TRAILERS = 64  # trailer lines after a chunked body
REQUEST_TIMEOUT = 60.0  # an idle or stalled connection (request line, headers) is closed
_DIGITS = re.compile(r"[0-9]{1,19}")
_HEX_SIZE = re.compile(r"[0-9A-Fa-f]{1,16}")

_DEVICE_ENDPOINTS = {
    "/handshake/v2": "handshake",
    "/poll/v3": "poll",
    "/kkt_register_info/v1": "kkt_register_info",
    "/registration_report/v1": "registration_report",
    "/cash_info_report/v1": "cash_info_report",
}
_ADMIN_PATHS = {
    "/admin/tasks": ("GET", "POST"),
    "/admin/withhold": ("POST",),
    "/admin/offline": ("POST",),
    "/admin/cancel": ("POST",),
    "/admin/devices": ("GET",),
    "/admin/import": ("POST",),
    "/admin/reset": ("POST",),
}


def _json_object(raw: bytes) -> dict:
    if not raw.strip():
        return {}
    try:
        body = loads(raw)
    except BadJson as exc:
        raise HubError(f"bad JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HubError("JSON body must be an object")
    return body


def _device_payload(body: dict) -> dict:
    """Top-level fields merged with the ``data`` object the register wraps reports in."""
    data = body.get("data")
    if data is None:
        return body
    if not isinstance(data, dict):
        raise HubError("'data' must be an object")
    return {**{key: value for key, value in body.items() if key != "data"}, **data}


class Headers(Protocol):
    """HTTP request headers: a mapping or ``http.server``'s message object."""

    def get(self, name: str, /) -> Any: ...


def _device_serial(headers: Headers, payload: dict) -> str:
    kkt_info = payload.get("kkt_info")
    candidates = [
        payload.get("serial"),
        headers.get("X-Kkt-Serial"),
        kkt_info.get("kkt_factory_number") if isinstance(kkt_info, dict) else None,
    ]
    serials = {check_serial(value) for value in candidates if value not in (None, "")}
    if not serials:
        raise HubError("device serial missing: send 'serial' in the body or an X-Kkt-Serial header")
    if len(serials) > 1:
        raise HubError(f"conflicting serial numbers {sorted(serials)}")
    return serials.pop()


def route(hub: Hub, method: str, target: str, headers: Headers, raw: bytes) -> tuple[int, dict]:
    """Map one HTTP request to the hub; returns (status, JSON answer).  Raises HubError."""
    split = urlsplit(target)
    path = split.path.rstrip("/") or "/"
    if path in _DEVICE_ENDPOINTS:
        if method != "POST":
            raise HubError(f"{method} not allowed on {path}", 405)
        payload = _device_payload(_json_object(raw))
        serial = _device_serial(headers, payload)
        if hub.is_offline(serial):  # the harness cut this register's link to the Кабинет
            raise HubError(f"register {serial} is cut off from the hub (admin offline)", 503)
        name = _DEVICE_ENDPOINTS[path]
        if name == "poll":
            data: Any = {"tasks": hub.poll(serial, payload.get("task_results"))}
        elif name == "kkt_register_info":
            data = hub.kkt_register_info(serial, payload.get("task_id"))
        else:
            data = getattr(hub, name)(serial, payload)
        return 200, {"result": "OK", "data": data}

    device_path = re.fullmatch(r"/admin/devices/([^/]+)", path)
    allowed = ("GET",) if device_path else _ADMIN_PATHS.get(path)
    if allowed is None:
        raise HubError(f"unknown path {path}", 404)
    if method not in allowed:
        raise HubError(f"{method} not allowed on {path}", 405)
    if device_path:
        return 200, {"ok": True, **hub.device(device_path.group(1))}
    if path == "/admin/devices":
        return 200, {"ok": True, "devices": hub.devices()}
    if path == "/admin/tasks" and method == "GET":
        serials = parse_qs(split.query).get("serial")
        return 200, {"ok": True, "tasks": hub.tasks(serials[0] if serials else None)}
    if path == "/admin/import":
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise HubError("CSV body must be UTF-8") from None
        return 200, {"ok": True, **hub.import_csv(text)}
    if path == "/admin/reset":
        hub.reset()
        return 200, {"ok": True}
    body = _json_object(raw)
    if path == "/admin/cancel":
        return 200, {"ok": True, "tasks": hub.cancel(body.get("serial"))}
    if path == "/admin/offline":
        if not isinstance(body.get("offline"), bool):
            raise HubError("'offline' (true or false) is required")
        hub.set_offline(body.get("serial"), body["offline"])
        return 200, {"ok": True, "offline": body["offline"]}
    if path == "/admin/withhold":
        if "withhold" not in body:
            raise HubError("'withhold' (true or false) is required")
        tasks = hub.withhold(body.get("serial"), body["withhold"], body.get("task_id"))
        return 200, {"ok": True, "tasks": tasks}
    for key in ("serial", "tax_systems", "date"):
        if key not in body:
            raise HubError(f"'{key}' is required")
    task_id = hub.schedule(body["serial"], body["tax_systems"], body["date"], cashier=body.get("cashier"))
    return 200, {"ok": True, "task_id": task_id}


def _error_answer(message: str) -> dict:
    return {"ok": False, "result": "ERROR", "error": one_line(message) if message else "error"}


class _BodyError(HubError):
    """The body could not be read (bad framing, timeout): answer, then close the connection."""


class _Handler(BaseHTTPRequestHandler):
    server: _HubHTTPServer
    server_version = "kkt-hil-hub/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive: every answer has its Content-Length
    timeout = REQUEST_TIMEOUT
    wbufsize = 1 << 16  # an answer leaves in one write, head and body (http.server flushes after each request)

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: the interim answer goes out at once, not with the final one."""
        go_on = super().handle_expect_100()
        self.wfile.flush()
        return go_on

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        """The request body; :class:`_BodyError` (400/408/413) when it cannot be had."""
        self._body_deadline = time.monotonic() + BODY_TIMEOUT
        self.connection.settimeout(BODY_TIMEOUT)
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            return self._read_sized()
        except TimeoutError:
            raise _BodyError(f"request body not received within {BODY_TIMEOUT:g} s", 408) from None
        finally:
            self.connection.settimeout(REQUEST_TIMEOUT)

    def _left(self) -> None:
        """The socket may wait only what is left of the body's time (a body trickled byte by
        byte must not take BODY_TIMEOUT per byte)."""
        left = self._body_deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.connection.settimeout(left)

    def _read_exactly(self, size: int) -> bytes:
        """``size`` bytes (fewer if the peer closed), within the body's time."""
        raw = bytearray()
        while len(raw) < size:
            self._left()
            piece = self.rfile.read1(size - len(raw))
            if not piece:
                break
            raw += piece
        return bytes(raw)

    def _read_sized(self) -> bytes:
        values = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        if not values:
            return b""
        if len(values) > 1:
            raise _BodyError(f"conflicting Content-Length headers {sorted(values)}")
        length_text = values.pop()
        if not _DIGITS.fullmatch(length_text):
            if length_text.isascii() and length_text.isdigit():  # only too many digits
                raise _BodyError(f"body too large (Content-Length of {len(length_text)} digits)", 413)
            raise _BodyError(f"bad Content-Length {one_line(repr(length_text), 60)}")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            raise _BodyError(f"body too large ({length} bytes, at most {MAX_BODY_BYTES})", 413)
        raw = self._read_exactly(length)
        if len(raw) < length:
            raise _BodyError(f"body ended after {len(raw)} of {length} bytes")
        return raw

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            self._left()
            size_text = self.rfile.readline(64).split(b";")[0].strip()
            if not _HEX_SIZE.fullmatch(size_text.decode("latin-1")):
                raise _BodyError(f"bad chunk size {one_line(repr(size_text), 60)}")
            size = int(size_text, 16)
            if len(body) + size > MAX_BODY_BYTES:
                raise _BodyError("body too large", 413)
            if size == 0:
                for _ in range(MAX_TRAILERS):  # trailers up to the empty line
                    self._left()
                    if not self.rfile.readline(1024).strip():
                        return bytes(body)
                raise _BodyError(f"more than {MAX_TRAILERS} trailer lines")
            chunk = self._read_exactly(size)
            if len(chunk) < size:
                raise _BodyError("chunked body ended early")
            body += chunk
            self.rfile.readline(8)  # CRLF after the chunk

    def _dispatch(self, method: str) -> None:
        try:
            raw = self._read_body()
            status, answer = route(self.server.hub, method, self.path, self.headers, raw)
        except _BodyError as exc:
            self.close_connection = True  # what is left of the body must not be read as a request
            status, answer = exc.status, _error_answer(str(exc))
        except HubError as exc:
            status, answer = exc.status, _error_answer(str(exc))
        except Exception as exc:  # a bug must still produce an answer, never a dropped connection
            log.exception("hub: %s %s failed", method, self.path)
            status, answer = 500, _error_answer(f"internal error: {type(exc).__name__}: {exc}")
        payload = dumps_line(answer)[:-1]
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], hub: Hub) -> None:
        self.hub = hub
        self._open: set[socket.socket] = set()  # connections being served (kept alive between requests)
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # an answer that leaves in several writes (100 Continue first, or larger than the write
        # buffer): on a kept connection Nagle's algorithm would hold its last piece back until the
        # client's delayed ACK of the one before (40 ms)
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every connection still open (a kept-alive one waits for its next request): its
        thread ends, and its client sees the hub gone, as it did when every answer closed."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _bind_address(host: str, *, allow_lan: bool = False) -> str:
    """The IPv4 address to bind for a loopback ``host`` (any IPv4 address or host name with
    ``allow_lan``); ValueError for anything else."""
    if allow_lan:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return host
        raise ValueError(f"the hub listens on IPv4 only, not {host!r}")
    check_loopback(host)
    address = "127.0.0.1" if host == "localhost" else host
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        raise ValueError(f"the hub listens on IPv4 loopback only (127.0.0.1), not {host!r}") from None
    return address


class HubServer:
    """A running hub HTTP server (background thread); use as a context manager or close()."""

    def __init__(self, hub: Hub, host: str = "127.0.0.1", port: int = 0, *, allow_lan: bool = False) -> None:
        self.hub = hub
        self._httpd = _HubHTTPServer((_bind_address(host, allow_lan=allow_lan), port), hub)
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=f"dreamkas-hub:{self.port}", daemon=True)
        self._closed = False
        self._thread.start()

    def _serve(self) -> None:
        """socketserver's ``serve_forever``, woken by :meth:`close` at once (its own loop only
        notices a shutdown at its next poll, 50 ms on average here: a test's teardown)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self._httpd, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready:
                    return
                # what serve_forever does with a ready socket: accept, then a thread per connection
                self._httpd._handle_request_noblock()  # type: ignore[attr-defined]  # socketserver, not in typeshed

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        host = self._httpd.socket.getsockname()[0]
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._httpd.server_close()
        self._httpd.close_connections()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)

    def __enter__(self) -> HubServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def serve(hub: Hub, host: str = "127.0.0.1", port: int = 0, *, allow_lan: bool = False) -> HubServer:
    """Serve ``hub`` over HTTP on a loopback address; non-loopback hosts raise ValueError unless
    ``allow_lan``."""
    return HubServer(hub, host, port, allow_lan=allow_lan)
