"""Audience file readers: CSV, XLSX and JSON as streams, with clear errors for bad files."""

from __future__ import annotations

import codecs
import io
import json
import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.files import (
    FileError,
    FileFormat,
    FileLimits,
    LimitExceeded,
    MalformedFile,
    UnsupportedFormat,
    detect_format,
    read_rows,
)
from models.imports import build_report

SMALL_CHUNKS = FileLimits(chunk_bytes=1024)


def rows_of(data: bytes, filename: str = "audience.csv", **kwargs: Any) -> list[tuple[int, dict[str, Any]]]:
    return list(read_rows(io.BytesIO(data), filename=filename, **kwargs))


class Unseekable(io.RawIOBase):
    """An upload stream: read() only, in short pieces, no seek."""

    def __init__(self, data: bytes, piece: int = 700) -> None:
        self._data = io.BytesIO(data)
        self._piece = piece

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        return self._data.read(min(size, self._piece) if size > 0 else self._piece)


# --- CSV -------------------------------------------------------------------------------------------------

RUSSIAN_CSV = "Ник;Телефон;Имя;Фамилия\n@alice_99;+7 916 123-45-67;Алиса;Петрова\n@bob_22;89161234568;Борис;Ёлкин\n"
RUSSIAN_ROWS = [
    (2, {"Ник": "@alice_99", "Телефон": "+7 916 123-45-67", "Имя": "Алиса", "Фамилия": "Петрова"}),
    (3, {"Ник": "@bob_22", "Телефон": "89161234568", "Имя": "Борис", "Фамилия": "Ёлкин"}),
]


@pytest.mark.parametrize(
    ("encode", "expected_codec"),
    [
        (lambda s: s.encode("utf-8"), "utf-8"),
        (lambda s: codecs.BOM_UTF8 + s.encode("utf-8"), "utf-8-sig"),
        (lambda s: s.encode("cp1251"), "cp1251"),
        (lambda s: s.encode("utf-16"), "utf-16"),                        # with BOM, native order
        (lambda s: codecs.BOM_UTF16_BE + s.encode("utf-16-be"), "utf-16"),
    ],
    ids=["utf-8", "utf-8-bom", "cp1251", "utf-16", "utf-16-be"],
)
def test_csv_encodings_are_detected(encode: Callable[[str], bytes], expected_codec: str) -> None:
    reader = read_rows(io.BytesIO(encode(RUSSIAN_CSV)), filename="a.csv")
    assert reader.encoding == expected_codec  # type: ignore[attr-defined]
    assert reader.columns == ["Ник", "Телефон", "Имя", "Фамилия"]
    assert list(reader) == RUSSIAN_ROWS


def test_a_larger_cp1251_file_is_detected_as_cp1251() -> None:
    lines = ["юзернейм;имя;город"] + [f"user_{i:05d};Иван{i};Нижний Новгород" for i in range(3000)]
    reader = read_rows(io.BytesIO("\n".join(lines).encode("cp1251")), filename="a.csv")
    assert reader.encoding == "cp1251"  # type: ignore[attr-defined]
    assert next(iter(reader)) == (2, {"юзернейм": "user_00000", "имя": "Иван0", "город": "Нижний Новгород"})


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_delimiters_are_detected(delimiter: str) -> None:
    text = "\n".join(
        delimiter.join(cells)
        for cells in [["username", "phone", "first name"], ["alice_99", "+79161234567", "Alice"],
                      ["bob_22", "", "Bob"]]
    )
    reader = read_rows(io.BytesIO(text.encode()), filename="a.csv")
    assert reader.delimiter == delimiter  # type: ignore[attr-defined]
    assert [row for _, row in reader][1] == {"username": "bob_22", "phone": None, "first name": "Bob"}


def test_the_header_decides_when_data_is_full_of_another_delimiter() -> None:
    text = 'username;full name\nalice_99;"Smith, Alice"\nbob_22;"Jones, Bob"\n'
    reader = read_rows(io.BytesIO(text.encode()), filename="a.csv")
    assert reader.delimiter == ";"  # type: ignore[attr-defined]
    assert next(iter(reader)) == (2, {"username": "alice_99", "full name": "Smith, Alice"})


def test_quoted_cells_keep_newlines_delimiters_and_quotes_and_rows_count_like_a_spreadsheet() -> None:
    text = (
        'username,note\r\n'
        'alice_99,"line one\r\nline two, with a comma"\r\n'
        '\r\n'                                   # a blank row is row 3, and skipped
        '  ,  \r\n'                              # whitespace only: row 4, skipped
        'bob_22,"she said ""hi"""\r\n'
    )
    assert rows_of(text.encode()) == [
        (2, {"username": "alice_99", "note": "line one\r\nline two, with a comma"}),
        (5, {"username": "bob_22", "note": 'she said "hi"'}),
    ]


def test_ragged_rows_and_odd_headers() -> None:
    text = "username,,username,phone\nalice_99,x,second\nbob_22,,,+7916,overflow\n"
    reader = read_rows(io.BytesIO(text.encode()), filename="a.csv")
    assert reader.columns == ["username", "column_2", "username (2)", "phone"]
    assert list(reader) == [
        (2, {"username": "alice_99", "column_2": "x", "username (2)": "second", "phone": None}),
        (3, {"username": "bob_22", "column_2": None, "username (2)": None, "phone": "+7916", "column_5": "overflow"}),
    ]


def test_explicit_encoding_and_delimiter_override_detection() -> None:
    data = "a|b\n1;2|3\n".encode("koi8-r")
    assert rows_of(data, encoding="koi8-r", delimiter="|") == [(2, {"a": "1;2", "b": "3"})]


def test_old_mac_line_endings() -> None:
    assert rows_of(b"username\r@alice_99\r@bob_22\r") == [(2, {"username": "@alice_99"}), (3, {"username": "@bob_22"})]


def test_csv_records_survive_any_chunk_boundary() -> None:
    lines = ["username,note"] + [f'user_{i},"multi\nline {i}, ""quoted"" ё"' for i in range(400)]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    rows = list(read_rows(Unseekable(data, piece=333), filename="a.csv", limits=SMALL_CHUNKS))
    assert len(rows) == 400
    assert rows[-1] == (401, {"username": "user_399", "note": 'multi\nline 399, "quoted" ё'})


# --- bad CSV files ----------------------------------------------------------------------------------------


def _error_of(data: bytes, filename: str = "bad.csv", **kwargs: Any) -> FileError:
    with pytest.raises(FileError) as info:
        rows_of(data, filename, **kwargs)
    return info.value


def test_a_file_mixing_encodings_fails_at_the_row_where_it_switches() -> None:
    # The first chunk is plain ASCII (so: UTF-8); a cp1251 name shows up later.
    ascii_rows = [f"user_{i:05d},Ivan" for i in range(5000)]
    data = ("username,name\n" + "\n".join(ascii_rows) + "\n").encode() + "olga_1,Ольга\n".encode("cp1251")
    error = _error_of(data)
    assert isinstance(error, MalformedFile)
    assert error.row == 5002
    assert "not valid utf-8" in str(error) and "mixes encodings" in str(error)


def test_mixed_delimiters_are_named() -> None:
    error = _error_of(b"username;phone\nalice_99;+79161234567\nbob_22,+79161234568\n")
    assert error.row == 3
    assert "mixed delimiters" in str(error) and "','" in str(error) and "';'" in str(error)


def test_an_unbalanced_quote_is_named() -> None:
    error = _error_of(b'username,note\nalice_99,"never closed\nbob_22,x\n')
    assert error.row == 2
    assert "never closed" in str(error)


def test_a_quote_in_the_middle_of_a_cell_is_named() -> None:
    error = _error_of(b'username,note\nalice_99,"closed" early\n')
    assert error.row == 2 and "quote" in str(error)


def test_a_ten_megabyte_single_line_fails_without_being_buffered() -> None:
    data = b"username\n" + b"a" * (10 * 1024 * 1024)
    error = _error_of(data)
    assert isinstance(error, LimitExceeded)
    assert (error.limit, error.row) == ("max_record_chars", 2)


def test_a_huge_cell_is_refused() -> None:
    error = _error_of(b"username,note\nalice_99," + b"x" * 70_000 + b"\n")
    assert isinstance(error, LimitExceeded)
    assert (error.limit, error.value, error.row) == ("max_cell_chars", 65_536, 2)
    assert "max_cell_chars=65536" in str(error)


def test_binary_garbage_named_csv_is_refused() -> None:
    error = _error_of(os.urandom(20_000))
    assert isinstance(error, MalformedFile) and "not a text file" in str(error)


def test_a_binary_file_that_decodes_is_still_refused() -> None:
    error = _error_of(b"username\n" + bytes(range(1, 32)) * 50)
    assert "not a text file" in str(error)


@pytest.mark.parametrize("data", [b"", b"   \r\n\n  \n"])
def test_empty_and_whitespace_files_are_refused(data: bytes) -> None:
    assert "empty" in str(_error_of(data))


def test_a_header_without_rows_reads_as_no_rows() -> None:
    reader = read_rows(io.BytesIO(b"username,phone\n\n"), filename="a.csv")
    assert reader.columns == ["username", "phone"] and list(reader) == []


# --- limits ----------------------------------------------------------------------------------------------


def test_max_bytes_names_the_limit_and_its_value() -> None:
    data = b"username\n" + b"user_1234\n" * 2000
    with pytest.raises(LimitExceeded) as info:
        rows_of(data, limits=FileLimits(max_bytes=5000, chunk_bytes=1024))
    assert (info.value.limit, info.value.value) == ("max_bytes", 5000)
    assert "max_bytes=5000" in str(info.value)


def test_max_rows_names_the_limit_the_value_and_the_row() -> None:
    data = b"username\n" + b"user_1234\n" * 20
    reader = read_rows(io.BytesIO(data), filename="a.csv", limits=FileLimits(max_rows=10))
    seen = []
    with pytest.raises(LimitExceeded) as info:
        for row, _ in reader:
            seen.append(row)
    assert seen == list(range(2, 12))
    assert (info.value.limit, info.value.value, info.value.row) == ("max_rows", 10, 12)
    assert "more than 10 rows" in str(info.value)


# --- format detection ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "content_type", "head", "expected"),
    [
        ("a.csv", None, b"username\n", FileFormat.CSV),
        ("a.TSV", None, b"username\n", FileFormat.CSV),
        ("a.json", None, b"[]", FileFormat.JSON),
        ("a.ndjson", None, b"{}", FileFormat.JSON),
        (None, "application/json; charset=utf-8", b"[]", FileFormat.JSON),
        (None, "text/csv", b"[x]", FileFormat.CSV),
        (None, None, b"\xef\xbb\xbf  [{}]", FileFormat.JSON),
        (None, None, b"username\n", FileFormat.CSV),
        ("renamed.csv", None, b"PK\x03\x04rest", FileFormat.XLSX),  # the content decides
    ],
)
def test_format_detection(filename: str | None, content_type: str | None, head: bytes, expected: FileFormat) -> None:
    assert detect_format(filename, content_type, head) is expected


@pytest.mark.parametrize(
    ("filename", "head", "message"),
    [
        ("a.pdf", b"%PDF-1.7", "unsupported file type '.pdf'"),
        ("a.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Excel .xls"),
        ("a.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Excel .xls"),
    ],
)
def test_unsupported_files_are_named(filename: str, head: bytes, message: str) -> None:
    with pytest.raises(UnsupportedFormat, match=message):
        detect_format(filename, None, head)


# --- XLSX ------------------------------------------------------------------------------------------------


def _xlsx(build: Callable[[Any], None], *, extra_sheet_first: bool = False) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    build(sheet)
    if extra_sheet_first:
        workbook.move_sheet(workbook.create_sheet("second"), offset=1)
        workbook.active = 1  # the active sheet is not the first: the first one is read
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_xlsx_reads_the_first_sheet_with_sheet_row_numbers() -> None:
    def build(sheet: Any) -> None:
        sheet.append(["Username", "Phone", "ID", "Joined"])
        sheet.append(["@alice_99", 79161234567, 1001, None])
        sheet.append([])
        sheet.append(["  ", None, None, None])
        sheet.append(["bob_22", "+7 916 123-45-68", 1002.0, 3.5])
        sheet["A7"] = "carol"
        sheet.merge_cells("B7:C7")
        sheet["B7"] = "+79161234569"
        sheet["E2"] = "beyond the header"

    data = _xlsx(build, extra_sheet_first=True)
    reader = read_rows(io.BytesIO(data), filename="a.xlsx")
    assert reader.format is FileFormat.XLSX
    assert reader.columns == ["Username", "Phone", "ID", "Joined"]
    assert list(reader) == [
        (2, {"Username": "@alice_99", "Phone": 79161234567, "ID": 1001, "Joined": None,
             "column_5": "beyond the header"}),
        (5, {"Username": "bob_22", "Phone": "+7 916 123-45-68", "ID": 1002, "Joined": 3.5}),
        (7, {"Username": "carol", "Phone": "+79161234569", "ID": None, "Joined": None}),  # merged: top-left only
    ]


def test_xlsx_rows_normalize_like_any_other() -> None:
    data = _xlsx(lambda s: [s.append(r) for r in (["ник", "телефон"], ["alice_99", 89161234567], ["b", None])])
    reader = read_rows(Unseekable(data), filename="a.xlsx")  # an upload that cannot seek is spooled
    report = build_report(reader, reader.columns)
    assert (report.accepted, report.rejected) == (1, 1)
    assert (report.problems[0].row, report.problems[0].field) == (3, "username")


def test_xlsx_formulas_give_their_computed_value_or_nothing() -> None:
    # openpyxl writes no cached results, so a formula cell reads as empty (Excel-saved files carry values).
    data = _xlsx(lambda s: [s.append(r) for r in (["username", "note"], ["alice_99", "=1+2"])])
    assert rows_of(data, "a.xlsx") == [(2, {"username": "alice_99", "note": None})]


def test_xlsx_huge_cells_are_refused_with_the_row() -> None:
    data = _xlsx(lambda s: [s.append(r) for r in (["username"], ["alice_99"], ["x" * 30_000])])
    with pytest.raises(LimitExceeded) as info:
        rows_of(data, "a.xlsx", limits=FileLimits(max_cell_chars=10_000))
    assert (info.value.limit, info.value.row) == ("max_cell_chars", 3)


def test_an_empty_first_sheet_is_refused() -> None:
    with pytest.raises(MalformedFile, match="empty"):
        rows_of(_xlsx(lambda s: None), "a.xlsx")


def test_a_file_named_xlsx_that_is_not_a_workbook_is_refused() -> None:
    with pytest.raises(MalformedFile, match="not an XLSX"):
        rows_of(b"username\nalice_99\n", "a.xlsx")


def test_a_zip_that_is_no_workbook_is_refused() -> None:
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(MalformedFile, match="not a readable XLSX"):
        rows_of(out.getvalue(), "a.xlsx")


def test_max_rows_applies_to_xlsx() -> None:
    data = _xlsx(lambda s: [s.append([f"user_{i}"]) for i in range(30)])
    with pytest.raises(LimitExceeded) as info:
        rows_of(data, "a.xlsx", limits=FileLimits(max_rows=5))
    assert (info.value.limit, info.value.row) == ("max_rows", 7)


# --- JSON ------------------------------------------------------------------------------------------------


def test_json_array_rows_are_numbered_from_one() -> None:
    data = json.dumps([{"username": "alice_99", "tags": ["a"]}, {}, {"user_id": 42, "phone": " "}]).encode()
    reader = read_rows(io.BytesIO(data), filename="a.json")
    assert reader.columns == ["username", "tags"]
    assert list(reader) == [(1, {"username": "alice_99", "tags": ["a"]}), (3, {"user_id": 42, "phone": None})]


def test_json_lines_and_a_bom() -> None:
    data = codecs.BOM_UTF8 + b'{"username": "alice_99"}\n\n{"user_id": 42}\r\n'
    assert rows_of(data, "a.jsonl") == [(1, {"username": "alice_99"}), (2, {"user_id": 42})]


def test_an_empty_json_array_has_no_rows() -> None:
    reader = read_rows(io.BytesIO(b" [ ] "), filename="a.json")
    assert reader.columns == [] and list(reader) == []


json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
)
json_items = st.dictionaries(st.text(min_size=1, max_size=8), json_scalars, min_size=1, max_size=5)


@settings(max_examples=60, deadline=None)
@given(items=st.lists(json_items, max_size=40), lines=st.booleans(), spaces=st.integers(0, 3))
def test_json_items_survive_any_chunk_boundary(items: list[dict[str, Any]], lines: bool, spaces: int) -> None:
    pad = " " * spaces
    if lines:
        text = "\n".join(json.dumps(i, ensure_ascii=False) + pad for i in items)
    else:
        text = "[" + pad + ("," + pad).join(json.dumps(i, ensure_ascii=False) for i in items) + pad + "]"
    if lines and not items:
        text = "[]"
    data = text.encode("utf-8")
    got = list(read_rows(Unseekable(data, piece=97), filename="a.json", limits=SMALL_CHUNKS))

    def cleaned(item: dict[str, Any]) -> dict[str, Any]:
        return {k: (v.strip() or None) if isinstance(v, str) else v for k, v in item.items()}

    expected = [(n, cleaned(i)) for n, i in enumerate(items, start=1) if any(v is not None for v in cleaned(i).values())]
    assert got == expected


@pytest.mark.parametrize(
    ("data", "row", "message"),
    [
        (b'{"targets": [{"username": "alice_99"}]}', 1, "JSON object where an array was expected"),
        (b'[{"username": "alice_99"}, {"user_id": 4', 2, "truncated"),
        (b'[{"username": "alice_99"}, {"user_id": 42}', None, "never closed after item 2"),
        (b'[{"username": "alice_99"}, "bob_22"]', 2, "item is a string, expected an object"),
        (b'[{"username": "alice_99"}, {oops}]', 2, "not valid JSON"),
        (b'[{"username": "alice_99"},]', None, "comma after the last item"),
        (b'[{"username": "alice_99"}] []', None, "data after the end"),
        (b'"just a string"', None, "expected a JSON array of objects or JSON lines"),
    ],
)
def test_bad_json_files_are_named(data: bytes, row: int | None, message: str) -> None:
    error = _error_of(data, "bad.json")
    assert isinstance(error, MalformedFile)
    assert error.row == row
    assert message in str(error)


def test_one_giant_json_object_is_refused_without_being_buffered() -> None:
    data = b'{"rows": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    error = _error_of(data, "bad.json")
    assert isinstance(error, LimitExceeded) and error.limit == "max_record_chars"
    assert "one big JSON object" in str(error)


# --- memory ----------------------------------------------------------------------------------------------


def _peak_while_reading(path: Path, filename: str) -> tuple[int, int]:
    rows = 0
    with path.open("rb") as f:
        tracemalloc.start()
        try:
            for _ in read_rows(f, filename=filename):
                rows += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return rows, peak


def test_a_large_csv_is_read_in_constant_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    count = 220_000
    with path.open("w", encoding="cp1251", newline="") as f:
        f.write("юзернейм;телефон;имя;заметка\n")
        for i in range(count):
            f.write(f'user_{i:07d};+7916{i:07d};Иван;"строка {i}\nвторая строка"\n')
    size = path.stat().st_size
    assert size > 12 * 1024 * 1024
    rows, peak = _peak_while_reading(path, "big.csv")
    assert rows == count
    assert peak < size // 10, f"peak {peak} bytes for a {size}-byte file"


def test_a_large_json_array_is_read_in_constant_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    count = 150_000
    with path.open("w", encoding="utf-8") as f:
        f.write("[\n")
        for i in range(count):
            f.write(("," if i else "") + json.dumps({"username": f"user_{i:07d}", "phone": f"+7916{i:07d}",
                                                     "first_name": "Иван", "n": i}, ensure_ascii=False) + "\n")
        f.write("]\n")
    size = path.stat().st_size
    assert size > 12 * 1024 * 1024
    rows, peak = _peak_while_reading(path, "big.json")
    assert rows == count
    assert peak < size // 10, f"peak {peak} bytes for a {size}-byte file"
