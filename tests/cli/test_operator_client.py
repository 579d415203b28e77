"""The blocking Client's operator calls against a real ``jobbers dev`` process."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobbers import Client
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


def _kill(db: Path, task_id: str) -> None:
    """Fail a task on a queue the dev worker does not serve, so it lands in the dead letters."""

    async def main() -> None:
        store = SQLiteStore(str(db))
        try:
            await run_to(store, task_id, "failed", queue="parked")
        finally:
            await store.close()

    asyncio.run(main())


def test_client_operator_calls(manager: tuple[DevServer, Path]) -> None:
    server, db = manager
    with Client(server.url) as client:
        ids = []
        for _ in range(2):
            ids.append(client.submit("add", queue="parked")["id"])
            _kill(db, ids[-1])
        page = client.dead_letter(queue="parked", limit=10)
        assert [t["id"] for t in page["tasks"]] == ids[::-1]
        assert page["cursor"] is None
        assert client.resubmit([ids[0]])["resubmitted"] == [ids[0]]
        assert client.delete_dead(ids) == {"deleted": [ids[1]], "not_deleted": [ids[0]]}
        assert any(q["name"] == "parked" and q["depth"] == 1 for q in client.queues())
        (worker,) = client.workers()
        assert worker["queues"] == ["default"]
