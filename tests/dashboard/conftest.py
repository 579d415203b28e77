"""A real ``jobbers dev`` with an API token and the browser-test tasks, and Debian's chromium
driven by Playwright. Screenshots go to ``test-artifacts/`` at the repository root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from jobbers import Client

from ..cli.conftest import DevServer, start_dev

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
TOKEN = "ui-test-token-7f3a"
CHROMIUM = os.environ.get("JOBBERS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    server = start_dev(
        tmp_path_factory.mktemp("ui"),
        "--tasks",
        "tests.dashboard.ui_tasks",
        "--queues",
        "default,ui",
        "--token",
        TOKEN,
        "--grace",
        "0",
        env=env,
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(manager: DevServer) -> Iterator[Client]:
    with Client(manager.url, token=TOKEN) as api:
        yield api


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def page(browser: Browser, manager: DevServer) -> Iterator[Page]:
    """A logged-in page: the login form is filled once, the session cookie does the rest."""
    context = browser.new_context(base_url=manager.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    tab.goto("/ui")
    assert "/ui/login?next=" in tab.url
    tab.fill("input[name=token]", TOKEN)
    tab.click("form.login button")
    tab.wait_for_url("**/ui")
    try:
        yield tab
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)
