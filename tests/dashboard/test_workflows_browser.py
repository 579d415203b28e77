"""The workflow pages in a real browser against a real Manager and worker: the runs list, a
run drawn as an inline SVG graph whose nodes follow their statuses without a reload, and
cancelling a run from its page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from jobbers import Client

from .conftest import screenshot

pytestmark = pytest.mark.slow


def test_a_run_is_listed_drawn_with_statuses_and_cancelled(page: Page, client: Client) -> None:
    graph = {
        "name": "ui-flow",
        "nodes": [
            {"id": "first", "task": "ui.steps", "kwargs": {"steps": 1, "pause": 0}},
            {"id": "hold", "task": "ui.block", "kwargs": {"seconds": 120}},
            {"id": "after", "task": "ui.steps", "kwargs": {"steps": 1, "pause": 0}},
            {"id": "on_hold", "task": "ui.fail", "kwargs": {}},
        ],
        "edges": [
            {"from": "first", "to": "hold"},
            {"from": "hold", "to": "after"},
            {"from": "hold", "to": "on_hold", "on": "failed"},
        ],
    }
    run = client.submit_workflow(graph)
    page.goto("/ui/workflows")
    row = page.locator(f"tr[data-id='{run['id']}']")
    expect(row).to_contain_text("ui-flow")
    expect(row).to_contain_text("running")
    row.locator("a").click()
    svg = page.locator("svg.flow")
    expect(svg).to_be_visible()
    expect(svg.locator("g.node")).to_have_count(4)
    # the page refreshes itself: the nodes move on as the worker runs them
    expect(svg.locator("g[data-node='first']")).to_have_attribute("data-status", "completed")
    expect(svg.locator("g[data-node='hold']")).to_have_attribute("data-status", "started")
    expect(svg.locator("g[data-node='after']")).to_have_attribute("data-status", "waiting")
    assert page.locator("script[src^='http']").count() == 0
    screenshot(page, "workflow")
    page.click("#cancel")
    expect(page.locator(".notice")).to_contain_text("cancelled 3 task(s)")
    expect(page.locator("#run-status")).to_have_text("cancelled")
    expect(page.locator("#cancel")).to_have_count(0)
    for node in ("hold", "after", "on_hold"):
        expect(svg.locator(f"g[data-node='{node}']")).to_have_attribute("data-status", "cancelled")
    assert client.workflow(run["id"])["status"] == "cancelled"
