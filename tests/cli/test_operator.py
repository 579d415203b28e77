"""Operator calls against a real ``jobbers dev`` process: the blocking Client and the CLI tables."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from jobbers import Client
from jobbers.cli import app
from jobbers.store.sqlite import SQLiteStore

from ..api.helpers import run_to
from .conftest import DevServer, start_dev


@pytest.fixture(scope="module")
def manager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevServer, Path]]:
    workdir = tmp_path_factory.mktemp("operator")
    server = start_dev(workdir, "--grace", "1")
    try:
        yield server, workdir / "jobbers.db"
    finally:
        assert server.stop() == 0, server.output()


runner = CliRunner()


def _kill(db: Path, task_id: str, queue: str = "parked") -> None:
    """Fail a task on a queue the dev worker does not serve, so it lands in the dead letters."""

    async def main() -> None:
        store = SQLiteStore(str(db))
        try:
            await run_to(store, task_id, "failed", queue=queue)
        finally:
            await store.close()

    asyncio.run(main())


def test_client_operator_calls(manager: tuple[DevServer, Path]) -> None:
    server, db = manager
    with Client(server.url) as client:
        ids = []
        for _ in range(2):
            ids.append(client.submit("add", {"x": 1, "y": 2}, queue="parked")["id"])
            _kill(db, ids[-1])
        page = client.dead_letter(queue="parked", limit=10)
        assert [t["id"] for t in page["tasks"]] == ids[::-1]
        assert page["cursor"] is None
        assert client.resubmit([ids[0]])["resubmitted"] == [ids[0]]
        assert client.delete_dead(ids) == {"deleted": [ids[1]], "not_deleted": [ids[0]]}
        assert any(q["name"] == "parked" and q["depth"] == 1 for q in client.queues())
        (worker,) = client.workers()
        assert worker["queues"] == ["default"]


def _cli(server: DevServer, *args: str) -> Result:
    """Wide enough that rich folds no cell the test looks for."""
    result = runner.invoke(app, [*args, "--url", server.url], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result


def _cells(line: str) -> list[str]:
    """The cells of one line of a table (columns two or more spaces apart)."""
    return [cell.strip() for cell in re.split(r" {2,}", line.strip())]


def test_tables_and_json(manager: tuple[DevServer, Path]) -> None:
    server, db = manager
    with Client(server.url) as client:
        done = client.wait(client.submit("add", {"x": 2, "y": 3})["id"], timeout=10)
        dead = client.submit("add", {"x": 1, "y": 2}, queue="tables")["id"]
    _kill(db, dead, queue="tables")

    tasks = _cli(server, "tasks", "--queue", "default").output
    assert done["id"] in tasks
    assert "completed" in tasks
    as_json = json.loads(_cli(server, "tasks", "--json", "--status", "completed").output)
    assert done["id"] in [t["id"] for t in as_json["tasks"]]

    workers = json.loads(_cli(server, "workers", "--json").output)["workers"]
    assert [(w["queues"], w["slots"]) for w in workers] == [(["default"], 10)]
    table = _cli(server, "workers").output.splitlines()
    header = next(line for line in table if "slots" in line)
    (row,) = [line for line in table if workers[0]["id"] in line]
    cells = dict(zip(_cells(header), _cells(row), strict=True))
    assert (cells["id"], cells["slots"]) == (workers[0]["id"], "10")

    listed = _cli(server, "dead-letter", "list", "--queue", "tables").output
    assert dead in listed
    assert "RuntimeError: boom" in listed
    resubmitted = _cli(server, "dead-letter", "resubmit", "--queue", "tables", "--json").output
    assert json.loads(resubmitted) == {"resubmitted": [dead], "not_resubmitted": []}
    queues = _cli(server, "queues").output
    assert "tables" in queues
    assert "waiting" in queues
    (tables,) = [
        q
        for q in json.loads(_cli(server, "queues", "--json").output)["queues"]
        if q["name"] == "tables"
    ]
    assert tables["depth"] == 1
    not_dead = _cli(server, "dead-letter", "delete", dead)
    assert "deleted: 0 task(s)" in not_dead.output
    assert f"not deleted: {dead}" in not_dead.output
    _kill(db, dead, queue="tables")
    assert "deleted: 1 task(s)" in _cli(server, "dead-letter", "delete", "--all").output


def test_bulk_selection_needs_ids_or_a_filter(manager: tuple[DevServer, Path]) -> None:
    server, _ = manager
    for args in (["dead-letter", "delete"], ["dead-letter", "resubmit", "x", "--all"]):
        result = runner.invoke(app, [*args, "--url", server.url])
        assert result.exit_code == 2
        assert "give task ids" in result.output


def test_unreachable_manager_is_one_line() -> None:
    result = runner.invoke(app, ["queues", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach the Manager at http://127.0.0.1:9" in result.output


def test_bulk_actions_go_in_chunks_and_merge_the_answers() -> None:
    from jobbers.cli.tables import CHUNK, _in_chunks

    ids = [f"t-{i}" for i in range(2 * CHUNK + 7)]
    calls: list[int] = []

    def act(chunk: list[str]) -> dict[str, list[str]]:
        calls.append(len(chunk))
        return {"deleted": chunk[:-1], "not_deleted": chunk[-1:]}

    merged = _in_chunks("deleted", ids, act, quiet=False)
    assert calls == [CHUNK, CHUNK, 7]
    assert merged["not_deleted"] == [ids[CHUNK - 1], ids[2 * CHUNK - 1], ids[-1]]
    assert len(merged["deleted"]) == len(ids) - 3
