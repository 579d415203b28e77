"""A task list carries each task's latest progress, as one task does, so a table can show it."""

from __future__ import annotations

import httpx
import pytest

from jobbers.store.base import AttemptNotes, LogLine, Store

from .helpers import WORKER

pytestmark = pytest.mark.anyio


async def test_the_list_shows_the_latest_attempt_s_progress(
    api: httpx.AsyncClient, store: Store
) -> None:
    working = (await api.post("/tasks", json={"name": "sleep", "kwargs": {"seconds": 5}})).json()
    silent = (await api.post("/tasks", json={"name": "sleep", "kwargs": {"seconds": 5}})).json()
    waiting = (await api.post("/tasks", json={"name": "sleep", "kwargs": {"seconds": 5}})).json()
    claimed = await store.claim(WORKER, ["default"], 2, lease=30.0)
    assert {t.id for t in claimed} == {working["id"], silent["id"]}
    line = LogLine(0.0, "INFO", "a line lists never show")
    await store.add_notes(
        WORKER,
        [
            AttemptNotes(working["id"], 1, 0.42, "row 42 of 100", (line,)),
            AttemptNotes(silent["id"], 1, None, "", (line,)),
        ],
    )
    listed = {t["id"]: t for t in (await api.get("/tasks")).json()["tasks"]}
    assert listed[working["id"]]["progress"] == {"fraction": 0.42, "message": "row 42 of 100"}
    assert listed[silent["id"]]["progress"] is None
    assert listed[waiting["id"]]["progress"] is None
    assert "logs" not in listed[working["id"]]["attempts"][0]
    one = (await api.get(f"/tasks/{working['id']}")).json()
    assert one["progress"] == listed[working["id"]]["progress"]
