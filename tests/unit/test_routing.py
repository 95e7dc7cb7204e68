"""A starting worker answers 503 (retry), not 500, when it cannot place a table key yet."""

from types import SimpleNamespace

import pytest

from streams.routing import Router


class _NoMetadataAssignor:
    def key_store(self, topic: str, key: bytes) -> object:
        # What aiokafka does when the producer has no metadata for the topic yet.
        return list(None)  # type: ignore[call-overload]


def test_missing_topic_metadata_becomes_not_ready() -> None:
    router = Router.__new__(Router)
    table = SimpleNamespace(
        changelog_topic=SimpleNamespace(get_topic_name=lambda: "t-changelog", prepare_key=lambda k, h: (k.encode(), h))
    )
    router.app = SimpleNamespace(tables={"task-stats": table})
    router._assignor = _NoMetadataAssignor()
    with pytest.raises(KeyError):  # faust's route_req turns KeyError into 503
        router.key_store("task-stats", "some-task")
