"""``invite-service import FILE --task ID`` against a running worker: progress, the report, exit status."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.import_service import ImportService, import_service
from tests.support.stack import TestStack as RunningStack
from tests.support.worker import REPO, token_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImportService]:
    with import_service(stack, tmp_path_factory.mktemp("import-cli")) as running:
        yield running


def run_cli(service: ImportService, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "streams.import_cli", *args, "--url", service.worker.base_url]
    env = {"PATH": "/usr/bin:/bin", "INVITE_API_TOKEN": token or token_for("cli-ann"), "PYTHONPATH": str(REPO)}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, env=env, check=False)


def test_a_file_is_imported_with_progress_and_a_report(service: ImportService, tmp_path: Path) -> None:
    task_id = service.new_task(service.client("cli-ann"))
    audience = tmp_path / "people.csv"
    audience.write_text("username;phone\n" + "".join(f"cli_{i:04d};\n" for i in range(2_000))
                        + "bad name;\ncli_0001;\n")
    done = run_cli(service, str(audience), "--task", task_id)
    assert done.returncode == 0, done.stderr
    assert "uploading" in done.stderr and "importing" in done.stderr  # the progress bars
    assert "file: 2002 rows — 2000 accepted, 1 rejected, 1 duplicate, 0 suppressed" in done.stdout
    assert "row 2002 [username]: username: invalid username 'bad name'" in done.stdout
    assert "result: 2000 added to the task, 1 duplicate, 1 invalid, 0 suppressed — completed" in done.stdout
    assert len(service.targets(task_id)) == 2_000


def test_a_dry_run_validates_only(service: ImportService, tmp_path: Path) -> None:
    task_id = service.new_task(service.client("cli-ann"))
    audience = tmp_path / "people.json"
    audience.write_text('[{"username": "dry_one"}, {"user_id": -5}]')
    done = run_cli(service, str(audience), "--task", task_id, "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "validation: 2 rows — 1 accepted, 1 rejected" in done.stdout
    assert "row 2 [user_id]" in done.stdout and "would be rejected" in done.stdout
    assert service.targets(task_id) == []


def test_a_refused_file_exits_1_naming_the_row(service: ImportService, tmp_path: Path) -> None:
    task_id = service.new_task(service.client("cli-ann"))
    audience = tmp_path / "broken.csv"
    audience.write_bytes(b'username,note\nalice_99,"never closed\n')
    done = run_cli(service, str(audience), "--task", task_id)
    assert done.returncode == 1
    assert "refused: row 2: the file ends inside a quoted cell" in done.stderr
    assert "malformed_file, HTTP 422" in done.stderr
    assert service.targets(task_id) == []


def test_another_users_token_cannot_import(service: ImportService, tmp_path: Path) -> None:
    task_id = service.new_task(service.client("cli-ann"))
    audience = tmp_path / "a.csv"
    audience.write_text("username\nsomeone_1\n")
    done = run_cli(service, str(audience), "--task", task_id, token=token_for("cli-bob"))
    assert done.returncode == 1 and "not found" in done.stderr
    bad = run_cli(service, str(audience), "--task", task_id, "--mapping", "[1]")
    assert bad.returncode == 2 and "--mapping" in bad.stderr
