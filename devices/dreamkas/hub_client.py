"""HTTP clients for the Dreamkas hub emulator (:mod:`devices.dreamkas.hub`).

* :class:`HubClient` — what a fisGo register sends: handshake, poll, kkt_register_info,
  registration_report, cash_info_report (the serial goes in the body and in ``X-Kkt-Serial``).
* :class:`AdminClient` — the partner / Кабинет side used by tests and scenarios.

Standard library only (http.client); every call has a timeout and ignores proxy settings, because
the hub is always on loopback.  Each client keeps one HTTP/1.1 connection open between calls
(a new connection per request costs about as much as the request itself); it opens it again when
the hub has closed it.  A non-2xx answer raises :class:`HubRequestError`; an unreachable hub
raises ``urllib.error.URLError`` / ``OSError`` (including ``TimeoutError``).
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import sys
import threading
import urllib.error
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

#: API versions a fisGo register announces in ``/handshake/v2`` (§5.2), as we emulate them.
DEFAULT_METHODS_OUT: Mapping[str, int] = {
    "handshake": 2,
    "poll": 3,
    "registration_report": 1,
    "kkt_register_info": 1,
    "cash_info_report": 1,
}
DEFAULT_METHODS_IN: Mapping[str, int] = {"registration": 1}

#: the User-Agent urllib sent (the client before connections were kept): unchanged on the wire
USER_AGENT = f"Python-urllib/{sys.version_info.major}.{sys.version_info.minor}"


class HubRequestError(RuntimeError):
    """The hub answered with an HTTP error; ``status`` and the parsed JSON ``body`` are kept."""

    def __init__(self, status: int, message: str, body: Mapping[str, Any]) -> None:
        super().__init__(f"hub answered {status}: {message}")
        self.status = status
        self.message = message
        self.body = dict(body)


def _decode(raw: bytes) -> dict:
    try:
        body = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, ValueError):
        return {"error": raw[:200].decode("utf-8", "replace")}
    return body if isinstance(body, dict) else {"value": body}


class _Connection:
    """One kept-alive HTTP/1.1 connection to ``base_url`` (``http://`` or ``https://``, a path
    prefix kept), used by one request at a time.  Opened at the first request; opened again when
    the hub has closed it meanwhile (an answer with ``Connection: close``, an idle timeout, a hub
    restarted), which is seen before a request is sent, never by sending a request twice."""

    def __init__(self, base_url: str, timeout: float) -> None:
        split = urllib.parse.urlsplit(base_url)
        self._url = base_url
        self._factory = http.client.HTTPSConnection if split.scheme == "https" else http.client.HTTPConnection
        self._scheme = split.scheme
        self._host = split.netloc
        self._prefix = split.path.rstrip("/")
        self._timeout = timeout
        self._lock = threading.Lock()
        self._http: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> tuple[int, str, bytes]:
        """(status, reason, body) of one request; the connection is closed on any error."""
        with self._lock:
            connection = self._reusable()
            try:
                try:
                    connection.request(method, self._prefix + path, body=body, headers=dict(headers))
                except OSError as exc:  # as urllib: a hub that cannot be reached is a URLError
                    raise urllib.error.URLError(exc) from None
                response = connection.getresponse()
                return response.status, response.reason, response.read()
            except BaseException:
                self._close()
                raise

    def _reusable(self) -> http.client.HTTPConnection:
        if self._scheme not in ("http", "https"):  # as urllib: at the request, not when the client is made
            raise ValueError(f"unknown url type: {self._url!r}")
        if not self._host:
            raise urllib.error.URLError("no host given")
        connection = self._http
        if connection is not None and connection.sock is not None and _dropped(connection.sock):
            connection.close()  # the hub closed it while it was idle: the next request opens a new one
        if connection is None:
            connection = self._http = self._factory(self._host, timeout=self._timeout)
        return connection

    def _close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def close(self) -> None:
        with self._lock:
            self._close()


def _dropped(sock: socket.socket) -> bool:
    """An idle kept-alive connection with something to read: the hub closed it (or sent what no
    request asked for); either way it is not used for another request."""
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _call(
    connection: _Connection,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict:
    sent = {"User-Agent": USER_AGENT}
    if content_type:
        sent["Content-Type"] = content_type
    sent.update(headers or {})
    status, reason, raw = connection.request(method, path, body, sent)
    if 200 <= status < 300:
        return _decode(raw)
    answer = _decode(raw)
    raise HubRequestError(status, str(answer.get("error") or reason), answer)


def _json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _check_timeout(timeout: float) -> float:
    if not timeout or timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    return float(timeout)


def task_result(
    task_id: int,
    result: str = "OK",
    *,
    message: str = "",
    error_code: int = 0,
    data: Mapping[str, Any] | None = None,
    type: str = "registration",
) -> dict:
    """One ``task_results[]`` entry for the next poll."""
    return {
        "task_id": task_id,
        "type": type,
        "result": result,
        "message": message,
        "error_code": error_code,
        "data": dict(data or {}),
    }


class HubClient:
    """Device-side client: one register (by factory serial) talking to the hub."""

    def __init__(self, base_url: str, serial: str, timeout: float = 5.0) -> None:
        self.base_url = base_url
        self.serial = serial
        self.timeout = _check_timeout(timeout)
        self._connection = _Connection(base_url, self.timeout)

    def close(self) -> None:
        """Close the kept connection (a later call opens a new one)."""
        self._connection.close()

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        answer = _call(
            self._connection,
            "POST",
            path,
            body=_json({"serial": self.serial, **body}),
            content_type="application/json",
            headers={"X-Kkt-Serial": self.serial},
        )
        return answer.get("data")

    def handshake(
        self,
        methods_out: Mapping[str, int] | None = None,
        methods_in: Mapping[str, int] | None = None,
    ) -> dict:
        """``/handshake/v2``: announce the API versions and accepted task types."""
        methods = {
            "out": dict(methods_out or DEFAULT_METHODS_OUT),
            "in": dict(methods_in or DEFAULT_METHODS_IN),
        }
        return self._post("/handshake/v2", {"methods": methods}) or {}

    def poll(self, task_results: Iterable[Mapping[str, Any]] = ()) -> list[dict]:
        """``/poll/v3``: send results of executed tasks, get the tasks to execute."""
        data = self._post("/poll/v3", {"task_results": [dict(item) for item in task_results]})
        return list((data or {}).get("tasks") or [])

    def kkt_register_info(self, task_id: int | None = None) -> dict:
        """``/kkt_register_info/v1``: shop_info and kkt_registration_info (target tax_modes)."""
        body = {} if task_id is None else {"task_id": task_id}
        return self._post("/kkt_register_info/v1", body) or {}

    def registration_report(
        self,
        *,
        task_id: int | None = None,
        kind: str = "CHANGE_PARAMETERS",
        reason: int | None = None,
        number_fd: int | None = None,
        fiscal_sign: int | str | None = None,
        tax_modes: Sequence[str | int] | None = None,
        error: Mapping[str, Any] | None = None,
        report_date: str | None = None,
        cashier: Mapping[str, str] | None = None,
    ) -> dict:
        """``/registration_report/v1``: the outcome of a (re-)registration.

        Pass ``number_fd``/``fiscal_sign`` on success or ``error={"code", "message"}`` on
        failure; ``task_id`` (our extension) names the task, else the hub picks the newest
        delivered one.
        """
        data: dict[str, Any] = {"type": kind}
        registration: dict[str, Any] = {}
        if number_fd is not None:
            registration["number_fd"] = number_fd
        if fiscal_sign is not None:
            registration["fiscal_sign"] = fiscal_sign
        if tax_modes is not None:
            registration["kkt_registration_info"] = {"tax_modes": list(tax_modes)}
        for key, value in (
            ("task_id", task_id),
            ("reason", reason),
            ("date", report_date),
            ("cashier", dict(cashier) if cashier else None),
            ("registration_data", registration or None),
            ("error", dict(error) if error else None),
        ):
            if value is not None:
                data[key] = value
        return self._post("/registration_report/v1", {"uuid": str(uuid.uuid4()), "data": data}) or {}

    def cash_info_report(
        self,
        *,
        firmware: str | None = None,
        versions: Sequence[Mapping[str, Any]] | None = None,
        kkt_info: Mapping[str, Any] | None = None,
        local_time: str | None = None,
        tax_modes: Sequence[str | int] | None = None,
        shop_info: Mapping[str, Any] | None = None,
        kkt_registration_info: Mapping[str, Any] | None = None,
    ) -> dict:
        """``/cash_info_report/v1``: device state.  ``firmware`` is shorthand for one
        ``versions`` entry of type ``FISGO``."""
        if firmware is not None:
            versions = [
                {"type": "FISGO", "version": firmware, "remote_updatable": True, "project": "fisgo"},
                *(versions or ()),
            ]
        data: dict[str, Any] = {}
        for key, value in (
            ("versions", [dict(item) for item in versions] if versions is not None else None),
            ("kkt_info", dict(kkt_info) if kkt_info else None),
            ("local_time", local_time),
            ("tax_modes", list(tax_modes) if tax_modes else None),
            ("shop_info", dict(shop_info) if shop_info else None),
            ("kkt_registration_info", dict(kkt_registration_info) if kkt_registration_info else None),
        ):
            if value is not None:
                data[key] = value
        return self._post("/cash_info_report/v1", {"uuid": str(uuid.uuid4()), "data": data}) or {}


class AdminClient:
    """Partner / Кабинет side: schedule and inspect deferred re-registration tasks."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url
        self.timeout = _check_timeout(timeout)
        self._connection = _Connection(base_url, self.timeout)

    def close(self) -> None:
        """Close the kept connection (a later call opens a new one)."""
        self._connection.close()

    def _get(self, path: str) -> dict:
        return _call(self._connection, "GET", path)

    def _post(self, path: str, body: Mapping[str, Any]) -> dict:
        return _call(self._connection, "POST", path, body=_json(body), content_type="application/json")

    def schedule(
        self,
        serial: str,
        tax_systems: Sequence[str] | str,
        when: date | str,
        *,
        cashier: Mapping[str, str] | None = None,
    ) -> int:
        """Queue a re-registration to ``tax_systems`` from local date ``when``; returns task_id."""
        body: dict[str, Any] = {
            "serial": serial,
            "tax_systems": tax_systems if isinstance(tax_systems, str) else list(tax_systems),
            "date": when.isoformat() if isinstance(when, date) else when,
        }
        if cashier:
            body["cashier"] = dict(cashier)
        return int(self._post("/admin/tasks", body)["task_id"])

    def withhold(self, serial: str, flag: bool = True, task_id: int | None = None) -> list[int]:
        """Hold back (flag=True) or release delivery; returns the affected task ids."""
        body: dict[str, Any] = {"serial": serial, "withhold": flag}
        if task_id is not None:
            body["task_id"] = task_id
        return list(self._post("/admin/withhold", body)["tasks"])

    def cancel(self, serial: str) -> list[int]:
        """Withdraw the register's open tasks; returns their ids."""
        return list(self._post("/admin/cancel", {"serial": serial})["tasks"])

    def offline(self, serial: str, flag: bool = True) -> None:
        """Cut (flag=True) or restore the register's link to the hub: its requests get 503."""
        self._post("/admin/offline", {"serial": serial, "offline": flag})

    def device(self, serial: str) -> dict:
        """Cabinet view of a register: firmware, updated, task_received, reregistered, ..."""
        return self._get(f"/admin/devices/{serial}")

    def devices(self) -> list[dict]:
        return list(self._get("/admin/devices")["devices"])

    def tasks(self, serial: str | None = None) -> list[dict]:
        query = "?" + urllib.parse.urlencode({"serial": serial}) if serial else ""
        return list(self._get("/admin/tasks" + query)["tasks"])

    def import_csv(self, text: str) -> dict:
        """Bulk-schedule from CSV (serial,date,tax_systems); returns created and rejected rows."""
        return _call(
            self._connection,
            "POST",
            "/admin/import",
            body=text.encode("utf-8"),
            content_type="text/csv; charset=utf-8",
        )

    def reset(self) -> None:
        self._post("/admin/reset", {})
