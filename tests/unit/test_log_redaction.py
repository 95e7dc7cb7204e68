"""Redaction of secrets and phone numbers in logs (adapters/logs.py).

Each kind of secret is logged through every door a record has — the message,
its %-args, ``extra=`` fields (nested too) and exception tracebacks — and the
formatted line must not contain it. Phones keep at most their last 2 digits;
ordinary text passes untouched.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import secrets
import struct
from collections.abc import Iterator

import jwt
import orjson
import pytest

from adapters.logs import (
    AUDIT_LOGGER,
    JsonFormatter,
    RedactingFilter,
    TextFormatter,
    audit,
    log_context,
    logging_config,
    redact,
)


def _telethon_session() -> str:
    # Telethon's StringSession format: "1" + urlsafe base64 of (dc, ipv4, port, 256-byte auth key).
    packed = struct.pack(">B4sH256s", 2, bytes([149, 154, 167, 51]), 443, os.urandom(256))
    return "1" + base64.urlsafe_b64encode(packed).decode()


def _pyrogram_like_session() -> str:
    return "1BV" + base64.b64encode(os.urandom(260)).decode().rstrip("=")


SECRETS: dict[str, str] = {
    "jwt": jwt.encode({"sub": "user-1", "aud": "invite"}, "k" * 32, algorithm="HS256"),
    "bearer": "Bearer opaque-" + secrets.token_urlsafe(24),
    "vault_hvs": "hvs." + secrets.token_urlsafe(70),
    "vault_legacy": "s." + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24)),
    "telethon_session": _telethon_session(),
    "pyrogram_session": _pyrogram_like_session(),
    "api_hash": secrets.token_hex(16),
    "secret_id": "secret_id=" + secrets.token_hex(8) + "-x",
    "password": "password=Hunter2-" + secrets.token_hex(4),
    "token_pair": "token=" + secrets.token_hex(6) + "Q",
    "url_credentials": "postgresql://invite:S3cret" + secrets.token_hex(4) + "@db:5432/invite",
}


def _secret_part(kind: str, text: str) -> str:
    """The part of a sample that must not survive (the value, not the key or scheme)."""
    if kind == "bearer":
        return text.split(" ", 1)[1]
    if "=" in text and kind in {"secret_id", "password", "token_pair"}:
        return text.split("=", 1)[1]
    if kind == "url_credentials":
        return text.split(":")[2].split("@")[0]
    return text


PHONES: dict[str, str] = {
    "e164": "+79123456789",
    "e164_us": "+14155550100",
    "ru_formatted": "+7 (912) 345-67-89",
    "ru_national_parens": "8 (912) 345-67-89",
    "ru_national_bare": "89123456789",
    "ru_national_spaces": "8 912 345 67 89",
    "ru_no_plus": "79123456789",
    "us_formatted": "+1 415-555-0100",
    "us_national": "(415) 555-0100",
    "uk_spaces": "+44 20 7946 0958",
    "dotted": "+49.30.1234.5678",
}


def _leaks(phone: str, output: str) -> bool:
    """Whether more than the last 2 digits of ``phone`` are readable in ``output``."""
    digits = "".join(c for c in phone if c.isdigit())
    out_digits = "".join(c for c in output if c.isdigit())
    # Any run of 3 consecutive digits of the number (beyond the kept tail) is a leak.
    return any(digits[i : i + 3] in out_digits for i in range(len(digits) - 2))


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger whose handler is set up like the service's (filter + JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"test.redaction.{secrets.token_hex(4)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


def _lines(stream: io.StringIO) -> list[dict]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secret_masked_in_message(capture, kind: str) -> None:
    logger, stream = capture
    logger.info(f"calling the service with {SECRETS[kind]} now")
    out = stream.getvalue()
    assert _secret_part(kind, SECRETS[kind]) not in out
    assert "[REDACTED]" in out
    assert "calling the service with" in _lines(stream)[0]["message"]


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secret_masked_in_args(capture, kind: str) -> None:
    logger, stream = capture
    logger.warning("request failed: %s (attempt %d)", SECRETS[kind], 3)
    out = stream.getvalue()
    assert _secret_part(kind, SECRETS[kind]) not in out
    assert "(attempt 3)" in out


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secret_masked_in_extra_fields(capture, kind: str) -> None:
    logger, stream = capture

    class Opaque:
        def __str__(self) -> str:
            return f"Opaque({SECRETS[kind]})"

    logger.info(
        "with extras",
        extra={"header": SECRETS[kind], "nested": {"list": [SECRETS[kind], 1]}, "obj": Opaque(), "n": 7},
    )
    out = stream.getvalue()
    assert _secret_part(kind, SECRETS[kind]) not in out
    line = _lines(stream)[0]
    assert line["n"] == 7  # non-string extras keep their type
    assert line["nested"]["list"][1] == 1


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_secret_masked_in_exception_traceback(capture, kind: str) -> None:
    logger, stream = capture
    secret = SECRETS[kind]
    try:
        try:
            raise KeyError(f"inner {secret}")
        except KeyError as inner:
            raise RuntimeError(f"outer failure with {secret}") from inner
    except RuntimeError:
        logger.exception("handler failed")
    line = _lines(stream)[0]
    assert "Traceback (most recent call last)" in line["exc"]
    assert "RuntimeError: outer failure with" in line["exc"]
    assert _secret_part(kind, secret) not in stream.getvalue()


@pytest.mark.parametrize("kind", sorted(PHONES))
def test_phone_masked_keeping_last_two_digits(capture, kind: str) -> None:
    logger, stream = capture
    phone = PHONES[kind]
    logger.info("inviting %s", phone, extra={"target": {"phone": phone}})
    try:
        raise ValueError(f"bad target {phone}")
    except ValueError:
        logger.exception("target %s failed", phone)
    info, error = _lines(stream)
    # Only where the phone was logged: timestamps and line numbers elsewhere are digits too.
    logged = [info["message"], info["target"]["phone"], error["message"], error["exc"].splitlines()[-1]]
    assert not any(_leaks(phone, text) for text in logged), logged
    digits = "".join(c for c in phone if c.isdigit())
    assert info["message"] == f"inviting ***{digits[-2:]}"


@pytest.mark.parametrize(
    "text",
    [
        "task 3f2a5c1e-1b2c-4d5e-8f90-123456789abc: running -> paused (applied)",
        "2024-05-01T12:30:45.123+00:00 account acc-7 cooldown 35.5s until 2024-05-01 12:31:20",
        "import 0c8f7a4e-2d0b-4c55-9d13-5b0f3a2e7c11 into task t-1: 998 accepted, 1 duplicate, 1 invalid",
        "FLOOD_WAIT 30 seconds for target 42 (user_id=5123456789, username=durov)",
        "GET https://integration.internal/v1/calls/task%3A42%3A1 -> HTTP 503, retrying",
        "idempotency_key=t-1:42:3 attempt 2 of 3, offset 1234567 on partition 5",
        "session expired; token refresh scheduled; password policy ok",
        "version 1.2.3, 12 workers, lag 100000",
    ],
)
def test_ordinary_text_untouched(capture, text: str) -> None:
    logger, stream = capture
    logger.info(text)
    assert redact(text) == text
    assert _lines(stream)[0]["message"] == text


def test_redaction_is_idempotent() -> None:
    text = " ".join([*SECRETS.values(), *PHONES.values()])
    once = redact(text)
    assert redact(once) == once


def test_quoted_values_masked_whole() -> None:
    assert redact("{'password': 'two words'}") == "{'password': '[REDACTED]'}"
    assert redact('{"api_key": "a b", "Authorization": "raw"}') == '{"api_key": "[REDACTED]", "Authorization": "[REDACTED]"}'


def test_context_ids_and_extra_ids_in_json(capture) -> None:
    logger, stream = capture
    with log_context(task_id="t-1", event_id="e-1"):
        with log_context(account_id="acc-1"):
            logger.info("inside")
        logger.info("override", extra={"task_id": "t-2"})
    logger.info("outside")
    inside, override, outside = _lines(stream)
    assert (inside["task_id"], inside["account_id"], inside["event_id"]) == ("t-1", "acc-1", "e-1")
    assert override["task_id"] == "t-2" and "account_id" not in override
    assert not {"task_id", "account_id", "event_id"} & set(outside)
    assert {"ts", "level", "logger", "message"} <= set(outside)
    assert outside["level"] == "INFO" and outside["ts"].endswith("Z")


def test_log_context_rejects_unknown_fields() -> None:
    with pytest.raises(TypeError), log_context(user_phone="+79123456789"):
        pass


def test_text_formatter_redacts_and_appends_ids() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())  # no filter: the formatter redacts on its own
    logger = logging.getLogger("test.redaction.text")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        with log_context(task_id="t-9"):
            logger.warning("send to %s with %s", "+79123456789", SECRETS["jwt"])
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "***89" in out and SECRETS["jwt"] not in out and "9123456" not in out
    assert out.rstrip().endswith("[task_id=t-9]")


@pytest.fixture
def configured_root() -> Iterator[None]:
    """Apply the service's dictConfig to the root logger and restore it afterwards."""
    root, audit_logger = logging.getLogger(), logging.getLogger(AUDIT_LOGGER)
    saved = (root.handlers[:], root.level, audit_logger.level)
    yield
    for handler in root.handlers[:]:
        if handler not in saved[0]:
            root.removeHandler(handler)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    audit_logger.setLevel(saved[2])


def test_logging_config_writes_redacted_json_lines(configured_root, capsys) -> None:
    existing = logging.getLogger("test.redaction.existing")  # created before configuring
    logging.config.dictConfig(logging_config("WARNING", json=True))
    existing.warning("token=%s for %s", "abc123", "+79123456789")
    existing.info("below the level")
    audit("user-1", "task.cancel", "t-5", reason="asked by +7 912 345 67 89")
    lines = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["logger"] for x in lines] == ["test.redaction.existing", AUDIT_LOGGER]
    warning, entry = lines
    assert warning["message"] == "token=[REDACTED] for ***89"
    # The audit trail is kept although the service logs warnings only.
    assert entry["level"] == "INFO"
    assert (entry["actor"], entry["action"], entry["task_id"]) == ("user-1", "task.cancel", "t-5")
    assert entry["details"] == {"reason": "asked by ***89"}
    assert entry["ts"]
