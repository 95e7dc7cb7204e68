"""Every topic the service uses, declared in one place.

Keys and values are raw bytes on the wire: keys are ids as UTF-8, values are
JSON envelopes validated by pydantic in the agents (``models.events``).
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

from models.settings import Settings

TOPIC_NAMES = ("tasks", "targets", "account-work", "results", "accounts", "dead-letters")
# What the workers' consumer group reads (the other two are for other services): lag is measured on these.
CONSUMED_TOPIC_NAMES = ("tasks", "targets", "account-work", "results")


@dataclass(frozen=True)
class Topics:
    """The app's topics, by role."""

    tasks: faust.TopicT
    targets: faust.TopicT
    account_work: faust.TopicT
    results: faust.TopicT
    accounts: faust.TopicT
    dead_letters: faust.TopicT


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    def topic(name: str) -> faust.TopicT:
        return app.topic(
            settings.topic(name),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
            internal=False,
        )

    return Topics(*(topic(name) for name in TOPIC_NAMES))


def topic_partitions(settings: Settings, table_names: list[str]) -> dict[str, int]:
    """Every topic to create up front, changelogs included."""
    names = [settings.topic(n) for n in TOPIC_NAMES]
    names += [f"{settings.app_id}-{t}-changelog" for t in table_names]
    return {name: settings.topic_partitions for name in names}


def table_schema() -> faust.Schema:
    """Tables keyed like our topics (raw UTF-8 ids), so table_route finds the owner."""
    return faust.Schema(key_type=str, key_serializer="raw", value_serializer="json")
