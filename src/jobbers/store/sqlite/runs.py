"""SQL for workflow runs: the run row, its tasks (through ``task_flow``) and cancelling it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from jobbers import effects
from jobbers.compact_json import dumps
from jobbers.models import NewTask, Run, RunPage, TaskRecord
from jobbers.store.base import CancelResult, DuplicateTaskConflict
from jobbers.store.sqlite.steps import apply, fingerprint, insert_many, load


def create(conn: sqlite3.Connection, run: Run, tasks: Sequence[NewTask], at: float) -> None:
    inserted = conn.execute(
        "INSERT INTO runs (id, name, created_at, graph) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO NOTHING",
        (run.id, run.name, run.created_at, dumps(run.graph)),
    ).rowcount
    if not inserted:
        raise DuplicateTaskConflict([run.id], f"run id {run.id} already used")
    conn.execute("SAVEPOINT run_tasks")
    made = insert_many(conn, [(t, fingerprint(t)) for t in tasks], at, all_or_none=True)
    if made is None:
        conn.execute("ROLLBACK TO run_tasks")
        conn.execute("RELEASE run_tasks")
        raise DuplicateTaskConflict([t.id for t in tasks])
    conn.execute("RELEASE run_tasks")


def _run(row: sqlite3.Row) -> Run:
    return Run(
        row["id"], row["name"], row["created_at"], json.loads(row["graph"]), row["cancelled_at"]
    )


def page(conn: sqlite3.Connection, limit: int, cursor: str | None, name: str | None) -> RunPage:
    clauses: list[str] = []
    params: list[str | int] = []
    if name is not None:
        clauses.append("name = ?")
        params.append(name)
    if cursor is not None:
        clauses.append("rowid < ?")
        params.append(int(cursor))
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = conn.execute(
        f"SELECT rowid AS seq, * FROM runs {where} ORDER BY rowid DESC LIMIT ?",
        [*params, limit + 1],
    ).fetchall()
    shown = rows[:limit]
    more = len(rows) > limit and shown
    return RunPage([_run(r) for r in shown], str(shown[-1]["seq"]) if more else None)


def _task_ids(conn: sqlite3.Connection, run_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT f.task_id FROM task_flow f JOIN tasks t ON t.id = f.task_id"
        " WHERE f.run_id = ? ORDER BY t.rowid",
        (run_id,),
    )
    return [r[0] for r in rows]


def read(conn: sqlite3.Connection, run_id: str) -> tuple[Run, list[TaskRecord]] | None:
    row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        return None
    ids = _task_ids(conn, run_id)
    records = load(conn, ids)
    return _run(row), [records[i] for i in ids if i in records]


def cancel(conn: sqlite3.Connection, run_id: str, reason: str, at: float) -> CancelResult | None:
    """Every task of the run not yet ended, cancelled in one transaction, the waiting ones
    first, so that cancelling a parent releases none of them (an error handler)."""
    found = conn.execute(
        "UPDATE runs SET cancelled_at = COALESCE(cancelled_at, ?) WHERE id = ? RETURNING id",
        (at, run_id),
    ).fetchone()
    if found is None:
        return None
    result = CancelResult()
    step = effects.CANCEL
    ids = _task_ids(conn, run_id)
    waiting = {
        r[0]
        for r in conn.execute(
            "SELECT t.id FROM task_flow f JOIN tasks t ON t.id = f.task_id"
            " WHERE f.run_id = ? AND t.status = 'waiting'",
            (run_id,),
        )
    }
    for task_id in sorted(ids, key=lambda i: i not in waiting):
        row = conn.execute(
            "SELECT status, worker, attempt FROM tasks WHERE id = ?", (task_id,)
        ).fetchone()
        if row["status"] in step.sources:
            apply(
                conn,
                task_id,
                step,
                row["status"],
                at,
                row["worker"],
                attempt=row["attempt"],
                reason=reason,
            )
            result.cancelled.append(task_id)
    return result
