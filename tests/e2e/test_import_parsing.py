"""The parsing service's two ways in, end to end on the real parts.

(a) Push: the parsing service publishes ``targets.imported`` to the targets
    topic with its own Kafka client. Here that client is librdkafka
    (confluent-kafka), configured as docs/asyncapi.yaml says (key = task id as
    UTF-8, ``partitioner=murmur2_random``), plus one producer left on
    librdkafka's default partitioner (CRC32), whose batch lands on another
    partition than the contract's: both must be imported.
(b) Pull: ``POST /api/v1/import/parsing`` reads a completed parsing task's
    results page by page from the fake parsing service over HTTP (with
    failures to retry), shows its progress while it runs, and feeds the same
    pipeline as a file.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Producer

from models.events import TargetsImported, TargetsImportedData, dump_event
from tests.support.fake_parsing import FakeParsingService
from tests.support.import_service import ImportService, import_service, wait_import
from tests.support.stack import TestStack as RunningStack
from tests.support.worker import wait_for

pytestmark = pytest.mark.e2e

PARTITIONS = 4  # the test workers' INVITE_TOPIC_PARTITIONS


@pytest.fixture(scope="module")
def parsing() -> Iterator[FakeParsingService]:
    with FakeParsingService() as fake:
        yield fake


@pytest.fixture(scope="module")
def service(stack: RunningStack, parsing: FakeParsingService,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImportService]:
    env = {"INVITE_PARSING_SERVICE_URL": parsing.url, "INVITE_PARSING_SERVICE_TOKEN": parsing.token,
           "INVITE_PARSING_SERVICE_PAGE_SIZE": "1000"}
    with import_service(stack, tmp_path_factory.mktemp("parsing"), env) as running:
        yield running


# --- (a) the parsing service as an outside producer ------------------------------------------------------


def murmur2_partition(key: bytes) -> int:
    """Where the Java client, aiokafka and faust put a key (and librdkafka with murmur2_random)."""
    partitions = list(range(PARTITIONS))
    return int(DefaultPartitioner()(key, partitions, partitions))


def crc32_partition(key: bytes) -> int:
    """Where librdkafka's default partitioner (consistent_random) puts a non-empty key."""
    return zlib.crc32(key) % PARTITIONS


def produce(bootstrap: str, topic: str, key: bytes, value: bytes, partitioner: str | None) -> int:
    """Produce one message with librdkafka and return the partition it was stored in."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "enable.idempotence": False}
    if partitioner is not None:
        config["partitioner"] = partitioner
    producer = Producer(config)
    delivered: list[Any] = []
    producer.produce(topic, key=key, value=value, on_delivery=lambda err, msg: delivered.append((err, msg)))
    assert producer.flush(30) == 0
    (err, msg), = delivered
    assert err is None, err
    return int(msg.partition())


def parsed_batch(owner: str, task_id: str, start: int, n: int) -> bytes:
    """A targets.imported event as the parsing service builds it (JSON, per the AsyncAPI document)."""
    event = TargetsImported(
        user_id=owner, source="parsing-service",
        data=TargetsImportedData(task_id=task_id, targets=[
            {"username": f"pushed_{i:04d}", "user_id": 50_000 + i, "first_name": "Parsed"} for i in range(start, start + n)
        ] + [{"username": "not valid!"}]),
    )
    return dump_event(event)


def test_batches_from_a_librdkafka_producer_are_imported_on_any_partition(service: ImportService) -> None:
    http = service.client("parsing-ann")
    # A task whose key the two partitioners place differently, so the test proves something.
    while True:
        task_id = service.new_task(http)
        key = task_id.encode()
        if murmur2_partition(key) != crc32_partition(key):
            break
    topic = f"{service.campaign.app_id}.targets"
    bootstrap = service.campaign.stack.kafka

    by_contract = produce(bootstrap, topic, key, parsed_batch("parsing-ann", task_id, 0, 300), "murmur2_random")
    by_default = produce(bootstrap, topic, key, parsed_batch("parsing-ann", task_id, 300, 200), None)
    assert by_contract == murmur2_partition(key)      # the contract's partitioner is the Java/aiokafka one
    assert by_default == crc32_partition(key) != by_contract

    wait_for(lambda: len(service.batches(task_id)) == 2, 60, what="both batches applied")
    targets = service.targets(task_id)
    assert sorted(t["user_id"] for t in targets) == [50_000 + i for i in range(500)]
    assert all(t["username"] == f"pushed_{t['user_id'] - 50_000:04d}" and t["status"] == "pending" for t in targets)
    batches = sorted((b["accepted"], b["invalid"]) for b in service.batches(task_id))
    assert batches == [(200, 1), (300, 1)]


# --- (b) pulling results over HTTP ---------------------------------------------------------------------


def result(i: int) -> dict[str, Any]:
    if i % 1000 == 999:
        return {"username": f"bad name {i}"}                   # invalid: counted, named by position
    if i % 500 == 7:
        return {"username": f"Pulled_{i - 1:05d}"}              # the previous item again, other spelling
    return {"username": f"pulled_{i:05d}", "phone": None, "city": "Тверь" if i % 2 else None}


def test_a_parsing_task_is_pulled_page_by_page_with_progress(service: ImportService,
                                                              parsing: FakeParsingService) -> None:
    total = 4_500
    parsing.add_task("pt-big", count=total, item=result)
    parsing.fail_next(2, 503, retry_after=0, path_contains="/results")
    gate = parsing.hold("after-3000")
    http = service.client("parsing-ann")
    task_id = service.new_task(http)
    try:
        response = http.post("/api/v1/import/parsing", json={"task_id": task_id, "parsing_task_id": "pt-big"})
        assert response.status_code == 202, response.text
        import_id = response.json()["import_id"]
        assert response.json()["status"] == "fetching"
        # Progress while it runs: three pages read, the fourth held by the fake.
        seen = wait_for(lambda: (v := http.get(f"/api/v1/imports/{import_id}").json())["progress"]["rows_read"] == 3000
                        and v, 60, what="three pages read")
        assert seen["status"] == "fetching" and seen["progress"]["rows_published"] == 0
        assert service.targets(task_id) == []  # nothing is published before every page is read
    finally:
        gate.set()
    final = wait_import(http, import_id, 120)
    assert final["status"] == "completed", final
    invalid = [i for i in range(total) if i % 1000 == 999]
    repeats = [i for i in range(total) if i % 500 == 7]
    report = final["report"]
    assert (report["rows"], report["rejected"], report["duplicate"]) == (total, len(invalid), len(repeats))
    assert [p["row"] for p in report["problems"]] == [i + 1 for i in invalid]
    expected = {f"pulled_{i:05d}" for i in range(total) if i not in invalid and i not in repeats}
    targets = service.targets(task_id)
    assert {t["username"] for t in targets} == expected and len(targets) == len(expected)
    assert final["result"]["accepted"] == len(expected)
    assert final["progress"]["rows_read"] == total and final["progress"]["percent"] == 100.0
    statuses = [r.status for r in parsing.requests if r.path.endswith("pt-big/results")]
    assert statuses.count(503) == 2 and statuses.count(200) == 5


def test_a_parsing_service_that_fails_midway_imports_nothing(service: ImportService,
                                                             parsing: FakeParsingService) -> None:
    parsing.add_task("pt-broken", count=3_000, item=result)
    http = service.client("parsing-ann")
    task_id = service.new_task(http)
    gate = parsing.hold("after-1000")
    try:
        response = http.post("/api/v1/import/parsing", json={"task_id": task_id, "parsing_task_id": "pt-broken"})
        assert response.status_code == 202, response.text
        import_id = response.json()["import_id"]
        wait_for(lambda: http.get(f"/api/v1/imports/{import_id}").json()["progress"]["rows_read"] == 1000, 60,
                 what="the first page read")
        # The held second page still answers; the third never does.
        parsing.fail_next(50, 500, path_contains="pt-broken/results")
    finally:
        gate.set()
    final = wait_import(http, import_id, 120)
    assert final["status"] == "failed"
    assert final["error"]["code"] == "parsing_service" and "HTTP 500" in final["error"]["message"]
    assert final["progress"]["rows_published"] == 0
    assert service.targets(task_id) == [] and service.batches(task_id) == []


@pytest.mark.parametrize(
    ("parsing_task", "status", "code"),
    [("pt-missing", 404, "parsing_task_not_found"), ("pt-running", 409, "parsing_task_not_completed")],
)
def test_a_parsing_task_that_cannot_be_read_is_refused_at_once(
    service: ImportService, parsing: FakeParsingService, parsing_task: str, status: int, code: str
) -> None:
    parsing.add_task("pt-running", count=10, item=result, status="running")
    http = service.client("parsing-ann")
    task_id = service.new_task(http)
    response = http.post("/api/v1/import/parsing", json={"task_id": task_id, "parsing_task_id": parsing_task})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and parsing_task in error["message"]
    assert http.get(f"/api/v1/tasks/{task_id}/imports").json()["items"] == []


def test_another_users_task_cannot_be_fed(service: ImportService, parsing: FakeParsingService) -> None:
    parsing.add_task("pt-small", items=[{"username": "someone_1"}])
    task_id = service.new_task(service.client("parsing-ann"))
    response = service.client("parsing-bob").post(
        "/api/v1/import/parsing", json={"task_id": task_id, "parsing_task_id": "pt-small"})
    assert response.status_code == 404

