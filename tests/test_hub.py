"""Dreamkas hub emulator over real HTTP on 127.0.0.1 (ephemeral port); no sleeps."""

from __future__ import annotations

import http.client
import json
import threading

import pytest

from devices.dreamkas.hub import FIRMWARE_THRESHOLDS, Hub, HubServer, serve
from devices.dreamkas.hub_client import AdminClient, HubClient, HubRequestError, task_result

KF = "0497124323"  # Касса Ф
DKF = "0496040818"  # Дримкас-Ф
START = "0493000001"  # Дримкас Старт (our prefix convention)
PIRIT = "0128000001"  # Пирит 2Ф: no threshold, never "updated"
TIMEOUT = 5.0


@pytest.fixture
def server():
    with serve(Hub()) as running:
        yield running


@pytest.fixture
def admin(server: HubServer) -> AdminClient:
    return AdminClient(server.url, timeout=TIMEOUT)


def device(server: HubServer, serial: str = KF) -> HubClient:
    return HubClient(server.url, serial, timeout=TIMEOUT)


def raw_request(server: HubServer, method: str, path: str, body: bytes | None = None, headers=None):
    """(status, parsed JSON) for a hand-made request; the connection has a timeout."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, json.loads(response.read().decode("utf-8"))
    finally:
        connection.close()


# ---- delivery gated by firmware ------------------------------------------------------------


def test_task_delivered_only_after_firmware_at_threshold(server, admin):
    kkt = device(server, KF)
    task_id = admin.schedule(KF, ["usn_income"], "2026-12-01")

    kkt.handshake()
    assert kkt.poll() == []  # no firmware reported yet
    status = admin.device(KF)
    assert status["updated"] is False and status["task_received"] is False
    assert status["poll_count"] == 1

    kkt.cash_info_report(firmware="2.26.0", local_time="2026-11-30T23:10:00")
    tasks = kkt.poll()
    assert [task["task_id"] for task in tasks] == [task_id]
    task = tasks[0]
    assert task["type"] == "registration" and task["result"] == "OK"
    assert task["data"]["type"] == "CHANGE_PARAMETERS"
    assert set(task["data"]["cashier"]) == {"name", "inn"}
    assert task["data"]["scheduled_date"] == "2026-12-01"
    assert task["data"]["tax_modes"] == ["SIMPLE"]
    assert task["data"]["tax_systems"] == ["usn_income"]
    assert task["data"]["tax_mask"] == 2

    status = admin.device(KF)
    assert status["firmware"] == "2.26.0"
    assert status["updated"] is True
    assert status["task_received"] is True
    assert status["reregistered"] is False
    assert status["local_date"] == "2026-11-30"
    assert status["tasks"][0]["state"] == "delivered"
    assert status["tasks"][0]["due"] is False


@pytest.mark.parametrize(
    ("serial", "below", "at_or_above"),
    [(KF, "2.25.9", "2.26.1"), (DKF, "1.11.99", "1.12.0"), (START, "10.50.0", "10.50.1-rc2")],
)
def test_threshold_per_model(server, admin, serial, below, at_or_above):
    kkt = device(server, serial)
    admin.schedule(serial, ["osn"], "2026-12-01")
    kkt.cash_info_report(firmware=below)
    assert kkt.poll() == []
    assert admin.device(serial)["updated"] is False
    kkt.cash_info_report(firmware=at_or_above)
    assert len(kkt.poll()) == 1
    assert admin.device(serial)["updated"] is True


def test_below_threshold_never_delivered(server, admin):
    kkt = device(server, DKF)
    admin.schedule(DKF, ["usn_income_expense"], "2026-12-01")
    kkt.cash_info_report(versions=[{"type": "FISGO", "version": "1.11.3", "remote_updatable": True}])
    for _ in range(3):
        assert kkt.poll() == []
    status = admin.device(DKF)
    assert status["firmware"] == "1.11.3"
    assert status["threshold"] == FIRMWARE_THRESHOLDS["dkf"]
    assert status["updated"] is False
    assert status["task_received"] is False
    assert status["poll_count"] == 3
    assert admin.tasks(DKF)[0]["state"] == "new"


def test_unknown_model_is_never_updated(server, admin):
    kkt = device(server, PIRIT)
    admin.schedule(PIRIT, ["osn"], "2026-12-01")
    kkt.cash_info_report(firmware="99.0.0")
    assert kkt.poll() == []
    assert admin.device(PIRIT)["updated"] is False


# ---- withhold ------------------------------------------------------------------------------


def test_withhold_blocks_delivery_until_released(server, admin):
    kkt = device(server, KF)
    task_id = admin.schedule(KF, ["patent", "usn_income"], "2026-12-01")
    kkt.cash_info_report(firmware="2.30.0")
    assert admin.withhold(KF, True) == [task_id]

    assert kkt.poll() == []
    status = admin.device(KF)
    assert status["updated"] is True
    assert status["task_received"] is False
    assert status["tasks"][0]["withheld"] is True

    later = admin.schedule(KF, ["osn"], "2027-01-01")  # inherits the device-level hold
    assert kkt.poll() == []
    admin.withhold(KF, False)
    assert [task["task_id"] for task in kkt.poll()] == [task_id, later]
    assert admin.device(KF)["task_received"] is True


def test_cancel_withdraws_open_tasks_and_records_the_poll_count(server, admin):
    kkt = device(server, KF)
    task_id = admin.schedule(KF, ["osn"], "2026-12-01")
    kkt.cash_info_report(firmware="2.30.0")
    assert [task["task_id"] for task in kkt.poll()] == [task_id]  # the register now holds it
    polls = admin.device(KF)["poll_count"]
    assert admin.cancel(KF) == [task_id]
    (task,) = admin.tasks(KF)
    assert (task["state"], task["cancelled_after_poll"]) == ("cancelled", polls)
    assert task["delivered_at"] is not None
    assert kkt.poll() == []  # no longer delivered: the register drops it
    assert admin.device(KF)["poll_count"] > task["cancelled_after_poll"]
    assert admin.cancel(KF) == []


# ---- reports -------------------------------------------------------------------------------


def test_success_report_marks_reregistered_and_stops_delivery(server, admin):
    kkt = device(server, KF)
    task_id = admin.schedule(KF, ["usn_income", "patent"], "2026-12-01")
    kkt.cash_info_report(firmware="2.26.0", tax_modes=["DEFAULT"])
    (_task,) = kkt.poll()

    info = kkt.kkt_register_info()
    assert info["task_id"] == task_id
    assert info["kkt_registration_info"]["tax_modes"] == ["SIMPLE", "PATENT"]
    assert set(info["shop_info"]) >= {"legal_name", "inn", "address", "real_address", "shop_name"}

    answer = kkt.registration_report(
        reason=128,
        number_fd=42,
        fiscal_sign=3141592653,
        tax_modes=info["kkt_registration_info"]["tax_modes"],
    )
    assert answer == {"task_id": task_id, "state": "done"}
    assert kkt.poll() == []
    assert kkt.poll([task_result(task_id)]) == []

    status = admin.device(KF)
    assert status["reregistered"] is True
    assert status["task_received"] is True
    assert status["last_error"] is None
    assert status["tax_systems"] == ["usn_income", "patent"]
    (view,) = status["tasks"]
    assert view["state"] == "done" and view["done_at"]
    assert view["attempts"] == 1
    assert view["tax_modes_match"] is True
    assert view["report"]["number_fd"] == 42 and view["report"]["fiscal_sign"] == 3141592653
    assert view["report"]["reason"] == 128


def test_error_report_sets_last_error_and_task_is_redelivered(server, admin):
    kkt = device(server, DKF)
    task_id = admin.schedule(DKF, ["usn_income"], "2026-12-01")
    kkt.cash_info_report(firmware="1.12.0")
    kkt.poll()

    answer = kkt.registration_report(task_id=task_id, error={"code": 15, "message": "shift is open"})
    assert answer == {"task_id": task_id, "state": "delivered"}
    status = admin.device(DKF)
    assert status["last_error"] == {"code": 15, "message": "shift is open"}
    assert status["reregistered"] is False
    assert status["tasks"][0]["attempts"] == 1

    assert [task["task_id"] for task in kkt.poll()] == [task_id]  # retried

    kkt.registration_report(task_id=task_id, number_fd=7, fiscal_sign=1)
    status = admin.device(DKF)
    assert status["reregistered"] is True
    assert status["last_error"] is None
    assert status["tasks"][0]["attempts"] == 2
    assert kkt.poll() == []


def test_failed_task_result_in_poll_is_recorded_and_retried(server, admin):
    kkt = device(server, KF)
    task_id = admin.schedule(KF, ["osn"], "2026-12-01")
    kkt.cash_info_report(firmware="2.26.0")
    kkt.poll()
    tasks = kkt.poll([task_result(task_id, "ERROR", message="no paper", error_code=8)])
    assert [task["task_id"] for task in tasks] == [task_id]
    status = admin.device(KF)
    assert status["last_error"] == {"code": 8, "message": "no paper"}
    assert status["tasks"][0]["results"][0]["message"] == "no paper"

    kkt.poll([task_result(999, "OK")])  # unknown task: kept aside, not an error
    assert admin.device(KF)["unmatched_results"][0]["task_id"] == 999


def test_max_attempts_marks_task_failed():
    with serve(Hub(max_attempts=2)) as server:
        admin = AdminClient(server.url, timeout=TIMEOUT)
        kkt = device(server, KF)
        task_id = admin.schedule(KF, ["osn"], "2026-12-01")
        kkt.cash_info_report(firmware="2.26.0")
        kkt.poll()
        kkt.registration_report(error={"code": 1, "message": "first"})
        assert kkt.poll() != []
        answer = kkt.registration_report(task_id=task_id, error={"code": 2, "message": "second"})
        assert answer["state"] == "failed"
        assert kkt.poll() == []
        assert admin.device(KF)["reregistered"] is False


def test_report_for_undelivered_task_is_rejected(server, admin):
    kkt = device(server, KF)
    task_id = admin.schedule(KF, ["osn"], "2026-12-01")
    with pytest.raises(HubRequestError) as caught:
        kkt.registration_report(task_id=task_id, number_fd=1, fiscal_sign=1)
    assert caught.value.status == 400
    assert admin.device(KF)["reregistered"] is False


def test_serial_in_header_only(server, admin):
    task_id = admin.schedule(KF, ["osn"], "2026-12-01")
    device(server, KF).cash_info_report(firmware="2.26.0")
    status, answer = raw_request(
        server, "POST", "/poll/v3", b"{}", {"X-Kkt-Serial": KF, "Content-Type": "application/json"}
    )
    assert status == 200
    assert answer["result"] == "OK"
    assert [task["task_id"] for task in answer["data"]["tasks"]] == [task_id]


def test_poll_without_serial_is_400(server):
    status, answer = raw_request(server, "POST", "/poll/v3", b"{}")
    assert status == 400 and answer["ok"] is False and "serial" in answer["error"]


# ---- admin validation and CSV import -------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"serial": "12345", "tax_systems": ["osn"], "date": "2026-12-01"}, "bad serial"),
        ({"serial": KF, "tax_systems": ["vat"], "date": "2026-12-01"}, "unknown tax system"),
        ({"serial": KF, "tax_systems": [], "date": "2026-12-01"}, "no tax systems"),
        ({"serial": KF, "tax_systems": ["osn"], "date": "2026-02-30"}, "bad date"),
        ({"serial": KF, "tax_systems": ["envd"], "date": "2021-01-01"}, "envd"),
        ({"serial": KF, "tax_systems": ["osn"]}, "'date' is required"),
    ],
)
def test_schedule_rejects_bad_input(server, body, fragment):
    status, answer = raw_request(server, "POST", "/admin/tasks", json.dumps(body).encode())
    assert status == 400
    assert answer["ok"] is False
    assert fragment in answer["error"] and "\n" not in answer["error"]


def test_envd_before_2021_is_accepted(admin):
    assert admin.schedule(KF, ["envd", "osn"], "31.12.2020") == 1
    (task,) = admin.tasks()
    assert task["date"] == "2020-12-31" and task["tax_mask"] == 9


def test_csv_import_reports_each_row(admin):
    csv_text = "\n".join(
        [
            "serial,date,tax_systems",
            f"{KF},2026-12-01,usn_income",  # row 2
            f"{DKF},01.12.2026,УСН доход + патент",  # row 3
            f'{START},2026-12-01,"osn;patent"',  # row 4
            "12345,2026-12-01,osn",  # row 5: bad serial
            f"{KF},2026-13-01,osn",  # row 6: bad date
            f"{KF},2026-12-01,vat",  # row 7: unknown regime
            "",  # row 8: blank, skipped
            f"{DKF},2021-01-01,envd",  # row 9: ЕНВД abolished
            f"{DKF},2026-12-01",  # row 10: missing column
        ]
    )
    answer = admin.import_csv(csv_text)
    assert [row["row"] for row in answer["created"]] == [2, 3, 4]
    reasons = {row["row"]: row["reason"] for row in answer["rejected"]}
    assert set(reasons) == {5, 6, 7, 9, 10}
    assert "bad serial" in reasons[5]
    assert "bad date" in reasons[6]
    assert "unknown tax system" in reasons[7]
    assert "envd" in reasons[9]
    assert "columns" in reasons[10]

    tasks = {task["task_id"]: task for task in admin.tasks()}
    created = {row["row"]: tasks[row["task_id"]] for row in answer["created"]}
    assert created[3]["tax_systems"] == ["usn_income", "patent"]
    assert created[3]["date"] == "2026-12-01"
    assert created[4]["tax_systems"] == ["osn", "patent"]


def test_csv_import_without_header_and_empty_body(server, admin):
    answer = admin.import_csv(f"{KF},2026-12-01,ОСН\n")
    assert answer["created"] == [{"row": 1, "task_id": 1}] and answer["rejected"] == []
    status, body = raw_request(server, "POST", "/admin/import", b"", {"Content-Type": "text/csv"})
    assert status == 400 and body["ok"] is False


def test_reset_forgets_everything(server, admin):
    admin.schedule(KF, ["osn"], "2026-12-01")
    admin.reset()
    assert admin.tasks() == []
    with pytest.raises(HubRequestError) as caught:
        admin.device(KF)
    assert caught.value.status == 404
    assert admin.schedule(KF, ["osn"], "2026-12-01") == 1


def test_device_known_from_scheduling_before_first_poll(admin):
    admin.schedule(START, ["usn_income"], "2026-12-01")
    status = admin.device(START)
    assert status["model"] == "start"
    assert status["poll_count"] == 0
    assert (status["firmware"], status["updated"], status["task_received"]) == (None, False, False)
    assert status["reregistered"] is False and status["last_error"] is None


# ---- robustness ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/poll/v3", "/cash_info_report/v1", "/admin/tasks"])
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_bad_json_is_400_and_server_survives(server, path, body):
    status, answer = raw_request(server, "POST", path, body, {"X-Kkt-Serial": KF})
    assert status == 400
    assert answer["ok"] is False and answer["error"]
    assert device(server).handshake() == {}


def test_unknown_path_and_wrong_method(server):
    status, answer = raw_request(server, "POST", "/nope/v1", b"{}")
    assert status == 404 and answer["ok"] is False
    status, answer = raw_request(server, "GET", "/poll/v3")
    assert status == 405 and answer["ok"] is False
    status, answer = raw_request(server, "DELETE", "/admin/tasks")
    assert status == 405


def test_bad_device_report_fields_are_400(server):
    kkt = device(server)
    with pytest.raises(HubRequestError) as caught:
        kkt.cash_info_report(versions=[{"type": "FISGO"}])
    assert caught.value.status == 400
    with pytest.raises(HubRequestError):
        kkt.cash_info_report(tax_modes=["NOT_A_MODE"])
    with pytest.raises(HubRequestError):
        HubClient(server.url, "0497", timeout=TIMEOUT).poll()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::1", ""])
def test_serve_refuses_non_loopback(host):
    with pytest.raises(ValueError):
        serve(Hub(), host=host)


def test_server_url_and_close(server):
    assert server.url == f"http://127.0.0.1:{server.port}"
    server.close()
    server.close()  # idempotent


def test_concurrent_scheduling_gives_unique_increasing_ids(server, admin):
    ids: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        client = AdminClient(server.url, timeout=TIMEOUT)
        for _ in range(5):
            task_id = client.schedule(KF, ["osn"], "2026-12-01")
            with lock:
                ids.append(task_id)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT * 5)
    assert sorted(ids) == list(range(1, 21))
    assert [task["task_id"] for task in admin.tasks()] == list(range(1, 21))


def test_internal_error_is_a_json_500(server, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(server.hub, "poll", broken)
    status, answer = raw_request(server, "POST", "/poll/v3", b"{}", {"X-Kkt-Serial": KF})
    assert status == 500
    assert answer["ok"] is False and "boom" in answer["error"]


def test_chunked_body_is_accepted_and_oversized_body_refused(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        body = json.dumps({"serial": KF}).encode()
        connection.request("POST", "/poll/v3", body=iter([body[:5], body[5:]]), encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 200
        assert json.loads(response.read()) == {"result": "OK", "data": {"tasks": []}}
    finally:
        connection.close()
    status, answer = raw_request(
        server, "POST", "/poll/v3", b"", {"Content-Length": str(1 << 30), "X-Kkt-Serial": KF}
    )  # only the headers are sent, so the refusal cannot race an unread body
    assert status == 413 and answer["ok"] is False
