"""The campaign console in a real browser (headless system Chromium) against a real worker and the sandbox.

Each test starts a worker on the test stack, opens the console page the
worker serves, and drives it as a person would: by labels, roles and visible
text. What the page shows is checked against what the API and PostgreSQL
say. Every test saves a screenshot (docs/screenshots/ and the tmp dir).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import Console, Gateway, open_console
from tests.support.worker import (
    Campaign,
    Worker,
    api,
    create_task,
    fill_task,
    token_for,
    wait_for,
    wait_stats,
    wait_status,
)

pytestmark = pytest.mark.e2e
# Assertions on the page wait this long: the page polls every 1.5 s, and CI machines are busy.
expect.set_options(timeout=15_000)

TARGETS = 60  # of the slow campaign
NOT_AVAILABLE = "not available in this version of the service"
# The Notifications API, recorded: headless Chromium shows nothing, the page's calls are what matter.
RECORD_NOTIFICATIONS = """
window.__notifications = [];
window.Notification = class extends EventTarget {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { super(); window.__notifications.push({title, body: options && options.body}); }
};
"""


@pytest.fixture
def console(campaign: Campaign, tmp_path: Path) -> Iterator[Console]:
    # After ``campaign``: its database is made with asyncio.run, which cannot run while the browser is open.
    yield from open_console(tmp_path / "screenshots")


@pytest.fixture
def worker(campaign: Campaign) -> Iterator[Worker]:
    started = Worker(campaign)
    try:
        started.wait_ready()
        yield started
    except BaseException:
        print(started.log_tail(200))
        raise
    finally:
        started.stop()


def progress_bar(page: Page) -> Any:
    return page.locator("#progress").get_by_role("progressbar")


def status_badge(page: Page) -> Any:
    return page.locator(".title-line .badge")


def stats_of(http: httpx.Client, task_id: str) -> dict[str, Any]:
    """The task's stats now (asked again while a starting worker answers 503)."""
    return wait_stats(http, task_id, lambda _: True, 30)


def transient_failures(http: httpx.Client, task_id: str) -> int:
    """Targets that failed on a transient error (the ones "Retry failed" sends again)."""
    count: int = http.get(f"/api/v1/tasks/{task_id}/report").json()["by_reason"].get("transient_error", 0)
    return count


def audience_csv(rows: list[dict[str, str]], columns: list[str]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def test_campaign_from_the_console_behind_the_gateway(campaign: Campaign, worker: Worker, console: Console) -> None:
    """Sign in, create a task, check and import a CSV, start it, watch it reach 100 %, export the report."""
    gateway = Gateway(worker.base_url, "/api/invite/")
    http = api(worker.base_url, token_for("alice"))
    page = console.page
    page.add_init_script(RECORD_NOTIFICATIONS)
    try:
        # The gateway's address without the trailing slash: the page moves itself under the prefix.
        page.goto(f"{gateway.url}/api/invite")
        console.wait_ready()
        assert page.url == f"{gateway.url}/api/invite/"
        expect(page.get_by_role("heading", name="Sign in with an API token")).to_be_visible()
        console.use_token(token_for("alice"))
        expect(page.get_by_role("heading", name="Your campaigns")).to_be_visible()
        expect(page.get_by_text("No campaigns yet")).to_be_visible()
        expect(page.get_by_text("Signed in as alice")).to_be_visible()

        # Create a task: the sandbox's accounts of alice are offered as check boxes.
        page.get_by_role("button", name="New task").click()
        dialog = page.get_by_role("dialog", name="New task")
        dialog.get_by_label("Name", exact=True).fill("spring launch")
        dialog.get_by_label("Target chat").fill("@spring_channel")
        boxes = dialog.get_by_role("checkbox")
        expect(boxes.first).to_be_visible()
        offered = [boxes.nth(i).get_attribute("value") or "" for i in range(boxes.count())]
        assert offered and all(a.startswith("alice-") for a in offered), offered
        for i in range(boxes.count()):
            boxes.nth(i).check()
        dialog.get_by_role("button", name="Create task").click()
        expect(page.get_by_role("heading", name="spring launch")).to_be_visible()
        opened = re.search(r"#/tasks/([0-9a-f-]{36})$", page.url)
        assert opened, page.url
        task_id = opened.group(1)
        task = http.get(f"/api/v1/tasks/{task_id}").json()
        assert (task["name"], task["chat"], sorted(task["account_ids"])) == ("spring launch", "@spring_channel",
                                                                             sorted(offered))
        expect(status_badge(page)).to_have_text("draft")

        # Upload an audience: the validation report comes first, and nothing is imported before accepting it.
        rows = [{"username": f"spring_{i:03d}", "first_name": f"P{i}"} for i in range(60)]
        rows += [{"username": "", "first_name": "nobody"}, rows[0]]  # one without identity, one repeated
        page.get_by_label("Audience file").set_input_files(
            {"name": "audience.csv", "mimeType": "text/csv", "buffer": audience_csv(rows, ["username", "first_name"])})
        page.get_by_role("button", name="Check file").click()
        report = page.locator("#validation-report")
        expect(report).to_contain_text("Validation report")
        expect(report.locator(".counts")).to_contain_text("60 accepted")
        expect(report.locator(".counts")).to_contain_text("1 rejected")
        expect(report.locator(".counts")).to_contain_text("1 duplicate")
        expect(report.get_by_role("table")).to_contain_text("62")  # the row (after the header) with no identity
        console.dismiss_toasts()
        console.screenshot("console-upload-report")
        assert stats_of(http, task_id)["progress"]["total"] == 0, "targets arrived before the report was accepted"

        report.get_by_role("button", name="Import 60 targets").click()
        expect(page.locator("#upload-report")).to_contain_text("accepted: 60 targets")
        expect(page.locator("#progress")).to_contain_text("0 of 60 targets done", timeout=30_000)

        # Start on the sandbox and watch the page reach 100 %.
        page.get_by_role("button", name="Start").click()
        expect(progress_bar(page)).to_have_attribute("aria-valuenow", "100", timeout=60_000)
        expect(status_badge(page)).to_have_text("completed", timeout=30_000)
        expect(page.locator("#progress")).to_contain_text("60 of 60 targets done (100 %)")
        expect(page.locator(".toast", has_text="Task “spring launch” completed")).to_be_visible()
        notifications = page.evaluate("window.__notifications")
        assert {"title": "Task “spring launch” completed", "body": "Every target has an outcome."} in notifications

        # The outcome breakdown is the service's: row by row as the stats endpoint counts.
        stats = http.get(f"/api/v1/tasks/{task_id}/stats").json()
        assert stats["progress"]["done"] == 60
        outcome_rows = page.locator("#outcome-table tbody tr")
        expect(outcome_rows).to_have_count(len(stats["outcomes"]))
        for outcome, count in stats["outcomes"].items():
            expect(page.locator(f'#outcome-table tr[data-outcome="{outcome}"] td').first).to_have_text(str(count))
        expect(page.locator("#throughput svg.chart")).to_be_visible()
        expect(page.locator("#log-table tbody tr").first).to_be_visible()
        expect(page.locator("#accounts-table tbody tr")).to_have_count(len(offered))
        console.dismiss_toasts()
        console.screenshot("console-task")

        # Export the report as CSV: one line per target, through the gateway with the token.
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Export CSV").click()
        exported = Path(download_info.value.path()).read_text()
        lines = list(csv.DictReader(io.StringIO(exported)))
        assert sorted(r["username"] for r in lines) == sorted(f"spring_{i:03d}" for i in range(60))

        # Back to the list: the task at 100 %.
        page.get_by_role("link", name="← All campaigns").click()
        row = page.locator(f'tr[data-task-id="{task_id}"]')
        expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
        expect(row).to_contain_text("60 / 60 (100 %)")
        console.dismiss_toasts()
        console.screenshot("console-tasks")
        # Everything the page asked for went through the prefix.
        assert gateway.refused == [], gateway.refused
        assert console.page_errors == []
    finally:
        gateway.stop()


def test_pause_and_resume_from_the_console(campaign: Campaign, console: Console) -> None:
    """A slower campaign: pause stops the progress the page shows, resume moves it on."""
    campaign.extra_env.update(INVITE_PAUSE_MIN_SECONDS="0.4", INVITE_PAUSE_MAX_SECONDS="0.6")
    started = Worker(campaign)
    try:
        started.wait_ready()
        http = api(started.base_url, token_for("bob"))
        task_id = create_task(http, "slow", ["slow-acc-1", "slow-acc-2"])
        # The first three refuse by privacy (the sandbox's "privacy_" marker): permanent failures, early on.
        audience = [{"username": f"privacy_{i}"} for i in range(3)]
        audience += [{"username": f"quiet_{i:03d}"} for i in range(TARGETS - 3)]
        fill_task(http, task_id, audience)

        page = console.page
        # A development link (#token=...) signs in without pasting; the token leaves the address bar.
        page.goto(f"{started.base_url}/#token={token_for('bob')}")
        console.wait_ready()
        assert "token" not in page.url
        page.get_by_role("link", name="slow").click()
        expect(page.get_by_role("heading", name="slow")).to_be_visible()
        expect(page.get_by_role("button", name="Pause")).to_have_attribute("aria-disabled", "true")

        page.get_by_role("button", name="Start").click()
        expect(status_badge(page)).to_have_text("running")
        wait_for(lambda: (p := stats_of(http, task_id)["progress"])["done"] >= 12 and p["by_status"].get("failed"),
                 60, what="some progress and a failure")

        page.get_by_role("button", name="Pause").click()
        expect(status_badge(page)).to_have_text("paused")
        # Once the attempts in flight have landed, the page shows exactly what the service counts, and it stays.
        wait_status(http, task_id, "paused", timeout=30)
        settled = wait_stats(http, task_id, lambda s: s["progress"]["by_status"].get("in_flight", 0) == 0, 30,
                             what="in-flight attempts to land")
        done = settled["progress"]["done"]
        assert 0 < done < TARGETS, "paused too late to prove anything"
        expect(page.locator("#progress .big-number")).to_contain_text(f"{done} of {TARGETS} targets done")
        page.wait_for_timeout(3000)  # several polls of the page and rounds of the reconciler
        expect(page.locator("#progress .big-number")).to_contain_text(f"{done} of {TARGETS} targets done")
        assert stats_of(http, task_id)["progress"]["done"] == done
        expect(page.get_by_role("button", name="Resume")).not_to_have_attribute("aria-disabled", "true")
        expect(page.get_by_role("button", name="Pause")).to_have_attribute("aria-disabled", "true")
        # A pause a person asked for is no alarm.
        expect(page.locator(".toast-error")).to_have_count(0)
        console.dismiss_toasts()
        console.screenshot("console-task-paused")

        # Privacy refusals are final: "Retry failed" says so instead of offering what the service would refuse.
        assert settled["progress"]["by_status"]["failed"] > 0
        assert transient_failures(http, task_id) == 0
        retry = page.get_by_role("button", name="Retry failed")
        expect(retry).to_have_attribute("aria-disabled", "true")
        retry.focus()  # a disabled control stays reachable from the keyboard, and tells why it is off
        page.keyboard.press("Enter")
        expect(page.locator(".toast", has_text="Retry failed: no failed target can be sent again")).to_be_visible()

        page.get_by_role("button", name="Resume").click()
        expect(status_badge(page)).to_have_text("running")
        wait_for(lambda: stats_of(http, task_id)["progress"]["done"] > done, 30, what="progress after resume")
        expect(page.locator("#progress .big-number")).not_to_contain_text(f"{done} of {TARGETS} targets done",
                                                                          timeout=30_000)

        # The list shows it live: progress, the current rate and an ETA from the accounts' capacity.
        page.get_by_role("link", name="← All campaigns").click()
        row = page.locator(f'tr[data-task-id="{task_id}"]')
        expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^\d[\d.,]* / (s|min|h)$"))
        expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^≈? ?\d+ (s|min|h)"))
        console.dismiss_toasts()
        console.screenshot("console-tasks-live")
        assert console.page_errors == []
    except BaseException:
        print(started.log_tail(200))
        raise
    finally:
        started.stop()


def test_a_bad_file_is_explained_and_nothing_is_imported(campaign: Campaign, worker: Worker,
                                                         console: Console) -> None:
    http = api(worker.base_url, token_for("carol"))
    task_id = create_task(http, "bad files", ["bad-acc-1"])
    page = console.page
    page.goto(f"{worker.base_url}/#/tasks/{task_id}")
    console.wait_ready()
    console.use_token(token_for("carol"))
    expect(page.get_by_role("heading", name="bad files")).to_be_visible()

    # Not a spreadsheet at all: the API's refusal, in words.
    page.get_by_label("Audience file").set_input_files(
        {"name": "audience.bin", "mimeType": "application/octet-stream", "buffer": bytes(range(256)) * 4})
    page.get_by_role("button", name="Check file").click()
    refusal = page.locator("#upload-report .file-error")
    expect(refusal).to_have_attribute("role", "alert")
    expect(refusal).to_contain_text("audience.bin cannot be imported")
    expect(refusal).to_contain_text("unsupported file type")
    expect(refusal).to_contain_text("Nothing was added to the task")

    # A CSV without any identity column: the report names the rows, and offers no import.
    page.get_by_label("Audience file").set_input_files(
        {"name": "names.csv", "mimeType": "text/csv", "buffer": b"name,city\nAnna,Oslo\nBoris,Riga\n"})
    page.get_by_role("button", name="Check file").click()
    report = page.locator("#validation-report")
    expect(report).to_contain_text("names.csv has no target that can be imported")
    expect(report.get_by_role("table")).to_contain_text("a target needs one of username, user_id or phone")
    expect(report.get_by_role("button", name=re.compile("^Import"))).to_have_count(0)
    console.screenshot("console-bad-file")
    assert stats_of(http, task_id)["progress"]["total"] == 0

    # A test invite from the keyboard: one real send through the task's account, its outcome in words.
    page.get_by_role("button", name="Test invite…").focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Test invite")
    expect(dialog.get_by_label("Target", exact=True)).to_be_focused()
    page.keyboard.type("@member_console")
    page.keyboard.press("Enter")
    expect(dialog.get_by_role("status")).to_contain_text("already member (target done)")
    calls = httpx.get(f"{campaign.integration_url}/sandbox/calls", timeout=10).json()["calls"]
    assert [(c["account_id"], c["idempotency_key"].split(":")[0]) for c in calls] == [("bad-acc-1", "test")]
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert console.page_errors == []


def test_errors_in_words_and_missing_endpoints_degrade(campaign: Campaign, worker: Worker, console: Console) -> None:
    """A bad token is explained; a task the service pauses is notified; endpoints a version lacks degrade."""
    page = console.page
    page.add_init_script(RECORD_NOTIFICATIONS)
    page.goto(f"{worker.base_url}/")
    console.wait_ready()
    console.use_token("not-a-token")
    banner = page.locator("#error-banner")
    expect(banner).to_contain_text("Could not load your campaigns: invalid token")
    expect(banner).to_contain_text("Enter a valid API token above")
    expect(page.get_by_role("heading", name="Your campaigns")).to_be_visible()  # the page stays, with the error

    # Its only account is banned (the sandbox's "banned_" accounts): the service pauses the task, the page says why.
    http = api(worker.base_url, token_for("dave"))
    doomed = create_task(http, "doomed", ["banned_console"])
    fill_task(http, doomed, [{"username": f"doomed_{i}"} for i in range(5)])
    console.use_token(token_for("dave"))
    expect(banner).to_be_hidden()
    page.get_by_role("link", name="doomed").click()
    page.get_by_role("button", name="Start").click()
    alarm = page.locator(".toast-error", has_text="Task “doomed” was paused by the service")
    expect(alarm).to_contain_text("Reason: no healthy account left", timeout=60_000)
    expect(status_badge(page)).to_have_text("paused")
    expect(page.locator('#accounts-table tr[data-account="banned_console"]')).to_contain_text("disabled")
    assert {"title": "Task “doomed” was paused by the service", "body": "Reason: no healthy account left"} \
        in page.evaluate("window.__notifications")
    console.screenshot("console-paused-by-error")

    # The first API slice only: no OpenAPI document, no status/report/logs/accounts/imports/test-invite/export.
    missing = re.compile(r"/api/v1/(openapi\.json|import/|accounts|tasks/[^/]+/(status|report|logs|accounts|imports"
                         r"|test-invite|targets/bulk))")
    page.route(missing, lambda route: route.fulfill(
        status=404, content_type="application/json",
        body='{"error": {"code": "not_found", "message": "Not Found", "details": null}}'))
    task_id = create_task(http, "first slice", ["old-acc-1"])
    page.goto(f"{worker.base_url}/#/tasks/{task_id}")
    page.reload()
    console.wait_ready()
    console.use_token(token_for("dave"))
    expect(banner).to_be_hidden()
    expect(page.get_by_role("heading", name="first slice")).to_be_visible()
    for name in ("Test invite…", "Export CSV", "Retry failed"):
        expect(page.get_by_role("button", name=name)).to_have_attribute("title", NOT_AVAILABLE)
    expect(page.locator("#audience")).to_contain_text(f"File import is {NOT_AVAILABLE}")
    expect(page.get_by_label("Audience file")).to_be_hidden()
    expect(page.locator("#log")).to_contain_text(f"The execution log is {NOT_AVAILABLE}")
    expect(page.locator("#accounts")).to_contain_text(f"Live limits and cooldowns are {NOT_AVAILABLE}")
    expect(page.locator("#accounts")).to_contain_text("old-acc-1")

    # What the version has still works: pasted targets go through POST /targets.
    page.get_by_label("Paste targets").fill("@first_1\nfirst_2\nt.me/first_3")
    page.get_by_role("button", name="Add these targets").click()
    expect(page.locator("#progress .big-number")).to_contain_text("0 of 3 targets done", timeout=30_000)
    usernames = sorted(t["username"] for t in http.get(f"/api/v1/tasks/{task_id}/targets").json()["items"])
    assert usernames == ["first_1", "first_2", "first_3"]
    console.screenshot("console-degraded", docs=False)

    # The server side of the page: exact file names only, with a policy that keeps scripts same-origin.
    index = httpx.get(f"{worker.base_url}/")
    assert index.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert httpx.get(f"{worker.base_url}/static/app.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{worker.base_url}/static/missing.js").status_code == 404
    assert httpx.get(f"{worker.base_url}/static/..%2Fconsole.py").status_code == 404
    assert console.page_errors == []
