"""Targets (the audience): identity, normalization and lifecycle states.

Every import path (API, files, the parsing service) ends in :class:`TargetIn`,
so the normalization rules live here once: usernames to their canonical
lower-case form, phones to E.164, user ids to positive integers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qs, urlsplit

import phonenumbers
from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationInfo,
    field_validator,
    model_validator,
)


class TargetStatus(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    INVITED = "invited"
    ALREADY_MEMBER = "already_member"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


TERMINAL_TARGET_STATUSES = frozenset(
    {
        TargetStatus.INVITED,
        TargetStatus.ALREADY_MEMBER,
        TargetStatus.SKIPPED,
        TargetStatus.FAILED,
        TargetStatus.CANCELLED,
    }
)


class IdentityKind(StrEnum):
    """The three ways a target can be addressed (and suppressed)."""

    USERNAME = "username"
    USER_ID = "user_id"
    PHONE = "phone"


# Region assumed for phone numbers written without a country code ("8 916 ...").
# Callers pass their configured region through the validation context
# (``TargetIn.model_validate(row, context={"default_region": "KZ"})``).
DEFAULT_PHONE_REGION = "RU"

# Telegram's rule (telegram.org/faq, "What can I use as my username?"): a-z,
# 0-9 and underscores, case-insensitive, at least 5 characters; the server
# (account.checkUsername -> USERNAME_INVALID) also requires a leading letter,
# allows at most 32 characters and no trailing underscore. Collectible
# usernames sold on Fragment may be 4 characters (telegram.org/faq, collectible
# usernames), so 4 is the floor here: refusing a real username loses a target,
# letting a wrong one through only costs one username_not_found answer.
_USERNAME = re.compile(r"^[a-z][a-z0-9_]{2,30}[a-z0-9]$")
_LINK_HOSTS = frozenset({"t.me", "telegram.me", "telegram.dog"})
# t.me paths that are not usernames: invite links, sticker sets, proxies...
_RESERVED_PATHS = frozenset(
    {"joinchat", "addstickers", "addemoji", "addtheme", "proxy", "socks", "share", "login", "c", "iv", "setlanguage"}
)
_MAX_USER_ID = 2**63 - 1  # PostgreSQL bigint


def _username_from_link(value: str) -> str:
    """The username inside a t.me style link or tg:// URI; ``value`` when it is no link."""
    lowered = value.lower()
    if lowered.startswith("tg://"):
        query = parse_qs(urlsplit(value).query)
        return (query.get("domain") or [""])[0]
    has_scheme = "://" in lowered
    parts = urlsplit(value if has_scheme else f"//{value}")
    host = (parts.hostname or "").removeprefix("www.")
    if host in _LINK_HOSTS:
        segments = [s for s in parts.path.split("/") if s]
        if segments and segments[0].lower() == "s":  # t.me/s/name is a channel's web preview
            segments = segments[1:]
        if not segments or segments[0].lower() in _RESERVED_PATHS or segments[0].startswith("+"):
            return ""
        return segments[0]
    if host.endswith(".t.me") and host.count(".") == 2:  # name.t.me
        return host.removesuffix(".t.me")
    if has_scheme:
        return ""  # a link to somewhere else is never a username
    return value


def normalize_username(raw: str) -> str:
    """``@Name``, ``t.me/Name``, ``https://telegram.me/Name`` and ``Name`` all become ``name``.

    Raises ValueError naming the rule that was broken.
    """
    value = raw.strip()
    if value.startswith("@"):
        value = value[1:]
    elif "." in value or ":" in value:
        value = _username_from_link(value)
    value = value.strip().lower()
    if not _USERNAME.match(value):
        raise ValueError(
            f"invalid username {raw!r}: 4-32 chars of letters, digits and underscore,"
            " starting with a letter, not ending with underscore"
        )
    return value


def normalize_phone(raw: str | int, default_region: str | None = DEFAULT_PHONE_REGION) -> str:
    """A phone number in E.164 (``+79161234567``); raises ValueError.

    Numbers without a country code are read in ``default_region``. The error
    never repeats the number: phones are personal data and reasons get logged.
    """
    text = str(raw).strip().removeprefix("tel:")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        hint = "" if text.startswith("+") or default_region else " (no country code and no default region)"
        raise ValueError(f"not a phone number{hint}") from None
    if not phonenumbers.is_valid_number(number):
        region = phonenumbers.region_code_for_number(number) or default_region or "unknown region"
        raise ValueError(f"not a valid phone number for {region}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_user_id(raw: object) -> int:
    """A platform user id: a positive integer, also from ``"123"`` or a spreadsheet's ``123.0``."""
    # ValueError, not TypeError, for every bad value: pydantic reports only the former as invalid input.
    if isinstance(raw, bool):  # bool is an int subclass; True is no user id
        raise ValueError("user_id must be a positive integer")  # noqa: TRY004
    value: int
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        value = int(raw.strip())
    else:
        raise ValueError("user_id must be a positive integer")
    if not 0 < value <= _MAX_USER_ID:
        raise ValueError("user_id must be a positive integer below 2^63")
    return value


def normalize_identity(kind: IdentityKind, raw: object, default_region: str | None = DEFAULT_PHONE_REGION) -> str:
    """The canonical text form of one identity, as stored in suppression lists."""
    if kind is IdentityKind.USERNAME:
        return normalize_username(str(raw))
    if kind is IdentityKind.USER_ID:
        return str(normalize_user_id(raw))
    return normalize_phone(raw if isinstance(raw, (str, int)) else str(raw), default_region)


def _blank_to_none(value: Any) -> Any:
    # Spreadsheets, CSV files and forms spell "no value" as an empty cell.
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _region(info: ValidationInfo) -> str | None:
    context = info.context if isinstance(info.context, Mapping) else {}
    return context.get("default_region", DEFAULT_PHONE_REGION)


class TargetIn(BaseModel):
    """One audience row as it arrives from any import path, normalized.

    Validation is idempotent: a normalized target dumped and validated again
    is the same target, so the importer may re-validate what a file import
    already normalized.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str | None = None
    user_id: int | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    extra: dict[str, str] | None = None

    @field_validator("username", "first_name", "last_name", mode="before")
    @classmethod
    def _blank_is_missing(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        return None if value is None else normalize_username(value)

    @field_validator("user_id", mode="before")
    @classmethod
    def _user_id(cls, value: Any) -> int | None:
        value = _blank_to_none(value)
        return None if value is None else normalize_user_id(value)

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: Any, info: ValidationInfo) -> str | None:
        value = _blank_to_none(value)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # a spreadsheet keeps 79161234567 as a float
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ValueError("not a phone number")  # noqa: TRY004 - pydantic reports ValueError only
        return normalize_phone(value, _region(info))

    @model_validator(mode="after")
    def _has_identity(self) -> TargetIn:
        if self.username is None and self.user_id is None and self.phone is None:
            raise ValueError("a target needs one of username, user_id or phone")
        return self

    @property
    def key(self) -> str:
        """The identity used to de-duplicate targets within a task."""
        if self.user_id is not None:
            return f"id:{self.user_id}"
        if self.username is not None:
            return f"u:{self.username}"
        return f"p:{self.phone}"

    @property
    def identities(self) -> list[tuple[IdentityKind, str]]:
        """Every identity this target carries, in normalized text form."""
        found: list[tuple[IdentityKind, str]] = []
        if self.user_id is not None:
            found.append((IdentityKind.USER_ID, str(self.user_id)))
        if self.username is not None:
            found.append((IdentityKind.USERNAME, self.username))
        if self.phone is not None:
            found.append((IdentityKind.PHONE, self.phone))
        return found


_FAST_KEYS = frozenset({"username", "user_id", "phone", "first_name", "last_name", "extra"})


def _plain_text(value: object) -> bool:
    # What TargetIn keeps as it is: text with no surrounding whitespace that is not blank.
    return type(value) is str and bool(value) and value == value.strip()


def target_fast(data: Mapping[str, Any]) -> TargetIn | None:
    """``TargetIn.model_validate(data)`` for a row already in canonical form; None for anything else.

    Imports validate millions of rows, most of them already normalized (our
    own batches, parser output): for those, this gives exactly what the
    validators would give at a fraction of their cost. Anything it is not
    sure about (phones, links, ``@names``, odd types, blanks) returns None and
    takes the full validation. tests/unit/test_import_fast_path.py checks the
    two agree on generated rows.
    """
    if not data.keys() <= _FAST_KEYS or data.get("phone") is not None:
        return None
    username = data.get("username")
    if username is not None and not (type(username) is str and _USERNAME.fullmatch(username)):
        return None
    user_id = data.get("user_id")
    if user_id is not None:
        if type(user_id) is str and user_id.isascii() and user_id.isdigit():
            user_id = int(user_id)
        if type(user_id) is not int or not 0 < user_id <= _MAX_USER_ID:
            return None
    if username is None and user_id is None:
        return None
    first_name, last_name = data.get("first_name"), data.get("last_name")
    if (first_name is not None and not _plain_text(first_name)) or (
        last_name is not None and not _plain_text(last_name)
    ):
        return None
    extra = data.get("extra")
    if extra is not None:
        if type(extra) is not dict or not all(type(k) is str and k == k.strip() and type(v) is str and v == v.strip()
                                              for k, v in extra.items()):
            return None
        extra = dict(extra)
    return TargetIn.model_construct(
        username=username, user_id=user_id, phone=None, first_name=first_name, last_name=last_name, extra=extra
    )


def validate_target(data: Mapping[str, Any], context: Mapping[str, Any] | None = None) -> TargetIn:
    """A target from one row: the fast path when the row is canonical, the validators otherwise."""
    fast = target_fast(data)
    return fast if fast is not None else TargetIn.model_validate(data, context=context)


class ClaimedTarget(BaseModel):
    """A target an account's scheduler has claimed for one attempt."""

    id: int
    task_id: str
    owner: str
    account_id: str
    attempt: int
    kind: str
    platform: str
    chat: str | None
    message_template: str | None
    username: str | None
    user_id: int | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    claimed_at: datetime

    @property
    def idempotency_key(self) -> str:
        # One key per attempt: attempt n+1 only exists once attempt n is known
        # not to have delivered, so a retry can never double-deliver.
        return f"{self.task_id}:{self.id}:{self.attempt}"
