"""Sending events: typed envelopes to topics, unprocessable messages to dead letters."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import faust
import orjson

from models.events import _Envelope, dump_event

log = logging.getLogger(__name__)

_MAX_PARKED_BYTES = 64 * 1024


async def send_event(topic: faust.TopicT, key: str, event: _Envelope) -> None:
    await topic.send(key=key.encode(), value=dump_event(event))


async def dead_letter(
    dead_letters: faust.TopicT, source_topic: str, key: bytes | None, raw: bytes | None, reason: str
) -> None:
    """Park a message we cannot process, with the reason, and carry on."""
    log.warning("dead-lettering a message from %s: %s", source_topic, reason[:500])
    # A poison message may be huge; the parked copy must still fit in a message.
    truncated = raw is not None and len(raw) > _MAX_PARKED_BYTES
    value = orjson.dumps(
        {
            "topic": source_topic,
            "reason": reason[:2000],
            "at": datetime.now(UTC).isoformat(),
            "key": key.decode("utf-8", "replace") if key else None,
            "value": raw[:_MAX_PARKED_BYTES].decode("utf-8", "replace") if raw else None,
            "value_truncated": truncated,
            "value_size": len(raw) if raw else 0,
        }
    )
    await dead_letters.send(key=key, value=value)
