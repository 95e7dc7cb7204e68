"""Audience files through the API into a task, on the real parts (one worker for the module).

CSV (encoding, delimiter, Russian headers), XLSX and JSON (array and JSON
lines) are uploaded to ``POST /api/v1/import/file``; the targets must land in
PostgreSQL normalized and de-duplicated, and the import's report must say
exactly what happened, row by row. ``POST /api/v1/import/validate`` must say
the same without storing anything.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import openpyxl
import pytest

from tests.support.import_service import (
    ImportService,
    import_service,
    upload,
    wait_import,
)
from tests.support.stack import TestStack as RunningStack
from tests.support.worker import query, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImportService]:
    with import_service(stack, tmp_path_factory.mktemp("import-files")) as running:
        yield running


RUSSIAN_CSV = (
    "Ник;Телефон;Имя;Город\n"
    "@Alice_99;+7 916 123-45-67;Алиса;Москва\n"
    "t.me/bob_22;89161234568;Борис;\n"
    "bad name;;Ошибка;\n"
    "\n"
    "   ;  ;  ;  \n"
    "ALICE_99;;Алиса снова;\n"            # the same person again
    ";8 916 123 45 69;Без ника;Тверь\n"
)


def test_a_cp1251_csv_with_russian_headers_lands_normalized(service: ImportService) -> None:
    http = service.client("files-ann")
    task_id = service.new_task(http)
    response = upload(http, "/api/v1/import/file", RUSSIAN_CSV.encode("cp1251"), "аудитория.csv",
                      content_type="text/csv", task_id=task_id)
    assert response.status_code == 202, response.text
    body = response.json()
    report = body["report"]
    assert (report["accepted"], report["rejected"], report["duplicate"]) == (3, 1, 1)
    assert [(p["row"], p["column"]) for p in report["problems"]] == [(4, "Ник")]
    assert "invalid username 'bad name'" in report["problems"][0]["reason"]
    assert report["mapping"]["fields"] == {"username": "Ник", "phone": "Телефон", "first_name": "Имя"}

    final = wait_import(http, body["import_id"])
    assert final["status"] == "completed", final
    assert final["result"] == {"accepted": 3, "duplicate": 1, "invalid": 1, "suppressed": 0}
    assert final["progress"]["rows_read"] == 5 and final["progress"]["percent"] == 100.0
    rows = {(r["username"], r["phone"], r["first_name"]): r["extra"] for r in service.targets(task_id)}
    assert rows == {
        ("alice_99", "+79161234567", "Алиса"): {"Город": "Москва"},
        ("bob_22", "+79161234568", "Борис"): None,
        (None, "+79161234569", "Без ника"): {"Город": "Тверь"},
    }
    listed = http.get(f"/api/v1/tasks/{task_id}/imports").json()["items"]
    assert [(i["import_id"], i["source"], i["filename"]) for i in listed] == [
        (body["import_id"], "csv", "аудитория.csv")]


def test_importing_the_same_file_again_adds_nobody(service: ImportService) -> None:
    http = service.client("files-ann")
    task_id = service.new_task(http)
    data = "username\n" + "".join(f"again_{i:03d}\n" for i in range(50))
    first = upload(http, "/api/v1/import/file", data.encode(), "a.csv", task_id=task_id).json()
    assert wait_import(http, first["import_id"])["result"]["accepted"] == 50
    second = upload(http, "/api/v1/import/file", data.encode(), "a.csv", task_id=task_id).json()
    final = wait_import(http, second["import_id"])
    assert final["result"] == {"accepted": 0, "duplicate": 50, "invalid": 0, "suppressed": 0}
    assert len(service.targets(task_id)) == 50


def _xlsx(rows: list[list[Any]], merge: str | None = None) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    if merge:
        sheet.merge_cells(merge)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_an_xlsx_with_an_explicit_mapping_overriding_detection(service: ImportService) -> None:
    http = service.client("files-ann")
    task_id = service.new_task(http)
    data = _xlsx([
        ["Контакт", "Телефон", "Комментарий"],
        ["carol_33", 89161234570, "first"],
        ["dave_44", 79161234571.0, "second"],
    ])
    # "Телефон" would be detected as the phone; the mapping says to ignore it and read
    # the username from a column nobody would guess.
    mapping = {"username": "Контакт", "phone": None}
    response = upload(http, "/api/v1/import/file", data, "list.xlsx", task_id=task_id, mapping=mapping)
    assert response.status_code == 202, response.text
    assert response.json()["source"] == "xlsx"
    wait_import(http, response.json()["import_id"])
    rows = [(r["username"], r["phone"], r["extra"]) for r in service.targets(task_id)]
    assert sorted(rows) == [
        ("carol_33", None, {"Комментарий": "first", "Телефон": "89161234570"}),
        ("dave_44", None, {"Комментарий": "second", "Телефон": "79161234571"}),
    ]


def test_a_mapping_naming_a_missing_column_is_refused_before_anything_lands(service: ImportService) -> None:
    http = service.client("files-ann")
    task_id = service.new_task(http)
    response = upload(http, "/api/v1/import/file", b"username\nalice_99\n", "a.csv", task_id=task_id,
                      mapping={"phone": "Mobile"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_mapping" and "Mobile" in error["message"]
    assert error["details"]["columns"] == ["username"]
    assert service.targets(task_id) == [] and service.batches(task_id) == []


@pytest.mark.parametrize("layout", ["array", "lines"])
def test_json_arrays_and_json_lines(service: ImportService, layout: str) -> None:
    http = service.client("files-ann")
    task_id = service.new_task(http)
    items = [{"user_id": 1000 + i, "username": f"json_{i:02d}", "tags": ["a", "b"]} for i in range(20)]
    items.append({"user_id": "not a number"})
    if layout == "array":
        data = json.dumps(items).encode()
    else:
        data = "\n".join(json.dumps(i) for i in items).encode()
    response = upload(http, "/api/v1/import/file", data, f"a.{'json' if layout == 'array' else 'jsonl'}",
                      task_id=task_id)
    assert response.status_code == 202, response.text
    report = response.json()["report"]
    assert (report["accepted"], report["rejected"]) == (20, 1)
    assert report["problems"][0]["row"] == 21 and report["problems"][0]["field"] == "user_id"
    wait_import(http, response.json()["import_id"])
    targets = service.targets(task_id)
    assert sorted(r["user_id"] for r in targets) == list(range(1000, 1020))
    assert all(r["target_key"] == f"id:{r['user_id']}" and r["extra"] == {"tags": '["a", "b"]'} for r in targets)


def test_validate_reports_counts_and_the_first_problems_and_stores_nothing(service: ImportService) -> None:
    http = service.client("files-ann")
    task_id = service.new_task(http)
    lines = ["username,phone"] + [f"user_{i:03d}," for i in range(30)] + ["bad one,", ",123", "user_000,"] * 10
    response = upload(http, "/api/v1/import/validate", "\n".join(lines).encode(), "a.csv",
                      task_id=task_id, max_problems=5)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["valid"] is False
    report = body["report"]
    assert (report["rows"], report["accepted"], report["rejected"], report["duplicate"]) == (60, 30, 20, 10)
    assert [p["row"] for p in report["problems"]] == [32, 33, 35, 36, 38]
    assert [p["column"] for p in report["problems"]] == ["username", "phone", "username", "phone", "username"]
    assert service.targets(task_id) == [] and service.batches(task_id) == []
    assert query(service.database_url, "SELECT * FROM imports WHERE task_id = $1", task_id) == []


def test_another_users_task_and_import_are_not_found(service: ImportService) -> None:
    ann, bob = service.client("files-ann"), service.client("files-bob")
    task_id = service.new_task(ann)
    refused = upload(bob, "/api/v1/import/file", b"username\nalice_99\n", "a.csv", task_id=task_id)
    assert refused.status_code == 404
    mine = upload(ann, "/api/v1/import/file", b"username\nalice_99\n", "a.csv", task_id=task_id).json()
    assert bob.get(f"/api/v1/imports/{mine['import_id']}").status_code == 404
    assert bob.get(f"/api/v1/tasks/{task_id}/imports").status_code == 404
    assert wait_import(ann, mine["import_id"])["result"]["accepted"] == 1
    assert len(service.targets(task_id)) == 1


def test_a_finished_task_takes_no_file(service: ImportService) -> None:
    http = service.client("files-ann")
    task_id = service.new_task(http)
    assert http.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 202
    wait_for(lambda: http.get(f"/api/v1/tasks/{task_id}").json()["status"] == "cancelled", 30, what="cancelled")
    response = upload(http, "/api/v1/import/file", b"username\nalice_99\n", "a.csv", task_id=task_id)
    assert response.status_code == 409 and response.json()["error"]["code"] == "task_finished"


def test_an_upload_without_a_file_or_task_is_a_clear_422(service: ImportService) -> None:
    http = service.client("files-ann")
    no_file = http.post("/api/v1/import/file", data={"task_id": "x"}, files={"other": ("a", b"x")})
    assert no_file.status_code == 422 and "other" in no_file.json()["error"]["message"]
    no_task = upload(http, "/api/v1/import/file", b"username\nalice_99\n", "a.csv")
    assert no_task.status_code == 422 and no_task.json()["error"]["details"] == [{"field": "task_id"}]
    not_multipart = http.post("/api/v1/import/file", json={"task_id": "x"})
    assert not_multipart.status_code == 415



def test_the_parsing_pull_without_a_configured_service_is_a_clear_503(service: ImportService) -> None:
    http = service.client("files-ann")
    task_id = service.new_task(http)
    response = http.post("/api/v1/import/parsing", json={"task_id": task_id, "parsing_task_id": "p1"})
    assert response.status_code == 503
    assert "INVITE_PARSING_SERVICE_URL" in response.json()["error"]["message"]
