"""SQL for workflow runs on PostgreSQL: the run row, its tasks (through ``task_flow``) and
cancelling it, each inside the store's one transaction per call."""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg

from jobbers import effects
from jobbers.compact_json import dumps
from jobbers.models import NewTask, Run, RunPage, Status, TaskRecord
from jobbers.policy import fingerprint
from jobbers.store.base import CancelResult, DuplicateTaskConflict
from jobbers.store.postgres.steps import STATUS, Conn, Step, Tx, apply_batch, insert_new, load


async def create(tx: Tx, run: Run, tasks: Sequence[NewTask], at: float) -> None:
    """Raising rolls the whole transaction back: a repeat stores nothing."""
    inserted = await tx.conn.fetchval(
        "INSERT INTO runs (id, name, created_at, graph) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (id) DO NOTHING RETURNING 1",
        run.id,
        run.name,
        run.created_at,
        dumps(run.graph),
    )
    if inserted is None:
        raise DuplicateTaskConflict([run.id], f"run id {run.id} already used")
    _, existed = await insert_new(tx, [(t, fingerprint(t)) for t in tasks], at)
    if existed:
        raise DuplicateTaskConflict([t.id for t in tasks])


def _run(row: asyncpg.Record) -> Run:
    return Run(
        row["id"], row["name"], row["created_at"], json.loads(row["graph"]), row["cancelled_at"]
    )


async def page(conn: Conn, limit: int, cursor: int | None, name: str | None) -> RunPage:
    clauses: list[str] = []
    params: list[str | int] = []
    if name is not None:
        params.append(name)
        clauses.append(f"name = ${len(params)}")
    if cursor is not None:
        params.append(cursor)
        clauses.append(f"seq < ${len(params)}")
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    params.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT * FROM runs {where} ORDER BY seq DESC LIMIT ${len(params)}", *params
    )
    shown = rows[:limit]
    more = len(rows) > limit and shown
    return RunPage([_run(r) for r in shown], str(shown[-1]["seq"]) if more else None)


async def _task_ids(conn: Conn, run_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT f.task_id FROM task_flow f JOIN tasks t ON t.id = f.task_id"
        " WHERE f.run_id = $1 ORDER BY t.seq",
        run_id,
    )
    return [r["task_id"] for r in rows]


async def read(conn: Conn, run_id: str) -> tuple[Run, list[TaskRecord]] | None:
    """The run row and its tasks in one snapshot, so a read never shows half a change."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow("SELECT * FROM runs WHERE id = $1", run_id)
        if row is None:
            return None
        ids = await _task_ids(conn, run_id)
        records = await load(conn, ids)
    return _run(row), [records[i] for i in ids if i in records]


async def cancel(tx: Tx, run_id: str, reason: str, at: float) -> CancelResult | None:
    """Every task of the run not yet ended, cancelled in one transaction: the waiting ones
    first, one by one in submission order, each as it is by then (so that cancelling a parent
    releases none of them, an error handler; one a cancelled parent skipped stays skipped, one
    it released is cancelled as submitted), then the rest, a batch per status. The run's tasks
    are locked in id order first, as every call that changes several tasks locks them, again
    until no task joined the run meanwhile (a fan-out that committed while this waited for its
    parent's lock)."""
    found = await tx.conn.fetchval(
        "UPDATE runs SET cancelled_at = COALESCE(cancelled_at, $1) WHERE id = $2 RETURNING 1",
        at,
        run_id,
    )
    if found is None:
        return None
    result = CancelResult()
    step = effects.CANCEL
    rows: dict[str, asyncpg.Record] = {}
    while True:
        ids = await _task_ids(tx.conn, run_id)
        fresh = [i for i in ids if i not in rows]
        if not fresh:
            break
        for r in await tx.conn.fetch(
            "SELECT id, status FROM tasks WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
            fresh,
        ):
            rows[r["id"]] = r
    ids = [i for i in ids if i in rows]
    for task_id in [i for i in ids if rows[i]["status"] == Status.WAITING]:
        status = await tx.conn.fetchval("SELECT status FROM tasks WHERE id = $1", task_id)
        if status in step.sources:
            await apply_batch(tx, step, STATUS[status], at, [Step(task_id, reason=reason)])
            result.cancelled.append(task_id)
    rest = await tx.conn.fetch(
        "SELECT id, status, worker, attempt FROM tasks WHERE id = ANY($1::text[])",
        [i for i in ids if rows[i]["status"] != Status.WAITING],
    )
    current = {r["id"]: r for r in rest}
    by_status: dict[Status, list[Step]] = {}
    for task_id in ids:
        row = current.get(task_id)
        if row is None or row["status"] not in step.sources:
            continue
        given = Step(task_id, row["worker"], row["attempt"], reason=reason)
        by_status.setdefault(STATUS[row["status"]], []).append(given)
        result.cancelled.append(task_id)
    for status, steps in by_status.items():
        await apply_batch(tx, step, status, at, steps)
    return result
