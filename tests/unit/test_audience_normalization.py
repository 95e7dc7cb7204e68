"""Audience rows: identity normalization, column mapping, de-duplication and the import report."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from models.audience import (
    PRIVACY_OUTCOMES,
    SuppressionEntry,
    SuppressionReason,
    entries_for,
    guess_identity_kind,
)
from models.imports import (
    ColumnMapper,
    ColumnMappingError,
    Deduplicator,
    ImportTally,
    TargetField,
    build_report,
    detect_field,
    prepare_targets,
    validate_rows,
)
from models.outcomes import Outcome
from models.targets import (
    IdentityKind,
    TargetIn,
    normalize_phone,
    normalize_user_id,
    normalize_username,
)


@pytest.mark.parametrize(
    "raw",
    [
        "alice_99", "@Alice_99", "ALICE_99", " @alice_99 ", "t.me/alice_99", "t.me/Alice_99/",
        "https://t.me/alice_99", "http://t.me/alice_99?start=x", "https://www.t.me/alice_99",
        "telegram.me/alice_99", "https://telegram.dog/alice_99", "https://t.me/s/alice_99",
        "alice_99.t.me", "tg://resolve?domain=alice_99",
    ],
)
def test_every_username_spelling_normalizes_to_one(raw: str) -> None:
    assert normalize_username(raw) == "alice_99"


@pytest.mark.parametrize(
    "raw",
    [
        "abc",               # too short even for a collectible username
        "a" * 33,            # longer than 32
        "9lives",            # must start with a letter
        "_alice",
        "alice_",            # no trailing underscore
        "ali ce",
        "alice-99",
        "алиса_99",          # Latin letters only
        "https://t.me/+AbCdEfGh",        # an invite link, not a user
        "https://t.me/joinchat/AbCdEf",
        "https://example.com/alice_99",  # a link elsewhere
        "@",
    ],
)
def test_usernames_telegram_would_refuse_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="invalid username"):
        normalize_username(raw)


def test_collectible_four_letter_usernames_are_kept() -> None:
    assert normalize_username("@Pepe") == "pepe"


@pytest.mark.parametrize(
    "raw", ["+79161234567", "+7 916 123-45-67", "8 (916) 123-45-67", "89161234567", "79161234567", "9161234567",
            79161234567, "tel:+79161234567"],
)
def test_russian_phones_become_e164(raw: str | int) -> None:
    assert normalize_phone(raw, "RU") == "+79161234567"


def test_the_default_region_decides_numbers_without_country_code() -> None:
    assert normalize_phone("(202) 555-0143", "US") == "+12025550143"
    assert normalize_phone("+1 202 555 0143", "RU") == "+12025550143"
    with pytest.raises(ValueError, match="no default region"):
        normalize_phone("916 123 45 67", None)


@pytest.mark.parametrize("raw", ["123", "+7 123", "not a phone", "+7 916 123 45 6"])
def test_invalid_phones_are_refused_without_echoing_the_number(raw: str) -> None:
    with pytest.raises(ValueError) as info:
        normalize_phone(raw, "RU")
    assert "phone" in str(info.value)
    assert "123" not in str(info.value)  # personal data stays out of reasons and logs


@pytest.mark.parametrize(("raw", "expected"), [(42, 42), ("42", 42), (" 42 ", 42), (42.0, 42), (2**63 - 1, 2**63 - 1)])
def test_user_ids_are_positive_integers(raw: Any, expected: int) -> None:
    assert normalize_user_id(raw) == expected


@pytest.mark.parametrize("raw", [0, -5, "0", "-5", "12a", "1e5", 1.5, True, None, "٣", 2**63])
def test_bad_user_ids_are_refused(raw: Any) -> None:
    with pytest.raises(ValueError, match="user_id"):
        normalize_user_id(raw)


def test_target_in_normalizes_every_identity_and_ignores_blank_cells() -> None:
    target = TargetIn.model_validate(
        {"username": "@Alice_99", "user_id": "42", "phone": 89161234567.0, "first_name": "  Алиса ", "last_name": ""}
    )
    assert (target.username, target.user_id, target.phone) == ("alice_99", 42, "+79161234567")
    assert (target.first_name, target.last_name) == ("Алиса", None)
    assert target.identities == [
        (IdentityKind.USER_ID, "42"), (IdentityKind.USERNAME, "alice_99"), (IdentityKind.PHONE, "+79161234567")
    ]


def test_target_in_takes_the_phone_region_from_the_context() -> None:
    target = TargetIn.model_validate({"phone": "(202) 555-0143"}, context={"default_region": "US"})
    assert target.phone == "+12025550143"
    with pytest.raises(ValidationError, match="phone"):
        TargetIn.model_validate({"phone": "(202) 555-0143"})  # read as a Russian number, which it is not


@given(
    username=st.from_regex(r"\A[A-Za-z][A-Za-z0-9_]{3,30}[A-Za-z0-9]\Z"),
    user_id=st.one_of(st.none(), st.integers(min_value=1, max_value=2**63 - 1)),
    national=st.sampled_from(["916", "903", "999", "495"]),
    line=st.integers(min_value=0, max_value=9_999_999),
)
def test_normalization_is_idempotent(username: str, user_id: int | None, national: str, line: int) -> None:
    # The importer re-validates what a file import already normalized: nothing may change.
    first = TargetIn.model_validate(
        {"username": f"@{username}", "user_id": user_id, "phone": f"8 {national} {line:07d}"}
    )
    again = TargetIn.model_validate(first.model_dump())
    assert again == first
    assert first.username == username.lower()


def test_a_target_needs_one_identity() -> None:
    with pytest.raises(ValidationError, match="needs one of username, user_id or phone"):
        TargetIn.model_validate({"first_name": "Алиса", "username": "  "})


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("username", TargetField.USERNAME), ("User Name", TargetField.USERNAME), ("login", TargetField.USERNAME),
        ("Ник", TargetField.USERNAME), ("юзернейм", TargetField.USERNAME), ("Telegram", TargetField.USERNAME),
        ("ник в телеграм", TargetField.USERNAME), ("tg_username", TargetField.USERNAME),
        ("id", TargetField.USER_ID), ("user_id", TargetField.USER_ID), ("Telegram ID", TargetField.USER_ID),
        ("ID пользователя", TargetField.USER_ID),
        ("phone", TargetField.PHONE), ("Phone number", TargetField.PHONE), ("Телефон", TargetField.PHONE),
        ("номер", TargetField.PHONE), ("Номер телефона", TargetField.PHONE),
        ("first name", TargetField.FIRST_NAME), ("first_name", TargetField.FIRST_NAME), ("Имя", TargetField.FIRST_NAME),
        ("last name", TargetField.LAST_NAME), ("Фамилия", TargetField.LAST_NAME), ("surname", TargetField.LAST_NAME),
        ("Город", None), ("comment", None), ("", None),
    ],
)
def test_headers_in_english_and_russian_are_recognized(header: str, field: TargetField | None) -> None:
    assert detect_field(header) == field


def test_detection_maps_known_columns_and_keeps_the_rest_as_extra() -> None:
    mapper = ColumnMapper()
    mapping = mapper.resolve(["Ник", "Телефон", "Имя", "Город", "login"])
    assert mapping.fields == {
        TargetField.USERNAME: "Ник", TargetField.PHONE: "Телефон", TargetField.FIRST_NAME: "Имя"
    }
    assert mapping.extra == ["Город", "login"]  # the first username column wins
    row = mapper.to_target_input({"Ник": "@bob_22", "Телефон": "89161234567", "Имя": "Боб", "Город": "Тверь",
                                  "login": None})
    assert row == {"username": "@bob_22", "phone": "89161234567", "first_name": "Боб", "extra": {"Город": "Тверь"}}


def test_an_explicit_mapping_overrides_detection() -> None:
    mapper = ColumnMapper({"username": "contact", "phone": None, "user_id": "Номер"})
    mapping = mapper.resolve(["contact", "Номер", "phone", "имя"])
    assert mapping.fields == {
        TargetField.USERNAME: "contact", TargetField.USER_ID: "Номер", TargetField.FIRST_NAME: "имя"
    }
    assert mapping.extra == ["phone"]  # detection of phone was switched off


def test_explicit_columns_match_case_and_spacing_insensitively() -> None:
    assert ColumnMapper({"phone": "tel."}).resolve(["TEL."]).fields == {TargetField.PHONE: "TEL."}


def test_unknown_explicit_columns_are_an_error_naming_them() -> None:
    with pytest.raises(ColumnMappingError) as info:
        ColumnMapper({"username": "Ник в TG", "phone": "Мобильный"}).resolve(["ник", "телефон"])
    assert info.value.unknown_columns == ["Ник в TG", "Мобильный"]
    assert "Ник в TG" in str(info.value) and "Мобильный" in str(info.value)


def test_unknown_explicit_fields_are_an_error_naming_them() -> None:
    with pytest.raises(ColumnMappingError, match="nickname"):
        ColumnMapper({"nickname": "ник"})


def test_extra_values_are_kept_as_the_text_a_person_reads() -> None:
    from datetime import datetime

    row = ColumnMapper().to_target_input(
        {"username": "abcde", "age": 31.0, "vip": True, "seen": datetime(2025, 1, 2, 3, 4), "tags": ["a", "б"],
         "empty": "  "}
    )
    assert row["extra"] == {"age": "31", "vip": "true", "seen": "2025-01-02T03:04:00", "tags": '["a", "б"]'}


def _rows(*rows: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [(number, row) for number, row in enumerate(rows, start=2)]  # row 1 is the header


def test_the_report_counts_accepted_rejected_and_duplicates_with_reasons() -> None:
    rows = _rows(
        {"ник": "@alice_99", "телефон": "", "id": ""},
        {"ник": "bad name", "телефон": "", "id": ""},
        {"ник": "https://t.me/ALICE_99", "телефон": "", "id": ""},   # same username
        {"ник": "", "телефон": "123", "id": ""},
        {"ник": "", "телефон": "", "id": ""},
        {"ник": "bob_22", "телефон": "+79161234567", "id": ""},
        {"ник": "", "телефон": "8 916 123-45-67", "id": ""},            # same phone as bob
        {"ник": "", "телефон": "", "id": "-3"},
        {"ник": "carol", "телефон": "", "id": "77"},
    )
    report = build_report(rows, ["ник", "телефон", "id"])
    assert (report.accepted, report.rejected, report.duplicate, report.suppressed) == (3, 4, 2, 0)
    assert report.rows == len(rows)
    assert [(p.row, p.field, p.column) for p in report.problems] == [
        (3, "username", "ник"), (5, "phone", "телефон"), (6, None, None), (9, "user_id", "id")
    ]
    assert "invalid username 'bad name'" in report.problems[0].reason
    assert "needs one of" in report.problems[2].reason
    assert report.mapping is not None and report.mapping.fields[TargetField.USERNAME] == "ник"


def test_only_the_first_problems_are_kept_but_all_are_counted() -> None:
    rows = [(n, {"username": f"bad {n}"}) for n in range(2, 102)]
    report = build_report(rows, ["username"], max_problems=5)
    assert report.rejected == 100
    assert [p.row for p in report.problems] == [2, 3, 4, 5, 6]


def test_suppressed_targets_are_counted_apart() -> None:
    rows = _rows({"username": "alice_99"}, {"username": "bob_22"}, {"username": "carol"})
    report = build_report(rows, ["username"], is_suppressed=lambda t: t.username == "bob_22")
    assert (report.accepted, report.suppressed) == (2, 1)


def test_prepare_targets_is_lazy_and_yields_row_numbers() -> None:
    consumed: list[int] = []

    def source() -> Any:
        for number in range(2, 1_000_000):
            consumed.append(number)
            yield number, {"username": f"user_{number}"}

    tally = ImportTally()
    stream = prepare_targets(source(), ColumnMapper(), tally, dedup=Deduplicator())
    first = [next(stream) for _ in range(3)]
    assert [(n, t.username) for n, t in first] == [(2, "user_2"), (3, "user_3"), (4, "user_4")]
    assert consumed == [2, 3, 4]
    assert tally.accepted == 3
    tally.suppress(1)
    assert (tally.accepted, tally.suppressed) == (2, 1)
    with pytest.raises(ValueError):
        tally.suppress(3)


def test_a_duplicate_may_bring_a_new_identity_of_the_same_person() -> None:
    dedup = Deduplicator()
    assert not dedup.seen(TargetIn(username="alice_99"))
    assert dedup.seen(TargetIn(username="alice_99", phone="+79161234567"))
    assert dedup.seen(TargetIn(phone="89161234567"))  # known through row 2
    assert not dedup.seen(TargetIn(user_id=42))
    # Identities of different kinds never match: this id merely has the phone's digits.
    assert not dedup.seen(TargetIn(user_id=79161234567))


def test_validate_rows_keeps_its_contract_and_uses_the_region() -> None:
    accepted, problems = validate_rows(
        [{"username": "good_one"}, {"phone": "(202) 555-0143"}, {"phone": "+79161234567"}], default_region="US"
    )
    assert [t.key for t in accepted] == ["u:good_one", "p:+12025550143", "p:+79161234567"]
    assert problems == []
    _, problems = validate_rows([{"user_id": 0}, {"username": "ok_name", "nickname": "x"}])
    assert [(p["row"], p["field"]) for p in problems] == [(1, "user_id"), (2, "nickname")]


@pytest.mark.parametrize(
    ("raw", "kind", "value"),
    [
        ("@Alice_99", IdentityKind.USERNAME, "alice_99"),
        ("https://t.me/alice_99", IdentityKind.USERNAME, "alice_99"),
        ("+7 916 123-45-67", IdentityKind.PHONE, "+79161234567"),
        ("123456", IdentityKind.USER_ID, "123456"),
        (123456, IdentityKind.USER_ID, "123456"),
    ],
)
def test_suppression_entries_guess_their_kind_and_normalize(raw: Any, kind: IdentityKind, value: str) -> None:
    assert guess_identity_kind(raw) is kind
    entry = SuppressionEntry.model_validate({"value": raw})
    assert (entry.kind, entry.value, entry.reason) == (kind, value, SuppressionReason.OPT_OUT)


def test_an_explicit_kind_wins_and_bad_values_are_refused() -> None:
    entry = SuppressionEntry.model_validate({"kind": "phone", "value": "89161234567", "reason": "never_contact"})
    assert (entry.kind, entry.value) == (IdentityKind.PHONE, "+79161234567")
    with pytest.raises(ValidationError, match="invalid username"):
        SuppressionEntry.model_validate({"kind": "username", "value": "9lives"})
    with pytest.raises(ValidationError):
        SuppressionEntry.model_validate({"value": "alice_99", "reason": "dislike"})


def test_a_target_is_suppressed_by_every_identity_it_has() -> None:
    target = TargetIn(username="alice_99", user_id=42, phone="+79161234567")
    entries = entries_for(target, SuppressionReason.PRIVACY)
    assert {(e.kind, e.value) for e in entries} == {
        (IdentityKind.USERNAME, "alice_99"), (IdentityKind.USER_ID, "42"), (IdentityKind.PHONE, "+79161234567")
    }
    assert Outcome.PRIVACY_RESTRICTED in PRIVACY_OUTCOMES and Outcome.FLOOD_WAIT not in PRIVACY_OUTCOMES
