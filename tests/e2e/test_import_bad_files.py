"""Bad audience files through the API: each gets a clear error, and nothing of it lands.

The reader-level behaviour is in tests/unit/test_file_readers.py; here every
case goes through ``POST /api/v1/import/file`` on a real worker, and the test
checks the answer (status, code, message, row), the import's recorded failure,
and that the task holds no target and no batch afterwards — also when the
problem sits thousands of rows into the file, after rows that were fine.
"""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
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

pytestmark = pytest.mark.e2e

MAX_BYTES = 12 * 1024 * 1024
MAX_ROWS = 6_000


@pytest.fixture(scope="module")
def service(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImportService]:
    limits = {"INVITE_IMPORT_MAX_BYTES": str(MAX_BYTES), "INVITE_IMPORT_MAX_ROWS": str(MAX_ROWS)}
    with import_service(stack, tmp_path_factory.mktemp("bad-files"), limits) as running:
        yield running


@dataclass
class Bad:
    name: str
    filename: str
    data: bytes
    status: int
    code: str
    says: tuple[str, ...]
    row: int | None


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


ASCII_ROWS = "".join(f"user_{i:05d},Ivan\n" for i in range(5000))

BAD_FILES = [
    Bad("encodings mixed within the first lines", "a.csv",
        "username,first_name\nalice_99,Алиса\n".encode() + "bob_22,Борис\n".encode("cp1251"),
        422, "malformed_file", ("mixes encodings", "line 2 is UTF-8, line 3 is not"), 3),
    Bad("a cp1251 row after 5000 good UTF-8 rows", "a.csv",
        ("username,first_name\n" + ASCII_ROWS).encode() + "olga_1,Ольга\n".encode("cp1251"),
        422, "malformed_file", ("not valid utf-8", "mixes encodings"), 5002),
    Bad("mixed delimiters", "a.csv", b"username;phone\nalice_99;+79161234567\nbob_22,+79161234568\n",
        422, "malformed_file", ("mixed delimiters", "','", "';'"), 3),
    Bad("an unbalanced quote", "a.csv", b'username,note\nalice_99,"never closed\nbob_22,x\n',
        422, "malformed_file", ("never closed",), 2),
    Bad("an empty file", "a.csv", b"", 422, "malformed_file", ("empty",), None),
    Bad("a file of whitespace rows", "a.csv", b"  \r\n\n\t\n   \n", 422, "malformed_file", ("empty",), None),
    Bad("a 10 MB single line", "a.csv", b"username\n" + b"a" * (10 * 1024 * 1024),
        413, "limit_exceeded", ("max_record_chars",), 2),
    Bad("a huge cell", "a.csv", b"username,note\nalice_99," + b"x" * 70_000 + b"\n",
        413, "limit_exceeded", ("max_cell_chars=65536",), 2),
    Bad("a JSON object where an array was expected", "a.json",
        b'{"targets": [{"username": "alice_99"}, {"username": "bob_22"}]}',
        422, "malformed_file", ("JSON object where an array was expected", "'targets'"), 1),
    Bad("truncated JSON", "a.json", b'[{"username": "alice_99"}, {"username": "bob_22"}, {"username": "car',
        422, "malformed_file", ("truncated",), 3),
    Bad("a JSON array of strings", "a.json", b'["alice_99", "bob_22"]',
        422, "malformed_file", ("expected an object",), 1),
    Bad("binary garbage named .csv", "a.csv", os.urandom(20_000), 422, "malformed_file", ("not a text file",), None),
    Bad("a file named .xlsx that is no workbook", "a.xlsx", b"username\nalice_99\n",
        422, "malformed_file", ("not an XLSX workbook",), None),
    Bad("legacy .xls", "a.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600,
        415, "unsupported_format", (".xls is not supported",), None),
    Bad("a PDF", "a.pdf", b"%PDF-1.4\n...", 415, "unsupported_format", ("'.pdf'",), None),
    Bad("more rows than allowed", "a.csv", ("username\n" + "".join(f"u_{i:06d}\n" for i in range(MAX_ROWS + 1))).encode(),
        413, "limit_exceeded", (f"max_rows={MAX_ROWS}",), MAX_ROWS + 2),
]


@pytest.mark.parametrize("bad", BAD_FILES, ids=[b.name for b in BAD_FILES])
def test_a_bad_file_gets_a_clear_error_and_nothing_lands(service: ImportService, bad: Bad) -> None:
    http = service.client("bad-files")
    task_id = service.new_task(http)
    response = upload(http, "/api/v1/import/file", bad.data, bad.filename, task_id=task_id)
    assert response.status_code == bad.status, response.text
    error = response.json()["error"]
    assert error["code"] == bad.code
    for fragment in bad.says:
        assert fragment.lower() in error["message"].lower(), error["message"]
    assert error["details"]["row"] == bad.row
    if bad.row is not None:
        assert f"row {bad.row}:" in error["message"]
    # The attempt is on record, failed for the same reason...
    recorded = http.get(f"/api/v1/imports/{error['details']['import_id']}").json()
    assert (recorded["status"], recorded["error"]["code"], recorded["error"]["row"]) == ("failed", bad.code, bad.row)
    assert recorded["progress"]["rows_published"] == 0
    # ...and nothing of the file reached the task, not even the rows before the problem.
    assert service.targets(task_id) == [] and service.batches(task_id) == []


def test_an_upload_over_the_size_limit_is_refused_while_it_arrives(service: ImportService) -> None:
    http = service.client("bad-files")
    task_id = service.new_task(http)
    response = upload(http, "/api/v1/import/file", b"username\n" + b"abcdefgh\n" * (MAX_BYTES // 9 + 10), "a.csv",
                      task_id=task_id)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "limit_exceeded" and str(MAX_BYTES) in error["message"]
    assert service.targets(task_id) == []


def test_blank_and_whitespace_rows_are_skipped_and_later_rows_keep_their_numbers(service: ImportService) -> None:
    http = service.client("bad-files")
    task_id = service.new_task(http)
    data = b"username,phone\n\nalice_99,\n   ,  \n\t,\n\nbad name,\nbob_22,\n"
    response = upload(http, "/api/v1/import/file", data, "a.csv", task_id=task_id)
    assert response.status_code == 202, response.text
    report = response.json()["report"]
    assert (report["rows"], report["accepted"], report["rejected"]) == (3, 2, 1)
    assert report["problems"][0]["row"] == 7
    wait_import(http, response.json()["import_id"])
    assert sorted(t["username"] for t in service.targets(task_id)) == ["alice_99", "bob_22"]


def _with_cached_values(data: bytes, values: dict[str, tuple[str, str]]) -> bytes:
    """An openpyxl workbook as Excel would save it: each formula cell with its computed value."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = content.decode()
                for ref, (kind, value) in values.items():
                    text, n = re.subn(rf'<c r="{ref}"><f>(.*?)</f><v ?/>', rf'<c r="{ref}" t="{kind}"><f>\1</f><v>{value}</v>', text)
                    assert n == 1, ref
                content = text.encode()
            target.writestr(item, content)
    return out.getvalue()


def test_xlsx_formulas_import_their_computed_value_and_uncomputed_ones_are_named(service: ImportService) -> None:
    http = service.client("bad-files")
    task_id = service.new_task(http)
    data = _xlsx([
        ["username", "user_id", "note"],
        ['="alice"&"_99"', "=1000+1", "=1+2"],      # saved by Excel: values cached
        ['="bob"&"_22"', None, "plain"],            # written by a program: never computed
        ["carol_33", None, "=NOW()"],
    ])
    data = _with_cached_values(data, {"A2": ("str", "alice_99"), "B2": ("n", "1001"), "C2": ("n", "3")})
    response = upload(http, "/api/v1/import/file", data, "formulas.xlsx", task_id=task_id)
    assert response.status_code == 202, response.text
    report = response.json()["report"]
    assert (report["accepted"], report["rejected"]) == (2, 1)
    assert report["problems"][0]["row"] == 3 and "needs one of username" in report["problems"][0]["reason"]
    wait_import(http, response.json()["import_id"])
    rows = {t["username"]: (t["user_id"], t["extra"]) for t in service.targets(task_id)}
    assert rows == {"alice_99": (1001, {"note": "3"}), "carol_33": (None, None)}


def test_merged_cells_give_their_value_to_the_top_left_row_and_the_rows_below_are_named(
    service: ImportService,
) -> None:
    http = service.client("bad-files")
    task_id = service.new_task(http)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in (["username", "note"], ["alice_99", "first"], [None, "second"], ["bob_22", "third"]):
        sheet.append(row)
    sheet.merge_cells("A2:A3")   # one username drawn over two rows
    out = io.BytesIO()
    workbook.save(out)
    response = upload(http, "/api/v1/import/file", out.getvalue(), "merged.xlsx", task_id=task_id)
    assert response.status_code == 202, response.text
    report = response.json()["report"]
    assert (report["accepted"], report["rejected"]) == (2, 1)
    assert report["problems"][0]["row"] == 3 and "needs one of username" in report["problems"][0]["reason"]
    wait_import(http, response.json()["import_id"])
    rows = {t["username"]: t["extra"] for t in service.targets(task_id)}
    assert rows == {"alice_99": {"note": "first"}, "bob_22": {"note": "third"}}
