"""The SQLite store's schema and the SQL steps it composes, each run inside one transaction.

Every status change goes through :func:`move`, which checks the state machine and records the
event, so no step can write a transition the table does not allow.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from jobbers.compact_json import dumps
from jobbers.models import (
    Attempt,
    ErrorInfo,
    NewTask,
    QueueConfig,
    RetryPolicy,
    Status,
    TaskRecord,
    check_transition,
)
from jobbers.policy import FailureKind, decide, policy_json, rate_window_start, room
from jobbers.policy import fingerprint as policy_fingerprint
from jobbers.store.base import Report, new_record
from jobbers.store.sqlite.counts import count_inserted

T = TypeVar("T")

#: Stay well under SQLite's bound-parameter limit.
CHUNK = 5000
#: ``wait_for_change`` looks at PRAGMA data_version for other processes' commits, first every
#: 1 ms, backing off to 50 ms: a busy worker, or a caller waiting for a result, reacts within a
#: millisecond or two; an idle one costs ~1 % of a core.
CHANGE_POLL_MIN = 0.001
CHANGE_POLL_MAX = 0.05
#: A worker not seen for this long (killed without unregistering) is dropped from the list.
STALE_WORKER = 600.0
TASK_COLUMNS = (
    "id, name, queue, kwargs, status, priority, policy, retries, lost, attempt, due_at,"
    " submitted_at, updated_at, started_at, finished_at, worker, lease_expires_at, heartbeat_at,"
    " result, error"
)


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def placeholders(n: int) -> str:
    return ",".join("?" * n)


def error_json(error: ErrorInfo | None) -> str | None:
    return dumps(error.to_json()) if error else None


def fingerprint(task: NewTask) -> str:
    return policy_fingerprint(task)


def clock(now: float | None) -> float:
    return time.time() if now is None else now


def data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def insert_many(
    conn: sqlite3.Connection,
    tasks: Sequence[tuple[NewTask, str]],
    at: float,
    *,
    all_or_none: bool = False,
) -> dict[str, TaskRecord] | None:
    """Insert new tasks (each with its fingerprint) and their first event; the records as
    :func:`load` would read them back, built without reading.

    ``all_or_none``: when any id already exists, return None having inserted only the tasks
    before it (the caller rolls those back) and nothing else; a fresh batch costs no lookup.
    """
    rows = []
    made: dict[str, TaskRecord] = {}
    for task, print_ in tasks:
        scheduled = task.due_at is not None and task.due_at > at
        status = Status.SCHEDULED if scheduled else Status.SUBMITTED
        kwargs = dumps(task.kwargs)
        rows.append(
            (
                task.id,
                task.name,
                task.queue,
                kwargs,
                print_,
                status.value,
                task.priority,
                policy_json(task.policy),
                task.policy.max_heartbeat_interval,
                task.due_at if scheduled else None,
                at,
                at,
            )
        )
        made[task.id] = new_record(task, kwargs, at)
    inserted = conn.executemany(
        "INSERT INTO tasks (id, name, queue, kwargs, fingerprint, status, priority, policy,"
        " hb_interval, due_at, submitted_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
        + (" ON CONFLICT (id) DO NOTHING" if all_or_none else ""),
        rows,
    ).rowcount
    if all_or_none and inserted != len(rows):
        return None
    conn.executemany(
        "INSERT INTO events (task_id, status, at) VALUES (?, ?, ?)",
        [(row[0], row[5], at) for row in rows],
    )
    count_inserted(conn, [(row[2], row[1], row[5]) for row in rows])
    return made


def event(
    conn: sqlite3.Connection,
    task_id: str,
    status: Status,
    at: float,
    worker: str | None,
    reason: str | None,
) -> None:
    conn.execute(
        "INSERT INTO events (task_id, status, at, worker, reason) VALUES (?, ?, ?, ?, ?)",
        (task_id, str(status), at, worker, reason),
    )


def move(
    conn: sqlite3.Connection,
    task_id: str,
    current: str,
    target: Status,
    at: float,
    worker: str | None,
    reason: str | None,
) -> None:
    """The single place a status changes: checked against the state machine, then recorded."""
    check_transition(task_id, Status(current), target)
    conn.execute(
        "UPDATE tasks SET status = ?, updated_at = ? WHERE id = ?", (str(target), at, task_id)
    )
    event(conn, task_id, target, at, worker, reason)


def promote(conn: sqlite3.Connection, at: float, queues: Sequence[str] | None) -> int:
    sql = "SELECT id FROM tasks WHERE status = 'scheduled' AND due_at <= ?"
    params: list[Any] = [at]
    if queues is not None:
        sql += f" AND queue IN ({placeholders(len(queues))})"
        params.extend(queues)
    due = [r["id"] for r in conn.execute(sql, params).fetchall()]
    for task_id in due:
        move(conn, task_id, Status.SCHEDULED, Status.SUBMITTED, at, None, "due")
        conn.execute("UPDATE tasks SET due_at = NULL WHERE id = ?", (task_id,))
    return len(due)


def queue_config(conn: sqlite3.Connection, name: str) -> QueueConfig:
    row = conn.execute("SELECT * FROM queues WHERE name = ?", (name,)).fetchone()
    if row is None:
        return QueueConfig(name)
    return QueueConfig(
        name=name,
        concurrency=row["concurrency"],
        rate_limit=row["rate_limit"],
        rate_period=row["rate_period"],
        paused=bool(row["paused"]),
    )


def room_for(conn: sqlite3.Connection, config: QueueConfig, limit: int, at: float) -> int:
    """How many tasks of this queue may start now, across every worker."""
    if config.paused:
        return 0
    running = started = 0
    if config.concurrency is not None:
        running = conn.execute(
            "SELECT COUNT(*) FROM tasks WHERE status = 'started' AND queue = ?", (config.name,)
        ).fetchone()[0]
    if config.rate_limit is not None:
        started = conn.execute(
            "SELECT COUNT(*) FROM starts WHERE queue = ? AND at > ?",
            (config.name, rate_window_start(config, at)),
        ).fetchone()[0]
    return room(config, limit, running, started)


def start(conn: sqlite3.Connection, task_id: str, worker: str, lease: float, at: float) -> None:
    move(conn, task_id, Status.SUBMITTED, Status.STARTED, at, worker, None)
    number = conn.execute(
        "UPDATE tasks SET attempt = attempt + 1, worker = ?, started_at = ?, finished_at = NULL,"
        " lease_expires_at = ?, heartbeat_at = NULL WHERE id = ? RETURNING attempt",
        (worker, at, at + lease, task_id),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO attempts (task_id, number, worker, started_at, outcome)"
        " VALUES (?, ?, ?, ?, 'running')",
        (task_id, number, worker, at),
    )


def end_attempt(
    conn: sqlite3.Connection,
    task_id: str,
    number: int,
    outcome: str,
    error: ErrorInfo | None,
    at: float,
) -> None:
    conn.execute(
        "UPDATE attempts SET finished_at = ?, outcome = ?, error = ?"
        " WHERE task_id = ? AND number = ? AND outcome = 'running'",
        (at, outcome, error_json(error), task_id, number),
    )


def apply_outcome(
    conn: sqlite3.Connection, row: sqlite3.Row, report: Report, worker: str, at: float
) -> None:
    outcome = report.outcome
    task_id = report.task_id
    if outcome.kind == "completed":
        end_attempt(conn, task_id, report.attempt, "completed", None, at)
        move(conn, task_id, Status.STARTED, Status.COMPLETED, at, worker, None)
        conn.execute(
            "UPDATE tasks SET result = ?, error = NULL, finished_at = ?, lease_expires_at = NULL"
            " WHERE id = ?",
            (dumps(outcome.result), at, task_id),
        )
    elif outcome.kind == "handed_back":
        end_attempt(conn, task_id, report.attempt, "handed_back", None, at)
        move(conn, task_id, Status.STARTED, Status.SUBMITTED, at, worker, "handed back")
        conn.execute(
            "UPDATE tasks SET worker = NULL, lease_expires_at = NULL WHERE id = ?", (task_id,)
        )
    elif outcome.kind == "cancelled":
        end_attempt(conn, task_id, report.attempt, "cancelled", outcome.error, at)
        move(conn, task_id, Status.STARTED, Status.CANCELLED, at, worker, "cancelled by the task")
        conn.execute(
            "UPDATE tasks SET finished_at = ?, lease_expires_at = NULL WHERE id = ?",
            (at, task_id),
        )
    else:
        error = outcome.error or ErrorInfo("Error", "the task failed without an error")
        end_attempt(conn, task_id, report.attempt, outcome.kind, error, at)
        kind: FailureKind = "timeout" if outcome.kind == "timeout" else "failed"
        retry_or_fail(conn, row, Status.STARTED, kind, error, worker, at)


def stall(
    conn: sqlite3.Connection,
    task_id: str,
    worker: str | None,
    attempt: int,
    outcome: FailureKind,
    error: ErrorInfo,
    at: float,
) -> None:
    end_attempt(conn, task_id, attempt, outcome, error, at)
    move(conn, task_id, Status.STARTED, Status.STALLED, at, worker, error.message)
    row = conn.execute(
        "SELECT id, policy, retries, lost FROM tasks WHERE id = ?", (task_id,)
    ).fetchone()
    retry_or_fail(conn, row, Status.STALLED, outcome, error, worker, at)


def retry_or_fail(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    current: Status,
    kind: FailureKind,
    error: ErrorInfo,
    worker: str | None,
    at: float,
) -> None:
    """The policy decides: back to ``scheduled``, else ``failed`` (then ``dead``)."""
    task_id = row["id"]
    policy = RetryPolicy.from_json(json.loads(row["policy"]))
    decision = decide(policy, kind, error, row["retries"], row["lost"], at)
    conn.execute(
        "UPDATE tasks SET error = ?, lease_expires_at = NULL, retries = ?, lost = ? WHERE id = ?",
        (error_json(error), decision.retries, decision.lost, task_id),
    )
    move(conn, task_id, current, decision.status, at, worker, decision.reason)
    if decision.status is Status.SCHEDULED:
        conn.execute("UPDATE tasks SET due_at = ? WHERE id = ?", (decision.due_at, task_id))
        return
    conn.execute("UPDATE tasks SET finished_at = ? WHERE id = ?", (at, task_id))
    if decision.dead:
        move(conn, task_id, Status.FAILED, Status.DEAD, at, worker, "dead-lettered")


def load(conn: sqlite3.Connection, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
    ids = list(dict.fromkeys(task_ids))
    rows: list[sqlite3.Row] = []
    attempts: dict[str, list[Attempt]] = {}
    for chunk in chunks(ids):
        marks = placeholders(len(chunk))
        rows.extend(
            conn.execute(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({marks})", list(chunk))
        )
        for a in conn.execute(
            f"SELECT * FROM attempts WHERE task_id IN ({marks}) ORDER BY task_id, number",
            list(chunk),
        ):
            attempts.setdefault(a["task_id"], []).append(
                Attempt(
                    number=a["number"],
                    worker=a["worker"],
                    started_at=a["started_at"],
                    finished_at=a["finished_at"],
                    outcome=a["outcome"],
                    error=ErrorInfo.from_json(json.loads(a["error"]) if a["error"] else None),
                )
            )
    return {r["id"]: record(r, attempts.get(r["id"], [])) for r in rows}


def record(r: sqlite3.Row, attempts: list[Attempt]) -> TaskRecord:
    return TaskRecord(
        id=r["id"],
        name=r["name"],
        queue=r["queue"],
        kwargs=json.loads(r["kwargs"]),
        status=Status(r["status"]),
        priority=r["priority"],
        policy=RetryPolicy.from_json(json.loads(r["policy"])),
        submitted_at=r["submitted_at"],
        updated_at=r["updated_at"],
        retries=r["retries"],
        lost=r["lost"],
        due_at=r["due_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        worker=r["worker"],
        lease_expires_at=r["lease_expires_at"],
        heartbeat_at=r["heartbeat_at"],
        result=json.loads(r["result"]) if r["result"] is not None else None,
        error=ErrorInfo.from_json(json.loads(r["error"]) if r["error"] else None),
        attempts=tuple(attempts),
    )


def insert_fresh(
    conn: sqlite3.Connection, tasks: Sequence[NewTask], prints: Sequence[str], at: float
) -> dict[str, TaskRecord] | None:
    """The common case without a lookup: every id is new (a generated id always is). None when
    an id repeats in the batch or exists already, with nothing of the batch left inserted."""
    if len({t.id for t in tasks}) != len(tasks):
        return None
    pairs = list(zip(tasks, prints, strict=True))
    if len(pairs) == 1:  # a single row that existed inserted nothing
        return insert_many(conn, pairs, at, all_or_none=True)
    conn.execute("SAVEPOINT fresh")
    made = insert_many(conn, pairs, at, all_or_none=True)
    if made is None:
        conn.execute("ROLLBACK TO fresh")
    conn.execute("RELEASE fresh")
    return made
