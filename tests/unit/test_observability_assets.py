"""The alert rules and the Grafana dashboard use only metrics that exist.

Every metric name in every PromQL expression of ``deploy/prometheus/alerts.yml``
and ``deploy/grafana/dashboards/invite-service.json`` must be exposed by the
catalogue (``adapters/metrics.py``) or faust's sensors on the same registry,
so a typo or a renamed metric fails here rather than as a silent empty panel
or an alert that can never fire. promtool runs too when it is installed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.metrics import Metrics
from streams.web.metrics import faust_sample_names

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "invite-service.json"
RUNBOOK = ROOT / "docs" / "RUNBOOK.md"

# Series Prometheus itself attaches to every scrape target.
BUILTIN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}

_NOT_NAMES = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (Grafana variables allowed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals (label values, regexes)
    e = re.sub(r"'(?:[^'\\]|\\.)*'", "''", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)  # $__rate_interval, ${DS_PROMETHEUS}
    e = re.sub(r"\{[^}]*\}", " ", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)  # ranges and subqueries
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", e):
        if e[match.end() :].lstrip().startswith("("):
            continue  # a function call
        if match.group(0).lower() not in _NOT_NAMES:
            names.add(match.group(0))
    return names


@pytest.fixture(scope="module")
def known() -> set[str]:
    return Metrics().names() | faust_sample_names() | BUILTIN


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found += panel.get("panels", [])  # panels inside collapsed rows
    return found


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in _panels(dashboard) for t in p.get("targets", [])]


# ---- the name extractor itself ----------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum by (outcome) (rate(invite_results_total[5m]))", {"invite_results_total"}),
        ('up{job="invite-service"} == 0', {"up"}),
        ("time() - max(invite_last_result_timestamp_seconds)", {"invite_last_result_timestamp_seconds"}),
        (
            "histogram_quantile(0.99, sum by (le) (rate(invite_claim_to_result_seconds_bucket[$__rate_interval])))",
            {"invite_claim_to_result_seconds_bucket"},
        ),
        ("max(a) < on() group_left(x) max(b_total offset 5m) and 1e3 > bool 2", {"a", "b_total"}),
        ('sum(x{outcome=~"invited|message_sent"}) / sum(y)', {"x", "y"}),
    ],
)
def test_metric_names_extracted(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_a_typo_is_caught(known: set[str]) -> None:
    assert metric_names("rate(invite_result_total[5m])") - known == {"invite_result_total"}


# ---- alerts ------------------------------------------------------------------


def test_alert_exprs_use_only_catalogue_metrics(rules: list[dict[str, Any]], known: set[str]) -> None:
    used = {rule["alert"]: metric_names(rule["expr"]) for rule in rules}
    assert all(used.values()), "every alert reads at least one metric"
    unknown = {alert: names - known for alert, names in used.items() if names - known}
    assert not unknown


def test_alerts_carry_severity_summary_description_and_runbook(rules: list[dict[str, Any]]) -> None:
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        assert re.fullmatch(r"docs/RUNBOOK\.md#[a-z0-9-]+", annotations["runbook"]), rule["alert"]


def test_every_issue_alert_is_present(rules: list[dict[str, Any]]) -> None:
    # Issue 8: account blocks spike, PeerFlood, all accounts of a running task
    # unhealthy, task running with no result, Integration Service errors,
    # consumer lag growing, dead letters, a worker missing from the group.
    assert {
        "InviteAccountBlocksSpike", "InvitePeerFlood", "InviteRunningTaskWithoutHealthyAccount",
        "InviteTaskStalled", "InviteIntegrationServiceErrors", "InviteConsumerLagGrowing",
        "InviteDeadLetters", "InviteWorkerDown", "InviteConsumerGroupShrunk",
    } <= {rule["alert"] for rule in rules}


def _github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_runbook_anchors_exist(rules: list[dict[str, Any]]) -> None:
    if not RUNBOOK.exists():
        pytest.skip("docs/RUNBOOK.md not written yet")
    headings = {
        _github_anchor(line.lstrip("#")) for line in RUNBOOK.read_text().splitlines() if line.startswith("#")
    }
    missing = {rule["annotations"]["runbook"].split("#", 1)[1] for rule in rules} - headings
    assert not missing


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian: prometheus)")
@pytest.mark.parametrize("args", [["check", "rules", str(ALERTS)], ["test", "rules", str(ALERT_TESTS)]])
def test_promtool(args: list[str]) -> None:
    done = subprocess.run(["promtool", *args], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- dashboard ---------------------------------------------------------------


def test_dashboard_exprs_use_only_catalogue_metrics(dashboard: dict[str, Any], known: set[str]) -> None:
    exprs = _dashboard_exprs(dashboard)
    assert exprs
    unknown = {title: metric_names(expr) - known for title, expr in exprs if metric_names(expr) - known}
    assert not unknown
    assert all(metric_names(expr) for _, expr in exprs)


def test_dashboard_shape(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 36
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"


def test_dashboard_covers_the_issue(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(expr) for _, expr in _dashboard_exprs(dashboard)))
    # Throughput and outcomes, account health, lag, latency, dead letters, imports.
    assert {
        "invite_results_total", "invite_accounts", "invite_consumer_lag",
        "invite_platform_call_duration_seconds_bucket", "invite_dead_letters_total",
        "invite_targets_imported_total",
    } <= used
