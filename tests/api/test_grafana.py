"""The Grafana dashboard in docs/ is valid JSON, and every series its queries name is one that
/metrics exposes (checked against a live scrape after work of every kind)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from jobbers.models import WorkerInfo
from jobbers.store.base import Store

from .helpers import run_to

pytestmark = pytest.mark.anyio

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "jobbers.json"
#: A metric name in PromQL: what stands before a selector, a range or an operator.
SERIES = re.compile(r"\b(jobbers_[a-z_]+)\b")


def expressions(dashboard: dict[str, Any]) -> list[str]:
    found = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            found.append(query["query"])
    return found


def test_the_dashboard_is_valid_json_with_a_query_per_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    assert all(p.get("targets") for p in panels)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


async def test_every_series_the_dashboard_names_is_exposed(
    api: httpx.AsyncClient, store: Store
) -> None:
    now = time.time()
    # A live worker without the code of ``add``: the last task below waits unrunnable.
    worker = WorkerInfo("w-1", "host", ("default",), now, now, 0, 4, ("other.task",))
    await store.register_worker(worker, [])
    for kind in ("completed", "failed"):
        task = (await api.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}})).json()
        await run_to(store, task["id"], kind)
    await api.post("/tasks", json={"name": "add", "kwargs": {"x": 1, "y": 2}})
    text = (await api.get("/metrics")).text
    exposed = {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }
    named = {
        name
        for expr in expressions(json.loads(DASHBOARD.read_text()))
        for name in SERIES.findall(expr)
    }
    assert len(named) >= 20
    assert sorted(named - exposed) == []
