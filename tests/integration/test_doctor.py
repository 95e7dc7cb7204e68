"""``invite-service doctor`` against real parts (healthy, one part stopped, a task explained), and what ``worker`` refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adapters.embedded import start_redis
from tests.support.worker import REPO, Campaign, Worker, api, create_task, token_for

pytestmark = pytest.mark.broker


def doctor(campaign: Campaign, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "doctor", *args],
        env={**campaign.env(0), **env}, cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def test_doctor_on_a_healthy_stack_then_with_redis_stopped(campaign: Campaign, tmp_path: Path) -> None:
    redis = start_redis(tmp_path / "doctor-redis")
    campaign.extra_env["INVITE_REDIS_URL"] = redis.url
    worker = Worker(campaign)  # creates the topics and applies the migrations
    try:
        worker.wait_ready()
        http = api(worker.base_url, token_for("dora"))
        task_id = create_task(http, "diagnosed", ["doc-acc-1"])
        healthy = doctor(campaign, "--task", task_id)
        redis.stop()
        broken = doctor(campaign)
    finally:
        worker.stop()
        redis.stop()
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "FAIL" not in healthy.stdout
    assert "ok   PostgreSQL: reachable, migrations current" in healthy.stdout
    assert f"task {task_id}: draft" in healthy.stdout
    assert "verdict: The task was never started" in healthy.stdout
    assert "account doc-acc-1: active" in healthy.stdout
    assert broken.returncode == 1
    assert "FAIL Redis" in broken.stdout
    assert "FAIL PostgreSQL" not in broken.stdout


def test_doctor_names_what_is_not_configured(campaign: Campaign) -> None:
    env = {k: v for k, v in campaign.env(0).items() if k != "INVITE_DATABASE_URL"}
    result = subprocess.run([sys.executable, "-m", "streams.cli", "doctor"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "INVITE_DATABASE_URL is not set" in result.stdout


def test_doctor_names_an_unreachable_broker(campaign: Campaign) -> None:
    result = doctor(campaign, INVITE_KAFKA_BROKER="127.0.0.1:1")
    assert result.returncode == 1
    assert "FAIL broker and topics" in result.stdout


def test_worker_refuses_missing_parts_and_the_development_jwt_secret(campaign: Campaign) -> None:
    env = {k: v for k, v in campaign.env(0).items() if k != "INVITE_REDIS_URL"}
    missing = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], env=env, cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "INVITE_REDIS_URL" in missing.stderr
    env = {k: v for k, v in campaign.env(0).items() if k != "INVITE_JWT_SECRET"}
    dev_secret = subprocess.run([sys.executable, "-m", "streams.cli", "worker"], env=env, cwd=REPO,
                                capture_output=True, text=True, timeout=60)
    assert dev_secret.returncode != 0 and "INVITE_JWT_SECRET" in dev_secret.stderr
