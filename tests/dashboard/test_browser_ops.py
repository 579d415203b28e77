"""The operator's pages in a real browser against a real Manager and worker, on each store
backend: cancel from the task list, re-run a completed task, a worker's page, switching the
charts' time range, the warning for a queue no worker serves, login returning to the page asked
for, and ``/docs`` drawn by Swagger UI with every request off this machine blocked. Each saves a
screenshot for the docs."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from jobbers import Client

from ..cli.conftest import DevServer, start_dev
from ..conftest import BACKENDS, RedisServer
from .conftest import ARTIFACTS, REPO, TOKEN
from .test_browser import wait_status

pytestmark = pytest.mark.slow
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="module", params=BACKENDS)
def manager(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevServer]:
    """The conftest's Manager, once per store backend."""
    workdir = tmp_path_factory.mktemp("ops")
    store = f"sqlite:///{workdir / 'ui.db'}"
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        store = f"{server.url}?prefix=ui{uuid.uuid4().hex[:8]}"
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    dev = start_dev(
        workdir,
        "--tasks",
        "tests.dashboard.ui_tasks",
        "--queues",
        "default,ui",
        "--token",
        TOKEN,
        "--grace",
        "0",
        "--store",
        store,
        env=env,
    )
    try:
        yield dev
    finally:
        dev.stop()


def shot(page: Page, name: str) -> None:
    """The top of the page in a small window: small enough to keep in ``docs/images``."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = page.viewport_size
    page.set_viewport_size({"width": 1024, "height": 640})
    try:
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"))
    finally:
        if size is not None:
            page.set_viewport_size(size)


def test_cancel_selected_and_all_matching_from_the_list(page: Page, client: Client) -> None:
    tasks = [client.submit("ui.block", queue="ui") for _ in range(3)]
    for task in tasks:
        wait_status(client, task["id"], "started")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/ui/tasks?name=ui.block&status=started")
    first = page.locator(f'tr[data-id="{tasks[0]["id"]}"]')
    expect(first.locator(".progress-cell")).to_contain_text("10%")
    shot(page, "task-list")
    first.locator("input[type=checkbox]").check()
    page.click("#cancel-selected")
    expect(page.locator(".notice")).to_have_text("cancelled 1 task(s)")
    assert client.get(tasks[0]["id"])["status"] == "cancelled"
    assert client.get(tasks[1]["id"])["status"] == "started"
    expect(page).to_have_url(re.compile(r"name=ui.block"))
    page.click("#cancel-all")
    expect(page.locator(".notice")).to_have_text("cancelled 2 task(s)")
    for task in tasks[1:]:
        assert client.get(task["id"])["status"] == "cancelled"


def test_rerun_a_completed_task(page: Page, client: Client) -> None:
    done = client.submit("ui.steps", {"steps": 1, "pause": 0.0, "password": "pw-hidden"})
    wait_status(client, done["id"], "completed")
    page.goto(f"/ui/tasks/{done['id']}")
    page.click("#rerun")
    rerun_id = f"{done['id']}.rerun-1"
    expect(page).to_have_url(re.compile(re.escape(f"/ui/tasks/{rerun_id}")))
    expect(page.locator(".notice")).to_have_text(f"re-run of {done['id']} submitted")
    expect(page.locator("#rerun-of")).to_have_text(done["id"])
    again = wait_status(client, rerun_id, "completed")
    assert again["name"] == "ui.steps"
    assert again["kwargs"] == {"steps": 1, "pause": 0.0, "password": "***"}
    expect(page.locator("#task-status")).to_have_text("completed")
    shot(page, "rerun")
    page.click("#rerun-of a")
    expect(page.locator("#reruns")).to_contain_text(rerun_id)
    expect(page.locator("#reruns")).to_contain_text("completed")


def test_a_worker_page(page: Page, client: Client) -> None:
    task = client.submit("ui.block")
    wait_status(client, task["id"], "started")
    (worker,) = client.workers()
    page.goto("/ui/workers")
    page.click(f'tr[data-worker="{worker["id"]}"] a.worker')
    expect(page.locator("h1")).to_have_text(f"Worker {worker['id']}")
    expect(page.locator("#worker-state")).to_have_text("alive")
    expect(page.locator("#worker-pid")).to_have_text(worker["id"].split(":")[-2])
    expect(page.locator("#worker-slots")).to_have_text("1 of 10 busy")
    expect(page.locator(f'#worker-running tr[data-id="{task["id"]}"]')).to_be_visible()
    shot(page, "worker")
    client.cancel(task["id"])
    expect(page.locator(f'#worker-running tr[data-id="{task["id"]}"]')).to_have_count(0)
    page.goto(f"/ui/tasks/{task['id']}")
    page.click("dd a.worker")
    expect(page.locator("h1")).to_have_text(f"Worker {worker['id']}")


def test_chart_range_switch(page: Page, client: Client) -> None:
    failed = client.submit("ui.fail", {"reason": "chart"})
    wait_status(client, failed["id"], "dead")
    page.goto("/ui")
    expect(page.locator("svg#throughput")).to_have_attribute("data-range", "1h")
    page.click('nav.ranges a[data-range="24h"]')
    expect(page).to_have_url(re.compile(r"range=24h"))
    expect(page.locator("svg#throughput")).to_have_attribute("data-range", "24h")
    expect(page.locator("h2").first).to_contain_text("Last 24 h")
    expect(page.locator("#dead-range")).not_to_have_text("0")
    expect(page.locator('#by-name tr[data-name="ui.fail"]')).to_contain_text("100%")
    page.wait_for_function(
        "() => document.querySelector('svg#throughput').dataset.range === '24h'"
        " && window.performance.getEntriesByType('resource')"
        ".some(e => e.name.includes('fragment=1'))"
    )
    expect(page.locator("svg#throughput")).to_have_attribute("data-range", "24h")
    shot(page, "overview")
    page.click('nav.ranges a[data-range="15m"]')
    expect(page.locator("svg#throughput")).to_have_attribute("data-range", "15m")


def test_the_no_worker_warning(page: Page, client: Client) -> None:
    stranded = client.submit("ui.steps", {"steps": 1, "pause": 0.0}, queue="nobody-serves")
    page.goto("/ui/queues")
    warning = page.locator('.warning[data-kind="no-worker"][data-subject="nobody-serves"]')
    expect(warning).to_contain_text("no live worker serves it")
    expect(page.locator('tr[data-queue="nobody-serves"]').first).to_be_visible()
    shot(page, "warnings")
    page.goto("/ui")
    expect(warning).to_be_visible()
    client.cancel(stranded["id"])
    page.goto("/ui/queues")
    expect(warning).to_have_count(0)


def test_login_shows_no_logout_and_returns_to_the_page_asked(
    browser: Browser, manager: DevServer
) -> None:
    context = browser.new_context(base_url=manager.url)
    try:
        tab = context.new_page()
        tab.goto("/ui/queues")
        expect(tab.locator("h1")).to_have_text("Log in")
        expect(tab.locator("text=Log out")).to_have_count(0)
        tab.fill("input[name=token]", TOKEN)
        tab.click("form.login button")
        expect(tab.locator("h1")).to_have_text("Queues")
        assert urlsplit(tab.url).path == "/ui/queues"
        expect(tab.locator("text=Log out")).to_have_count(1)
        icon = tab.locator('link[rel="icon"]').get_attribute("href")
        assert icon is not None
        assert tab.request.get(icon).headers["content-type"] == "image/svg+xml"
    finally:
        context.close()


def test_docs_render_offline_for_a_dashboard_session(browser: Browser, manager: DevServer) -> None:
    """Every request to a host other than this machine is aborted, and none is even tried."""
    context = browser.new_context(base_url=manager.url, viewport={"width": 1100, "height": 800})
    blocked: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    try:
        tab = context.new_page()
        tab.goto("/docs")
        expect(tab.locator("body")).to_contain_text("log in at /ui/login")
        tab.goto("/ui/login?next=/ui")
        tab.fill("input[name=token]", TOKEN)
        tab.click("form.login button")
        tab.wait_for_url("**/ui")
        tab.goto("/docs")
        expect(tab.locator(".swagger-ui .info .title")).to_contain_text("Jobbers Manager")
        expect(tab.locator(".swagger-ui .opblock").first).to_be_visible()
        assert tab.locator(".swagger-ui .opblock").count() >= 18
        tab.locator(".opblock-summary-path", has_text="/healthz").first.click()
        expect(tab.locator(".swagger-ui .opblock.is-open")).to_have_count(1)
        shot(tab, "docs")
        assert blocked == []
    finally:
        context.close()
