"""A secret kwarg and an Airflow-style JWT given to tasks appear in no page, no API answer and no
log line of the run: not when the task logs them, returns them, or fails with one in its error."""

from __future__ import annotations

import json
import time

import httpx
from playwright.sync_api import Page

from jobbers import Client

from ..cli.conftest import DevServer
from .conftest import TOKEN
from .test_browser import wait_status

SECRET = "pw-Zq81-never-shown"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0YXNrLTEiLCJleHAiOjE5MDAwMDAwMDB9"
    ".c2lnbmF0dXJlLW5vdC1yZWFs"
)


def test_secrets_never_leave_the_task(page: Page, client: Client, manager: DevServer) -> None:
    ok = client.submit("ui.secretive", {"password": SECRET, "token": JWT})
    bad = client.submit("ui.secretive", {"password": SECRET, "token": JWT, "fail": True})
    wait_status(client, ok["id"], "completed")
    wait_status(client, bad["id"], "dead")
    deadline = time.monotonic() + 5
    while len((done := client.get(ok["id"]))["attempts"][0]["logs"]) < 2:
        assert time.monotonic() < deadline, "the task's log lines were not stored"
        time.sleep(0.05)
    assert done["result"] == {"token": "***", "rows": 3}
    lines = [line["message"] for line in done["attempts"][0]["logs"]]
    assert lines == ["connecting with *** and ***", "token=***"]
    assert client.get(bad["id"])["error"]["message"] == "login refused for ***"

    seen: list[str] = []
    for path in (
        "/ui",
        "/ui/tasks",
        f"/ui/tasks/{ok['id']}",
        f"/ui/tasks/{bad['id']}",
        "/ui/dead-letter",
        "/ui/queues",
        "/ui/workers",
        f"/ui/tasks/{ok['id']}?fragment=1",
    ):
        page.goto(path)
        seen.append(page.content())
    answers = [
        client.get(ok["id"]),
        client.get(bad["id"]),
        client.list_tasks(limit=1000),
        client.dead_letter(),
        client.events(),
        client.queues(),
        client.workers(),
    ]
    seen.extend(json.dumps(answer) for answer in answers)
    metrics = httpx.get(f"{manager.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert metrics.status_code == 200
    seen.append(metrics.text)
    log = manager.output()
    assert f"{ok['id']}" in log  # the log does cover this run
    seen.append(log)
    for text in seen:
        assert SECRET not in text
        assert JWT not in text
        assert JWT.split(".")[1] not in text
