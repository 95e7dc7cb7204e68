"""The Prometheus catalogue (adapters/metrics.py) and the /metrics view.

Recording functions must change the rendered exposition exactly as named;
label values outside their known sets must be refused, so no id can ever
become a series.
"""

from __future__ import annotations

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters import metrics
from adapters.metrics import LabelValueError, Metrics, topic_role
from models.outcomes import Outcome
from models.tasks import TaskStatus
from streams.topics import TOPIC_NAMES
from streams.web.metrics import register


@pytest.fixture
def m() -> Metrics:
    return Metrics()


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def text(m: Metrics) -> str:
    return m.render()[0].decode()


def test_result_counts_by_platform_and_outcome_and_stamps_time(m: Metrics) -> None:
    m.invite_result("telegram", Outcome.INVITED)
    m.invite_result("telegram", "invited")
    m.invite_result("telegram", Outcome.PEER_FLOOD)
    assert value(m, "invite_results_total", platform="telegram", outcome="invited") == 2
    assert value(m, "invite_results_total", platform="telegram", outcome="peer_flood") == 1
    assert value(m, "invite_results_total", platform="telegram", outcome="flood_wait") == 0
    assert value(m, "invite_last_result_timestamp_seconds") > 0
    assert 'invite_results_total{outcome="invited",platform="telegram"} 2.0' in text(m)


def test_counters_exist_at_zero_before_first_event(m: Metrics) -> None:
    # increase() cannot see a series born at 1: the first dead letter must count.
    body = text(m)
    assert 'invite_dead_letters_total{reason_class="handler_error",topic="results"} 0.0' in body
    assert 'invite_account_blocks_total{kind="quarantine",platform="telegram"} 0.0' in body
    assert 'invite_task_transitions_total{from_status="running",to_status="paused"} 0.0' in body


def test_task_transitions(m: Metrics) -> None:
    m.task_transitioned(None, TaskStatus.DRAFT)
    m.task_transitioned("draft", "running")
    m.task_transitioned(TaskStatus.RUNNING, TaskStatus.COMPLETED)
    assert value(m, "invite_task_transitions_total", from_status="none", to_status="draft") == 1
    assert value(m, "invite_task_transitions_total", from_status="draft", to_status="running") == 1
    assert value(m, "invite_task_transitions_total", from_status="running", to_status="completed") == 1


def test_blocks_retries_dead_letters(m: Metrics) -> None:
    m.account_blocked("telegram", "quarantine")
    m.account_blocked("telegram", metrics.BlockKind.COOLDOWN)
    m.retry("telegram", "account_temporary")
    m.retry("telegram", metrics.RetryReason.DELIVERY_UNKNOWN)
    m.dead_letter("invite.account-work", "invalid_event")
    m.dead_letter("dead-letters", metrics.DeadLetterReason.HANDLER_ERROR)
    m.dead_letter("?", "handler_error")
    assert value(m, "invite_account_blocks_total", platform="telegram", kind="quarantine") == 1
    assert value(m, "invite_account_blocks_total", platform="telegram", kind="cooldown") == 1
    assert value(m, "invite_retries_total", platform="telegram", reason="account_temporary") == 1
    assert value(m, "invite_retries_total", platform="telegram", reason="delivery_unknown") == 1
    assert value(m, "invite_dead_letters_total", topic="account-work", reason_class="invalid_event") == 1
    assert value(m, "invite_dead_letters_total", topic="dead-letters", reason_class="handler_error") == 1
    assert value(m, "invite_dead_letters_total", topic="unknown", reason_class="handler_error") == 1


def test_imports_and_histograms(m: Metrics) -> None:
    m.targets_imported_batch("api", accepted=998, rejected=1, duplicate=1)
    m.import_duration_observed(0.3)
    m.platform_call_observed("telegram", "invite", 0.02, ok=True)
    m.platform_call_observed("telegram", "invite", 7.0, ok=False)
    m.claim_to_result_observed(1.5)
    m.claim_to_result_observed(-0.1)  # a clock step back counts as 0, not as an error
    assert value(m, "invite_targets_imported_total", source="api", result="accepted") == 998
    assert value(m, "invite_targets_imported_total", source="api", result="rejected") == 1
    assert value(m, "invite_targets_imported_total", source="api", result="duplicate") == 1
    assert value(m, "invite_import_duration_seconds_count") == 1
    assert value(m, "invite_platform_calls_total", platform="telegram", action="invite", result="ok") == 1
    assert value(m, "invite_platform_calls_total", platform="telegram", action="invite", result="error") == 1
    assert value(m, "invite_platform_call_duration_seconds_bucket", platform="telegram", action="invite", le="0.025") == 1
    assert value(m, "invite_platform_call_duration_seconds_sum", platform="telegram", action="invite") == pytest.approx(7.02)
    assert value(m, "invite_claim_to_result_seconds_count") == 2
    assert value(m, "invite_claim_to_result_seconds_bucket", le="0.05") == 1


def test_gauges(m: Metrics) -> None:
    m.set_tasks_by_state({TaskStatus.RUNNING: 3, "paused": 1})
    m.set_tasks_by_state({"running": 2})  # statuses left out drop to 0
    m.set_accounts_by_health({"active": 5, "restricted": 1})
    m.set_pending_targets(120)
    m.set_consumer_lag("invite.results", 3, 42)
    m.set_stats_drift(2)
    m.set_dependency_up("postgres", True)
    m.set_dependency_up(metrics.Dependency.VAULT, False)
    m.set_running_tasks_without_healthy_account(1)
    m.set_running_tasks_stalled(1)
    m.set_consumer_group_members(2, expected=3)
    assert value(m, "invite_tasks", status="running") == 2
    assert value(m, "invite_tasks", status="paused") == 0
    assert value(m, "invite_accounts", health="active") == 5
    assert value(m, "invite_accounts", health="disabled") == 0
    assert value(m, "invite_pending_targets") == 120
    assert value(m, "invite_consumer_lag", topic="results", partition="3") == 42
    assert value(m, "invite_stats_drift") == 2
    assert value(m, "invite_dependency_up", dependency="postgres") == 1
    assert value(m, "invite_dependency_up", dependency="vault") == 0
    assert value(m, "invite_running_tasks_without_healthy_account") == 1
    assert value(m, "invite_running_tasks_stalled") == 1
    assert value(m, "invite_consumer_group_members") == 2
    assert value(m, "invite_consumer_group_expected_members") == 3


def test_losing_leadership_drops_cluster_wide_numbers(m: Metrics) -> None:
    m.set_leader(True)
    m.set_tasks_by_state({"running": 4})
    m.set_consumer_lag("tasks", 0, 10)
    m.set_pending_targets(9)
    m.set_dependency_up("redis", True)
    m.invite_result("telegram", "invited")
    m.set_leader(False)
    assert value(m, "invite_leader") == 0
    assert value(m, "invite_tasks", status="running") == 0
    assert value(m, "invite_pending_targets") == 0
    assert value(m, "invite_consumer_lag", topic="tasks", partition="0") is None
    # Per-process numbers stay.
    assert value(m, "invite_dependency_up", dependency="redis") == 1
    assert value(m, "invite_results_total", platform="telegram", outcome="invited") == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.invite_result("telegram", "sent_maybe"),
        lambda m: m.invite_result("whatsapp", "invited"),
        lambda m: m.invite_result("user-42", "invited"),
        lambda m: m.task_transitioned("running", "sleeping"),
        lambda m: m.task_transitioned("task-1f3e", "running"),
        lambda m: m.account_blocked("telegram", "banned"),
        lambda m: m.account_blocked("telegram", "acc-17"),
        lambda m: m.retry("telegram", "because"),
        lambda m: m.dead_letter("some.other.topic", "handler_error"),
        lambda m: m.dead_letter("invite.results", "handler error: KeyError('x')"),
        lambda m: m.targets_imported_batch("ftp", 1, 0),
        lambda m: m.platform_call_observed("telegram", "kick", 0.1, ok=True),
        lambda m: m.set_tasks_by_state({"sleeping": 1}),
        lambda m: m.set_accounts_by_health({"acc-1": 1}),
        lambda m: m.set_consumer_lag("invite.results", -1, 5),
        lambda m: m.set_consumer_lag("invite.results", 5000, 5),
        lambda m: m.set_consumer_lag("invite-service-account-limits-changelog", 0, 5),
        lambda m: m.set_consumer_lag("?", 0, 5),
        lambda m: m.set_dependency_up("mysql", True),
    ],
)
def test_label_values_outside_known_sets_are_rejected(m: Metrics, call) -> None:
    before = text(m)
    with pytest.raises(LabelValueError):
        call(m)
    assert text(m) == before  # nothing half-recorded


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.targets_imported_batch("api", -1, 0),
        lambda m: m.set_pending_targets(-3),
        lambda m: m.set_stats_drift(1.5),
        lambda m: m.claim_to_result_observed(float("nan")),
    ],
)
def test_bad_numbers_are_rejected(m: Metrics, call) -> None:
    with pytest.raises(ValueError):
        call(m)


def test_no_label_can_hold_an_id(m: Metrics) -> None:
    for family in m.registry.collect():
        for sample in family.samples:
            for label in sample.labels:
                assert not label.endswith("_id") and label not in {"user", "task", "target", "account", "phone"}


def test_every_name_is_prefixed(m: Metrics) -> None:
    assert m.names() and all(name.startswith("invite_") for name in m.names())


def test_topic_roles_match_the_topics_module() -> None:
    assert tuple(metrics.TOPIC_ROLES) == TOPIC_NAMES
    assert topic_role("prod.invite.accounts") == "accounts"
    assert topic_role("invite.account-work") == "account-work"
    assert topic_role("invite_dead-letters") == "dead-letters"


def test_module_functions_record_into_the_default_and_reset_gives_a_fresh_one() -> None:
    first = metrics.reset()
    metrics.invite_result("telegram", "invited")
    metrics.dead_letter("invite.tasks", "unprocessable")
    assert value(first, "invite_results_total", platform="telegram", outcome="invited") == 1
    body, content_type = metrics.render()
    assert b'invite_dead_letters_total{reason_class="unprocessable",topic="tasks"} 1.0' in body
    assert content_type.startswith("text/plain")
    second = metrics.reset()
    assert metrics.default() is second is not first
    assert value(second, "invite_results_total", platform="telegram", outcome="invited") == 0


def test_render_negotiates_openmetrics(m: Metrics) -> None:
    body, content_type = m.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


async def test_metrics_view_serves_catalogue_and_faust_sensors() -> None:
    app = faust.App("metrics-view-test", broker="kafka://localhost:1", autodiscover=False, web_enabled=True)
    m = Metrics()
    register(app, m)
    m.invite_result("telegram", "already_member")
    # The app's monitor is faust's Prometheus monitor, on our registry.
    app.monitor.on_commit_completed(app.consumer, app.monitor.on_commit_initiated(app.consumer))
    app.web.init_server()
    async with TestClient(TestServer(app.web.web_app)) as client:
        response = await client.get("/metrics")
        body = await response.text()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'invite_results_total{outcome="already_member",platform="telegram"} 1.0' in body
    assert "invite_faust_consumer_commit_latency_count 1.0" in body
