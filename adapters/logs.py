"""Logging: JSON lines for ELK, redaction of secrets and phones, the audit log.

Logging configuration is an edge (it decides what leaves the process), so it
lives in ``adapters``. Three parts:

* :class:`RedactingFilter`, installed on every handler we configure: it masks
  JWTs, bearer/basic credentials, Vault tokens, Telegram session strings,
  api_hash values, ``password=``/``token=``/``secret_id=``-style pairs,
  credentials in URLs and phone numbers, in the message, its args, ``extra=``
  fields and exception/stack text. It works on the *record*, so every handler
  (and formatter) downstream sees only masked text.
* :class:`JsonFormatter`: one JSON object per line with ``ts``, ``level``,
  ``logger``, ``message``, the ids ``task_id`` / ``account_id`` / ``event_id``
  (from ``extra=`` or from :func:`log_context`), other ``extra=`` fields and
  ``exc``. :class:`TextFormatter` is the same for humans.
* :func:`audit`: who did what to which task, on the ``invite.audit`` logger.

faust's worker (mode) clears the root handlers and calls ``dictConfig`` with
its own colored config at start-up; pass :func:`logging_config` as
``faust.Worker(..., logging_config=...)`` so it installs ours instead, or call
:func:`configure_logging` for commands that run no worker.
"""

from __future__ import annotations

import logging
import logging.config
import re
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

__all__ = [
    "AUDIT_LOGGER",
    "CONTEXT_FIELDS",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "audit",
    "configure_logging",
    "log_context",
    "logging_config",
    "redact",
]

AUDIT_LOGGER = "invite.audit"
CONTEXT_FIELDS = ("task_id", "account_id", "event_id")
MASK = "[REDACTED]"

# --------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------

# Characters of base64 (standard and URL-safe); a secret never starts or ends
# in the middle of a run of them.
_B64 = r"A-Za-z0-9+/_\-"

# Secret-bearing keys in key=value / "key": "value" / header form. Any key
# *ending* in one of these words (access_token, X-Vault-Token, INVITE_JWT_SECRET).
_SECRET_KEY = (
    r"(?:token|secret|secret[_-]?id|password|passwd|pwd|passphrase|api[_-]?hash|api[_-]?key"
    r"|session(?:[_-]?string)?|auth[_-]?key|private[_-]?key|credentials?|authorization)"
)
_KEY_VALUE = re.compile(
    rf"(?i)(?<![A-Za-z0-9])((?:[A-Za-z0-9]+[_\-.])*{_SECRET_KEY})"  # the key
    r"(['\"]?)(\s*[:=]\s*)"  # closing quote of a quoted key, the separator
    # Already masked, or a scheme the bearer rule has masked after: leave it
    # (redaction is idempotent).
    rf"(?!{re.escape(MASK)}|(?i:bearer|basic)\s)"
    r"(\"[^\"]*\"|'[^']*'|[^\s'\",;&}\])]+)"  # the value, quoted or bare
)

# (pattern, replacement); order matters: the specific shapes first, then the
# key=value pairs (which would otherwise mask only "Bearer" of a header), then phones.
_RULES: list[tuple[re.Pattern[str], str]] = [
    # user:password@ in URLs (postgresql://invite:secret@db/invite)
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/@]+):([^\s@/]+)@"), rf"\1:{MASK}@"),
    # JWT: three base64url parts, the first of which is a JSON header ('{"' = eyJ)
    (re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"), MASK),
    # HTTP credentials
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]{6,}"), rf"\1\2{MASK}"),
    # Vault tokens: hvs./hvb./hvr. (1.10+) and legacy s./b./r. service/batch/recovery
    (re.compile(r"\bhv[sbr]\.[A-Za-z0-9_\-]{20,}"), MASK),
    (re.compile(r"(?<![\w.])[sbr]\.[A-Za-z0-9]{24,}\b"), MASK),
    # Telethon StringSession: version "1" + base64 of dc, address and auth key (~350 chars)
    (re.compile(rf"(?<![{_B64}=])1[{_B64}]{{60,}}={{0,2}}"), MASK),
    # any other very long base64 run (Pyrogram sessions, raw auth keys, ...)
    (re.compile(rf"(?<![{_B64}=])[{_B64}]{{100,}}={{0,2}}"), MASK),
    # Telegram api_hash: 32 hex digits
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])"), MASK),
]

# Phones. International: "+" then 7-15 digits with at most two separators
# between digits (+79123456789, +7 (912) 345-67-89, +44 20 7946 0958).
# National with an area code in parentheses (8 (912) 345-67-89, (415) 555-0100),
# and Russian mobiles without "+" (89123456789, 8 912 345 67 89), the common
# shapes in Russian audiences. Bare digit runs otherwise stay: they are ids.
_PHONES = [
    re.compile(r"(?<![\w+])\+\d(?:[\s().\-]{0,2}\d){6,14}(?!\d)"),
    re.compile(r"(?<![\w+])(?:[78][\s\-]?)?\(\d{3,5}\)[\s\-]?\d{1,4}(?:[\s.\-]?\d{1,4}){1,3}(?!\d)"),
    re.compile(r"(?<![\w.:/\-+])[78][\s\-]?9\d{2}[\s\-]?\d{3}[\s\-]?\d{2}[\s\-]?\d{2}(?![\w])"),
]


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if not 7 <= len(digits) <= 15:
        return match.group(0)
    return "***" + digits[-2:]  # the last two digits tell numbers apart in a log, no more


def _mask_key_value(match: re.Match[str]) -> str:
    key, quote, sep, value = match.groups()
    if value[:1] in "'\"":
        return f"{key}{quote}{sep}{value[0]}{MASK}{value[0]}"
    return f"{key}{quote}{sep}{MASK}"


def redact(text: str) -> str:
    """``text`` with every secret and phone number masked (idempotent)."""
    if not text:
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    text = _KEY_VALUE.sub(_mask_key_value, text)
    for pattern in _PHONES:
        text = pattern.sub(_mask_phone, text)
    return text


def _redact_value(value: Any) -> Any:
    """Redact strings inside ``extra=`` values; other objects become redacted text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    return redact(str(value))


# Attributes every LogRecord has; anything else on a record came from extra=.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

_context: ContextVar[Mapping[str, str]] = ContextVar("invite_log_context", default=MappingProxyType({}))


@contextmanager
def log_context(**ids: str | int | None) -> Iterator[None]:
    """Attach ``task_id`` / ``account_id`` / ``event_id`` to every line logged inside.

    Nests (inner values win) and follows asyncio tasks started inside, since
    they copy the context.
    """
    unknown = set(ids) - set(CONTEXT_FIELDS)
    if unknown:
        raise TypeError(f"log_context takes only {CONTEXT_FIELDS}, not {sorted(unknown)}")
    token = _context.set({**_context.get(), **{k: str(v) for k, v in ids.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def _redact_record(record: logging.LogRecord) -> None:
    if getattr(record, "_invite_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string must not lose the line (or skip redaction)
        message = f"{record.msg!s} {record.args!r}"
    record.msg, record.args = redact(message), None
    if record.exc_info:
        if not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        # The exception object still holds the raw text; no formatter may render it again.
        record.exc_info = None
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    for key, value in list(record.__dict__.items()):
        if key not in _STANDARD:
            record.__dict__[key] = _redact_value(value)
    # Ids from log_context, read now: the filter runs in the caller's context.
    for key, value in _context.get().items():
        if getattr(record, key, None) is None:
            setattr(record, key, value)
    record._invite_redacted = True


class RedactingFilter(logging.Filter):
    """Masks secrets and phones in a record before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, ids, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        _redact_record(record)  # also safe on a handler configured without the filter
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extras = _extras(record)
        for key in CONTEXT_FIELDS:
            if extras.get(key) is not None:
                line[key] = extras.pop(key)
        for key, value in extras.items():
            line.setdefault(key, value)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with the ids appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        _redact_record(record)
        text = super().format(record)
        ids = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS if getattr(record, k, None) is not None)
        if not ids:
            return text
        head, sep, tail = text.partition("\n")  # ids on the first line, before a traceback
        return f"{head} [{ids}]{sep}{tail}"


def logging_config(level: str | int = "INFO", json: bool = True) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: one stdout handler, redacted, JSON or text.

    Also what ``faust.Worker(logging_config=...)`` takes.
    """
    return {
        "version": 1,
        # Modules create their loggers at import, before this runs; keep them.
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter}},
        "formatters": {"default": {"()": JsonFormatter if json else TextFormatter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "filters": ["redact"],
                "formatter": "default",
            }
        },
        # The audit trail is kept even when the service logs only warnings.
        # httpx logs every request at INFO: one line per target sent.
        "loggers": {AUDIT_LOGGER: {"level": "INFO"}, "httpx": {"level": "WARNING"}},
        "root": {"level": logging.getLevelName(level) if isinstance(level, int) else level.upper(),
                 "handlers": ["default"]},
    }


def configure_logging(level: str | int = "INFO", json: bool = True) -> None:
    """Replace the root logging setup with :func:`logging_config`."""
    logging.config.dictConfig(logging_config(level, json))


# --------------------------------------------------------------------------
# Audit
# --------------------------------------------------------------------------

_audit_log = logging.getLogger(AUDIT_LOGGER)


def audit(actor: str, action: str, task_id: str | None, **details: Any) -> None:
    """Record that ``actor`` did ``action`` to ``task_id`` (the line's ``ts`` is when).

    ``details`` go in a nested object so no key can clash with the record's
    own fields; they are redacted like everything else.
    """
    _audit_log.info(
        "%s %s task %s",
        actor, action, task_id,
        extra={"audit": True, "actor": actor, "action": action, "task_id": task_id, "details": details},
    )
