"""The parsing service client (adapters/parsing.py) over real HTTP against the fake, and the fake against the contract.

The fake (tests/support/fake_parsing.py) is checked against the OpenAPI file
(adapters/parsing-service.openapi.yaml) answer by answer, so the client is
tested against what the contract promises, not against whatever the fake does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator

from adapters.parsing import (
    ParsingClient,
    ParsingHTTPError,
    ParsingProtocolError,
    ParsingTaskNotFound,
    ParsingTaskStatus,
    ParsingUnavailable,
)
from tests.support.fake_parsing import FakeParsingService

CONTRACT = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "adapters" / "parsing-service.openapi.yaml").read_text()
)


def contract_schema(name: str) -> Draft202012Validator:
    return Draft202012Validator({**CONTRACT, "$ref": f"#/components/schemas/{name}"})


@pytest.fixture
def fake() -> Iterator[FakeParsingService]:
    with FakeParsingService() as service:
        yield service


def client(fake: FakeParsingService, **kwargs: Any) -> ParsingClient:
    return ParsingClient(fake.url, token=fake.token, backoff_base=0.01, backoff_max=0.05, **kwargs)


def person(i: int) -> dict[str, Any]:
    return {"username": f"parsed_{i:05d}", "user_id": 10_000 + i, "bio": "hi"}


async def test_every_page_is_read_in_order_following_the_cursor(fake: FakeParsingService) -> None:
    fake.add_task("p1", count=2_501, item=person)
    async with client(fake) as parsing:
        task = await parsing.task("p1")
        assert (task.status, task.results_count) == (ParsingTaskStatus.COMPLETED, 2_501)
        pages = [page async for page in parsing.pages("p1", page_size=1_000)]
    assert [len(p.items) for p in pages] == [1_000, 1_000, 501]
    assert [i["user_id"] for p in pages for i in p.items] == [10_000 + i for i in range(2_501)]
    asked = [r.query.get("cursor") for r in fake.requests if r.path.endswith("/results")]
    assert asked == [None, "after-1000", "after-2000"]


def test_the_fakes_answers_follow_the_contract(fake: FakeParsingService) -> None:
    fake.add_task("p1", count=3, item=person)
    fake.add_task("running", count=1, item=person, status="running")
    headers = {"Authorization": f"Bearer {fake.token}"}
    with httpx.Client(base_url=fake.url, headers=headers) as http:
        contract_schema("ParsingTask").validate(http.get("/v1/parsing-tasks/p1").json())
        contract_schema("ParsingTask").validate(http.get("/v1/parsing-tasks/running").json())
        first = http.get("/v1/parsing-tasks/p1/results", params={"limit": 2}).json()
        contract_schema("ResultsPage").validate(first)
        last = http.get("/v1/parsing-tasks/p1/results", params={"cursor": first["next_cursor"]}).json()
        contract_schema("ResultsPage").validate(last)
        assert last["next_cursor"] is None
        for response in (http.get("/v1/parsing-tasks/nope"), http.get("/v1/parsing-tasks/running/results"),
                         httpx.get(f"{fake.url}/v1/parsing-tasks/p1")):
            assert response.status_code in (401, 404, 409)
            contract_schema("Error").validate(response.json())


async def test_unavailable_answers_and_dropped_connections_are_retried(fake: FakeParsingService) -> None:
    fake.add_task("p1", count=30, item=person)
    fake.fail_next(2, 503, retry_after=0, path_contains="/results")
    fake.fail_next(1, 0, path_contains="/results")   # the connection drops without an answer
    fake.fail_next(1, 429, path_contains="/results")
    async with client(fake) as parsing:
        pages = [page async for page in parsing.pages("p1", page_size=10)]
    assert sum(len(p.items) for p in pages) == 30
    statuses = [r.status for r in fake.requests]
    assert statuses[:4] == [503, 503, 0, 429] and statuses[4:] == [200, 200, 200]


async def test_retry_after_is_honoured(fake: FakeParsingService) -> None:
    fake.add_task("p1", count=1, item=person)
    fake.fail_next(1, 503, retry_after=1)
    started = time.monotonic()
    async with client(fake) as parsing:
        await parsing.task("p1")
    # The client's own backoff is at most 0.05 s here; only the header can make it wait a second.
    assert time.monotonic() - started >= 1.0


async def test_a_service_that_stays_down_is_reported_after_the_last_attempt(fake: FakeParsingService) -> None:
    fake.add_task("p1", count=1, item=person)
    fake.fail_next(10, 502)
    async with client(fake, max_attempts=3) as parsing:
        with pytest.raises(ParsingUnavailable, match=r"HTTP 502\) after 3 attempts"):
            await parsing.task("p1")
    assert len(fake.requests) == 3


async def test_unknown_tasks_and_refusals_are_not_retried(fake: FakeParsingService) -> None:
    async with client(fake) as parsing:
        with pytest.raises(ParsingTaskNotFound, match="no task 'missing'"):
            await parsing.task("missing")
    async with ParsingClient(fake.url, token="wrong", backoff_base=0.01) as parsing:
        with pytest.raises(ParsingHTTPError, match="HTTP 401") as refused:
            await parsing.task("missing")
    assert refused.value.status == 401
    assert [r.status for r in fake.requests] == [404, 401]


async def test_answers_that_break_the_contract_are_named(fake: FakeParsingService) -> None:
    fake.add_task("p1", count=2, item=lambda i: "not an object")  # type: ignore[arg-type, return-value]
    async with client(fake) as parsing:
        with pytest.raises(ParsingProtocolError, match="results page that breaks the contract: items.0"):
            [page async for page in parsing.pages("p1")]


async def test_a_cursor_that_loops_is_refused(fake: FakeParsingService, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add_task("p1", count=10, item=person)
    original = fake.handle

    def looping(path: str, query: dict[str, str], headers: dict[str, str]) -> Any:
        status, body, extra = original(path, query, headers)
        if path.endswith("/results") and status == 200:
            body["next_cursor"] = "after-2"
        return status, body, extra

    monkeypatch.setattr(fake, "handle", looping)
    async with client(fake) as parsing:
        with pytest.raises(ParsingProtocolError, match="already returned"):
            [page async for page in parsing.pages("p1", page_size=2)]
