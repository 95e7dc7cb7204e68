"""The suppression list through the API, and imports honouring it (DESIGN.md principle 3).

People on a user's list are never contacted: an import stores them as
``skipped`` with reason ``suppressed`` (traceable, never claimed), counts them
in the import's result, and the dry run says so beforehand.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.support.import_service import (
    ImportService,
    import_service,
    upload,
    wait_import,
)
from tests.support.stack import TestStack as RunningStack
from tests.support.worker import wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImportService]:
    with import_service(stack, tmp_path_factory.mktemp("suppression")) as running:
        yield running


def listed(http, **params: object) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    body = http.get("/api/v1/suppressions", params={"limit": 1000, **params}).json()
    return [(e["kind"], e["value"], e["reason"]) for e in body["items"]]


def test_entries_are_added_normalized_listed_and_removed(service: ImportService) -> None:
    http = service.client("supp-ann")
    added = http.post("/api/v1/suppressions", json={"entries": [
        {"value": "@Alice_99"}, {"value": "+7 916 123-45-67", "reason": "never_contact"},
        {"value": "42"}, {"kind": "username", "value": "https://t.me/alice_99"},
    ]})
    assert added.status_code == 200, added.text
    assert added.json() == {"received": 4, "added": 3, "targets_skipped": 0}
    assert sorted(listed(http)) == [
        ("phone", "+79161234567", "never_contact"), ("user_id", "42", "opt_out"), ("username", "alice_99", "opt_out")]
    assert listed(http, kind="phone") == [("phone", "+79161234567", "never_contact")]
    page = http.get("/api/v1/suppressions", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["total"] == 3
    rest = http.get("/api/v1/suppressions", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None

    assert http.delete(f"/api/v1/suppressions/phone/{quote('8 916 123 45 67')}").status_code == 200
    assert http.delete("/api/v1/suppressions/username/ALICE_99").status_code == 200
    again = http.delete("/api/v1/suppressions/username/alice_99")
    assert again.status_code == 404 and "not on the suppression list" in again.json()["error"]["message"]
    assert http.delete("/api/v1/suppressions/email/x").status_code == 404
    assert listed(http) == [("user_id", "42", "opt_out")]
    assert listed(service.client("supp-bob")) == []


def test_one_invalid_entry_adds_nothing_and_is_named(service: ImportService) -> None:
    http = service.client("supp-carl")
    response = http.post("/api/v1/suppressions", json={"entries": [
        {"value": "fine_name"}, {"value": "bad name!"}, {"kind": "phone", "value": "12"}, {"value": "x", "reason": "hate"}]})
    assert response.status_code == 422
    error = response.json()["error"]
    assert "3 of 4 entries are invalid" in error["message"]
    assert [d["entry"] for d in error["details"]] == [1, 2, 3]
    assert "invalid username" in error["details"][0]["message"]
    assert listed(http) == []


def test_a_list_file_with_a_header_and_a_bare_list_without_one(service: ImportService) -> None:
    http = service.client("supp-dora")
    csv = "Телефон;Ник;Комментарий\n+79161234501;@one_person;left\n;two_person;\nnot a phone;;\n"
    response = upload(http, "/api/v1/suppressions/import", csv.encode("cp1251"), "optout.csv", reason="never_contact")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted_rows"], body["rejected"], body["entries"], body["added"]) == (2, 1, 3, 3)
    assert body["problems"][0]["row"] == 4
    bare = "three_person\n@four_person\n+79161234504\n123456\nnot valid!\n"
    response = upload(http, "/api/v1/suppressions/import", bare.encode(), "list.txt")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["added"], body["rejected"]) == (4, 1) and body["problems"][0]["row"] == 5
    assert sorted(listed(http)) == [
        ("phone", "+79161234501", "never_contact"), ("phone", "+79161234504", "opt_out"),
        ("user_id", "123456", "opt_out"),
        ("username", "four_person", "opt_out"), ("username", "one_person", "never_contact"),
        ("username", "three_person", "opt_out"), ("username", "two_person", "never_contact"),
    ]
    broken = upload(http, "/api/v1/suppressions/import", b'"unbalanced\nx\n', "list.csv")
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "malformed_file"


def test_an_import_skips_listed_people_with_reason_suppressed(service: ImportService) -> None:
    http = service.client("supp-erin")
    assert http.post("/api/v1/suppressions", json={"entries": [
        {"value": "listed_one"}, {"value": "+79161234599"}, {"value": "777"}]}).status_code == 200
    service.client("supp-frank").post("/api/v1/suppressions", json={"entries": [{"value": "fine_one"}]})
    task_id = service.new_task(http)
    audience = (
        b"username,phone,user_id\n"
        b"listed_one,,\n"
        b"other_one,89161234599,\n"   # listed by phone
        b",,777\n"                    # listed by id
        b"fine_one,,\n"               # on another user's list only
        b"fine_two,,\n"
    )
    dry = upload(http, "/api/v1/import/validate", audience, "a.csv", task_id=task_id).json()["report"]
    assert (dry["accepted"], dry["suppressed"]) == (2, 3)

    response = upload(http, "/api/v1/import/file", audience, "a.csv", task_id=task_id)
    assert response.status_code == 202, response.text
    final = wait_import(http, response.json()["import_id"])
    assert final["result"] == {"accepted": 2, "duplicate": 0, "invalid": 0, "suppressed": 3}
    stored = {t["target_key"]: (t["status"], t["reason"]) for t in service.targets(task_id)}
    assert stored == {
        "u:listed_one": ("skipped", "suppressed"), "u:other_one": ("skipped", "suppressed"),
        "id:777": ("skipped", "suppressed"), "u:fine_one": ("pending", None), "u:fine_two": ("pending", None),
    }
    # 503 while a fresh worker's table route warms up.
    stats = wait_for(lambda: (r := http.get(f"/api/v1/tasks/{task_id}/stats")).status_code == 200 and r.json(), 30,
                     what="stats")
    assert stats["progress"]["by_status"] == {"skipped": 3, "pending": 2}


def test_a_person_listed_while_the_task_waits_is_skipped_at_once(service: ImportService) -> None:
    http = service.client("supp-gail")
    task_id = service.new_task(http)
    other = service.new_task(service.client("supp-hank"))
    audience = b"username,user_id\nlate_one,\nlate_two,9001\nstays_here,\n"
    wait_import(http, upload(http, "/api/v1/import/file", audience, "a.csv", task_id=task_id).json()["import_id"])
    hank = service.client("supp-hank")
    wait_import(hank, upload(hank, "/api/v1/import/file", audience, "a.csv", task_id=other).json()["import_id"])
    response = http.post("/api/v1/suppressions", json={"entries": [{"value": "late_one"}, {"value": "9001"}]})
    assert response.json()["targets_skipped"] == 2
    stored = {t["username"]: (t["status"], t["reason"]) for t in service.targets(task_id)}
    assert stored == {"late_one": ("skipped", "suppressed"), "late_two": ("skipped", "suppressed"),
                      "stays_here": ("pending", None)}
    # Another user's task with the same people is not touched.
    assert {t["status"] for t in service.targets(other)} == {"pending"}
