"""Schemathesis against a real worker: the served OpenAPI document matches what the server does.

Every operation gets generated requests, valid and invalid, with a valid
token. Path ids are sometimes swapped for ids of real tasks and targets of the
token's owner, so handlers run past the 404 as well. The checks: no server
error, every status and content type documented, every body matching its
schema, invalid input refused with a 4xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.api_worker import Served, filled, new_task, running_worker, token
from tests.support.stack import TestStack

pytestmark = pytest.mark.broker

OWNER = "fuzzer"
EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection]


@pytest.fixture(scope="module")
def served(stack: TestStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with running_worker(stack, tmp_path_factory.mktemp("api-fuzz")) as running:
        yield running


@pytest.fixture(scope="module")
def real_ids(served: Served) -> dict[str, list[Any]]:
    http = served.client(OWNER)
    tasks = [new_task(http, f"fuzz_{i}", accounts=["fuzz-acc-1", "fuzz-acc-2"]) for i in range(3)]
    targets = [t["id"] for task_id in tasks for t in filled(http, task_id, [f"fuzz_{task_id[:6]}_{n}" for n in range(3)])]
    return {"task_id": tasks, "target_id": targets}


@pytest.fixture(scope="module")
def api_schema(served: Served, real_ids: dict[str, list[Any]]) -> Any:
    loaded = schemathesis.openapi.from_url(f"{served.url}/api/v1/openapi.json")

    @loaded.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        choices = [st.just(path_parameters)]
        for name, ids in real_ids.items():
            # Only a valid generated id is swapped: an invalid one is what a negative case tests.
            if _valid(name, (path_parameters or {}).get(name)):
                choices.append(st.sampled_from([{**path_parameters, name: i} for i in ids]))
        return st.one_of(*choices)

    @loaded.auth()
    class Bearer:
        def get(self, case: Any, context: Any) -> str:
            return token(OWNER)

        def set(self, case: Any, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return loaded


def _valid(name: str, value: Any) -> bool:
    if name == "task_id":
        return isinstance(value, str) and len(value) == 36
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def test_the_api_matches_its_document(api_schema: Any) -> None:
    # schemathesis' own pytest integration needs a pytest internal that pytest 9 removed
    # (Function._nodeid), so the operations are walked here, one Hypothesis run each.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 25
    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode, auth_storage=api_schema.auth))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                case.call_and_validate(checks=CHECKS, timeout=30)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # no input to make invalid
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - every operation's findings at once
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert failures == [], "\n\n".join(failures)
