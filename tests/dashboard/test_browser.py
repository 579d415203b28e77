"""The dashboard in a real browser against a real Manager and worker: every page loads and shows
what the store holds, and each action (cancel, resubmit, delete, pause, resume, limits) works
from the page and shows its result; a running task's progress and log lines appear without a
reload. A screenshot of each page is written to ``test-artifacts/``."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from typer.testing import CliRunner

from jobbers import Client
from jobbers.cli import app

from ..cli.conftest import DevServer
from .conftest import TOKEN, screenshot

pytestmark = pytest.mark.slow
CLI_ENV = {"JOBBERS_API_TOKEN": TOKEN}


def wait_status(client: Client, task_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = client.get(task_id)
        if task["status"] == status:
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} is {task['status']}, not {status}")
        time.sleep(0.05)


def test_without_a_session_every_page_asks_for_the_token(
    browser: Browser, manager: DevServer
) -> None:
    context = browser.new_context(base_url=manager.url)
    try:
        tab = context.new_page()
        pages = (
            "/ui",
            "/ui/tasks",
            "/ui/dead-letter",
            "/ui/queues",
            "/ui/workers",
            "/ui/schedules",
        )
        for path in pages:
            tab.goto(path)
            expect(tab.locator("h1")).to_have_text("Log in")
        tab.fill("input[name=token]", "wrong")
        tab.click("form.login button")
        expect(tab.locator(".error")).to_contain_text("not the Manager's token")
        screenshot(tab, "login")
        cookies = context.cookies()
        assert [c["name"] for c in cookies] == []
    finally:
        context.close()


def test_session_cookie_is_httponly_and_strict(page: Page) -> None:
    (cookie,) = page.context.cookies()
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert TOKEN not in cookie["value"]
    assert page.evaluate("document.cookie") == ""


def test_overview_counts_and_chart(page: Page, client: Client) -> None:
    done = client.submit("ui.steps", {"steps": 1, "pause": 0.0})
    wait_status(client, done["id"], "completed")
    page.goto("/ui")
    expect(page.locator("h1")).to_have_text("Overview")
    completed = page.locator('.n[data-status="completed"]')
    expect(completed).not_to_have_text("0")
    expect(page.locator("#completed-range")).not_to_have_text("0")
    expect(page.locator("svg#throughput rect.s-completed").first).to_be_visible()
    expect(page.locator("#by-queue")).to_contain_text("default")
    screenshot(page, "overview")


def test_running_task_progress_and_logs_change_without_a_reload(
    page: Page, client: Client, manager: DevServer
) -> None:
    """Steps of 2 s against a refresh every second (plus half a second for the worker to ship
    its notes): each step is on screen for at least one refresh."""
    task = client.submit("ui.steps", {"steps": 3, "pause": 2.0, "password": "pw-do-not-show"})
    page.goto(f"/ui/tasks/{task['id']}")
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#task-status")).to_have_text("started")
    expect(page.locator("#progress-text")).to_contain_text("step 1 of 3")
    expect(page.locator(".logs")).to_contain_text("step 1 done with ***")
    expect(page.locator("#progress-text")).to_contain_text("step 2 of 3")
    expect(page.locator(".logs")).to_contain_text("step 2 done with ***")
    expect(page.locator("#task-status")).to_have_text("completed")
    expect(page.locator("#progress-text")).to_contain_text("100% step 3 of 3")
    expect(page.locator("#result")).to_have_text("3")
    assert page.evaluate("window.__sameDocument") is True
    expect(page.locator("#kwargs")).to_contain_text('"password": "***"')
    shown = CliRunner().invoke(app, ["logs", task["id"], "--url", manager.url], env=CLI_ENV)
    assert shown.exit_code == 0, shown.output
    assert "completed, attempt 1 of 1, 100% step 3 of 3" in shown.output
    assert "INFO    step 2 done with ***" in shown.output
    assert "pw-do-not-show" not in page.content()
    screenshot(page, "task")


def test_cancel_a_running_task(page: Page, client: Client) -> None:
    task = client.submit("ui.block")
    wait_status(client, task["id"], "started")
    page.goto(f"/ui/tasks/{task['id']}")
    expect(page.locator("#task-status")).to_have_text("started")
    page.click("#cancel")
    expect(page.locator(".notice")).to_have_text("cancelled")
    expect(page.locator("#task-status")).to_have_text("cancelled")
    expect(page.locator("#cancel")).to_have_count(0)
    assert client.get(task["id"])["status"] == "cancelled"


def test_task_list_filters_and_search(page: Page, client: Client) -> None:
    failed = client.submit("ui.fail", {"reason": "list me"})
    wait_status(client, failed["id"], "dead")
    page.goto("/ui/tasks")
    page.select_option("select[name=status]", "dead")
    page.click("form.filters >> text=Filter")
    expect(page).to_have_url(re.compile(r"status=dead"))
    rows = page.locator("table.tasks tbody tr")
    expect(rows.first).to_contain_text("dead")
    expect(page.locator(f'tr[data-id="{failed["id"]}"]')).to_be_visible()
    screenshot(page, "tasks")
    page.fill("input[name=id]", failed["id"])
    page.click("text=Find")
    expect(page.locator("h1")).to_contain_text(failed["id"])
    expect(page.locator(".attempt pre.error")).to_contain_text("RuntimeError: list me")
    page.click(".attempt summary")
    expect(page.locator(".traceback")).to_contain_text("Traceback")
    page.goto("/ui/tasks")
    page.fill("input[name=id]", "no-such-task")
    page.click("text=Find")
    expect(page.locator(".notice")).to_have_text("no task with id no-such-task")


def test_dead_letter_resubmit_and_delete(page: Page, client: Client) -> None:
    task = client.submit("ui.fail", {"reason": "dead letter"}, queue="ui")
    wait_status(client, task["id"], "dead")
    page.goto("/ui/dead-letter?queue=ui")
    row = page.locator(f'tr[data-id="{task["id"]}"]')
    expect(row).to_contain_text("RuntimeError: dead letter")
    screenshot(page, "dead-letter")
    row.locator("input[type=checkbox]").check()
    page.click("#resubmit-selected")
    expect(page.locator(".notice")).to_have_text("resubmitted 1 task(s)")
    again = wait_status(client, task["id"], "dead")
    assert len(again["attempts"]) == 2

    page.goto("/ui/dead-letter?queue=ui")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator(f'tr[data-id="{task["id"]}"] input[type=checkbox]').check()
    page.click("#delete-selected")
    expect(page.locator(".notice")).to_have_text("deleted 1 task(s)")
    expect(page.locator(f'tr[data-id="{task["id"]}"]')).to_have_count(0)
    assert client.statuses([task["id"]]) == {}


def test_pause_resume_and_limits(page: Page, client: Client) -> None:
    client.submit("ui.steps", {"steps": 1, "pause": 0.0}, queue="ui")
    page.goto("/ui/queues")
    row = page.locator('tr[data-queue="ui"]')
    row.locator("text=Pause").click()
    expect(page.locator(".notice")).to_have_text("ui paused")
    expect(page.locator('tr[data-queue="ui"] .state')).to_have_text("paused")
    held = client.submit("ui.steps", {"steps": 1, "pause": 0.0}, queue="ui")
    (ui,) = [q for q in client.queues() if q["name"] == "ui"]
    assert ui["paused"] is True
    assert client.get(held["id"])["status"] == "submitted"
    screenshot(page, "queues")
    page.locator('tr[data-queue="ui"]').locator("text=Resume").click()
    expect(page.locator('tr[data-queue="ui"] .state')).to_have_text("active")
    wait_status(client, held["id"], "completed")

    page.fill("#limits input[name=queue]", "ui")
    page.fill("#limits input[name=concurrency]", "3")
    page.fill("#limits input[name=rate_limit]", "50")
    page.click("text=Save limits")
    expect(page.locator(".notice")).to_have_text("ui limits saved")
    expect(page.locator('tr[data-queue="ui"]')).to_contain_text("50 / 1 s")
    (ui,) = [q for q in client.queues() if q["name"] == "ui"]
    assert (ui["concurrency"], ui["rate_limit"]) == (3, 50)

    page.locator('tr[data-queue="ui"] a.edit').click()
    expect(page.locator("#limits input[name=concurrency]")).to_have_value("3")
    expect(page.locator("#limits input[name=rate_limit]")).to_have_value("50")
    page.fill("#limits input[name=concurrency]", "4")
    page.click("text=Save limits")
    expect(page.locator(".notice")).to_have_text("ui limits saved")
    (ui,) = [q for q in client.queues() if q["name"] == "ui"]
    assert (ui["concurrency"], ui["rate_limit"]) == (4, 50)


def test_workers_page_shows_the_worker_and_its_running_task(page: Page, client: Client) -> None:
    task = client.submit("ui.block")
    wait_status(client, task["id"], "started")
    (worker,) = client.workers()
    page.goto("/ui/workers")
    row = page.locator(f'tr[data-worker="{worker["id"]}"]')
    expect(row).to_contain_text("alive")
    expect(row).to_contain_text(task["id"])
    assert worker["slots"] == 10  # the worker's default concurrency
    expect(row.locator("td.slots")).to_have_text("10")
    screenshot(page, "workers")
    client.cancel(task["id"])
    expect(row).not_to_contain_text(task["id"])


def test_schedules_page_enables_and_disables(page: Page, client: Client) -> None:
    # A queue no worker serves: the occurrences are submitted (and shown) but never run.
    target = {"task": "ui.steps", "kwargs": {"steps": 1, "pause": 0.0}, "queue": "ui-sched"}
    client.create_schedule(
        {"id": "ui-every", "cron": "* * * * * *", "target": target, "enabled": False}
    )
    try:
        page.goto("/ui/schedules")
        expect(page.locator("h1")).to_have_text("Schedules")
        row = page.locator('tr[data-schedule="ui-every"]')
        expect(row.locator(".state")).to_have_text("disabled")
        expect(row.locator(".next")).to_have_text("-")
        row.locator("text=Enable").click()
        expect(page.locator(".notice")).to_have_text("ui-every enabled")
        row = page.locator('tr[data-schedule="ui-every"]')
        expect(row.locator(".state")).to_have_text("enabled")
        expect(row.locator(".next")).to_contain_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"))
        # the worker fires it and the page shows the run without a reload
        expect(row.locator("a[href*='/ui/tasks/sched']")).not_to_have_count(0)
        screenshot(page, "schedules")
        (shown,) = [s for s in client.schedules() if s["id"] == "ui-every"]
        assert shown["enabled"] is True
        assert len(shown["next_fires"]) == 5
        row.locator("text=Disable").click()
        expect(page.locator(".notice")).to_have_text("ui-every disabled")
        expect(page.locator('tr[data-schedule="ui-every"] .state')).to_have_text("disabled")
        (shown,) = [s for s in client.schedules() if s["id"] == "ui-every"]
        assert (shown["enabled"], shown["next_fire"]) == (False, None)
    finally:
        client.delete_schedule("ui-every")
        fired = client.list_tasks(queue="ui-sched", limit=1000)["tasks"]
        client.cancel_many([t["id"] for t in fired])
