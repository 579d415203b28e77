"""The routes other parts build on (docs/internals.md) are all served and documented."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.anyio

CONTRACT = {
    ("post", "/tasks"),
    ("post", "/submit-task"),
    ("post", "/tasks/bulk"),
    ("get", "/tasks/{task_id}"),
    ("get", "/tasks/{task_id}/wait"),
    ("get", "/tasks"),
    ("post", "/task-status/bulk"),
    ("post", "/tasks/{task_id}/cancel"),
    ("post", "/tasks/cancel"),
    ("get", "/events"),
    ("get", "/events/latest"),
    ("get", "/healthz"),
    ("get", "/dead-letter"),
    ("post", "/dead-letter/resubmit"),
    ("post", "/dead-letter/delete"),
    ("delete", "/dead-letter/{task_id}"),
    ("get", "/queues"),
    ("put", "/queues/{name}"),
    ("get", "/workers"),
    ("get", "/metrics"),
    ("post", "/workflows"),
    ("get", "/workflows"),
    ("get", "/workflows/{run_id}"),
    ("post", "/workflows/{run_id}/cancel"),
    ("get", "/schedules"),
    ("post", "/schedules"),
    ("get", "/schedules/{schedule_id}"),
    ("put", "/schedules/{schedule_id}"),
    ("delete", "/schedules/{schedule_id}"),
}


async def test_every_contract_route_is_documented(api: httpx.AsyncClient) -> None:
    schema = (await api.get("/openapi.json")).json()
    served = {(m, p) for p, ops in schema["paths"].items() for m in ops}
    assert served == CONTRACT
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if method in ("post", "put") and path != "/tasks/{task_id}/cancel":
                assert "413" in op["responses"], (method, path)
