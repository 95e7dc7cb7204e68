"""The import's fast path for canonical rows gives exactly what full validation gives, or stands aside."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from models.imports import validate_rows
from models.targets import TargetIn, target_fast, validate_target

usernames = st.one_of(
    st.from_regex(r"[a-z][a-z0-9_]{2,30}[a-z0-9]", fullmatch=True),
    st.sampled_from(["alice_99", "@alice_99", "Alice_99", " alice_99", "alice_99\n", "t.me/alice_99", "abc",
                     "alice_", "9lives", "", "  "]),
    st.text(max_size=40),
    st.integers(),
)
user_ids = st.one_of(
    st.integers(min_value=-5, max_value=2**64), st.sampled_from(["12", " 12", "0012", "١٢", "", "1e3", "12.0"]),
    st.floats(allow_nan=True), st.booleans(),
)
names = st.one_of(st.text(max_size=12), st.sampled_from(["Ivan", " Ivan", "Ivan ", "", "  "]), st.integers())
extras = st.one_of(st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=8), st.integers()), max_size=3),
                   st.lists(st.text(max_size=3), max_size=2))
rows = st.fixed_dictionaries(
    {},
    optional={"username": st.one_of(st.none(), usernames), "user_id": st.one_of(st.none(), user_ids),
              "phone": st.one_of(st.none(), st.sampled_from(["+79161234567", "89161234567"])),
              "first_name": st.one_of(st.none(), names), "last_name": st.one_of(st.none(), names),
              "extra": st.one_of(st.none(), extras), "nickname": st.text(max_size=3)},
)


def full(row: dict[str, Any]) -> TargetIn | None:
    try:
        return TargetIn.model_validate(row)
    except ValidationError:
        return None


@settings(max_examples=3000)
@given(rows)
def test_the_fast_path_agrees_with_the_validators_whenever_it_answers(row: dict[str, Any]) -> None:
    fast = target_fast(row)
    if fast is not None:
        assert fast == full(row), row
        assert fast.model_dump() == TargetIn.model_validate(row).model_dump()
    # validate_target is the validators' result either way (or their error).
    expected = full(row)
    try:
        assert validate_target(row) == expected
    except ValidationError:
        assert expected is None


def test_the_fast_path_takes_the_common_rows() -> None:
    assert target_fast({"username": "alice_99", "user_id": "123", "first_name": "Ivan", "last_name": "Petrov"})
    assert target_fast({"user_id": 123, "extra": {"city": "Тверь"}})
    for row in ({"username": "@alice_99"}, {"phone": "+79161234567"}, {"username": "alice_99", "first_name": " x"},
                {"first_name": "Ivan"}, {"username": "alice_99", "nickname": "x"}):
        assert target_fast(row) is None, row


def test_validate_rows_reports_the_same_problems_through_the_fast_path() -> None:
    accepted, problems = validate_rows([{"username": "good_one", "user_id": 5}, {"username": "bad one"}])
    assert [t.key for t in accepted] == ["id:5"]
    assert problems[0]["row"] == 2 and "invalid username" in problems[0]["reason"]
