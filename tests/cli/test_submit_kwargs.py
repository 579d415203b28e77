"""`jobbers submit --store` checks kwargs like the API; `status --store` masks declared secrets."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from typer.testing import CliRunner

import jobbers.examples  # noqa: F401  (add)
from jobbers.cli import app
from jobbers.models import NewTask, RetryPolicy, TaskDefinition, WorkerInfo
from jobbers.store import open_store

runner = CliRunner()


def test_bad_kwargs_fail_in_one_line_and_store_nothing(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    result = runner.invoke(
        app, ["submit", "add", "--kwargs", '{"x": 1}', "--id", "t-1", "--store", store]
    )
    assert result.exit_code == 1
    assert "missing keyword argument 'y'" in result.output
    assert runner.invoke(app, ["status", "t-1", "--store", store]).exit_code == 1


async def _declare_and_submit(url: str) -> None:
    store = open_store(url)
    try:
        info = WorkerInfo("w:1:aa", "w", ("default",), time.time(), time.time(), 0)
        pin = TaskDefinition("remote.pin2", "default", RetryPolicy(), None, ("pin",))
        await store.register_worker(info, [pin])
        await store.submit([NewTask("t-2", "remote.pin2", {"pin": "4321"})])
    finally:
        await store.close()


def test_status_masks_secrets_a_worker_declared(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    asyncio.run(_declare_and_submit(url))
    shown = runner.invoke(app, ["status", "t-2", "--store", url])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["kwargs"] == {"pin": "***"}
