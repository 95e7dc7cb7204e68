"""The one loop every agent runs: validate, handle, dead-letter, keep going.

faust acks a message whose handler raised, silently (DESIGN.md, "Faust
facts"), so nothing may escape this loop. Messages that cannot be valid go to
the dead-letter topic; outages of PostgreSQL or the broker are waited out
with backoff instead, because the message itself is fine.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
import faust
from pydantic import ValidationError

from adapters import metrics
from adapters.logs import log_context
from models.events import Event, parse_event

from .publish import dead_letter

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]

# Errors that say "the world is down", not "the message is bad".
_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.InterfaceError,
)


class Unprocessable(Exception):
    """A handler's verdict that this message can never be processed."""


async def consume(
    stream: faust.StreamT,
    handler: Handler,
    dead_letters: faust.TopicT,
    *,
    accepted_types: frozenset[str],
    max_backoff: float = 10.0,
) -> None:
    async for key, raw in stream.items():
        topic_name = _topic_of(stream)
        try:
            event = parse_event(raw)
        except ValidationError as exc:
            await dead_letter(dead_letters, topic_name, key, raw, f"invalid event: {exc}")
            metrics.dead_letter(topic_name, metrics.DeadLetterReason.INVALID_EVENT)
            continue
        if event.type not in accepted_types:
            await dead_letter(dead_letters, topic_name, key, raw, f"unexpected event type {event.type!r}")
            metrics.dead_letter(topic_name, metrics.DeadLetterReason.UNEXPECTED_TYPE)
            continue
        backoff = 0.1
        while True:
            try:
                with log_context(event_id=event.id, **_ids_of(event)):
                    await handler(event)
                break
            except Unprocessable as exc:
                await dead_letter(dead_letters, topic_name, key, raw, str(exc))
                metrics.dead_letter(topic_name, metrics.DeadLetterReason.UNPROCESSABLE)
                break
            except _OUTAGES as exc:
                log.warning("outage while handling %s %s, retrying in %.1fs: %r", event.type, event.id, backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(max_backoff, backoff * 2)
            except Exception as exc:  # a bug must not stop the agent: park the message
                log.exception("handler failed on %s %s", event.type, event.id)
                await dead_letter(dead_letters, topic_name, key, raw, f"handler error: {exc!r}")
                metrics.dead_letter(topic_name, metrics.DeadLetterReason.HANDLER_ERROR)
                break


def _ids_of(event: Event) -> dict[str, str]:
    """task_id / account_id of the event's payload, for every log line its handling writes."""
    return {k: v for k in ("task_id", "account_id") if isinstance(v := getattr(event.data, k, None), str)}


def _topic_of(stream: faust.StreamT) -> str:
    event = stream.current_event
    return event.message.topic if event is not None else "?"
