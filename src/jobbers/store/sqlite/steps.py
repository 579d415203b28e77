"""The SQL steps the SQLite store composes, each run inside one transaction.

Every status change goes through :func:`apply`, which checks the state machine, writes what
the step's :class:`jobbers.effects.Effect` says in one UPDATE built from it, and records the
event, so no step can write a transition the table does not allow, nor a rule of its own.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any, TypeVar

from jobbers import effects
from jobbers.compact_json import dumps
from jobbers.effects import Cap, Effect, Field
from jobbers.models import (
    JSON,
    Attempt,
    ErrorInfo,
    NewTask,
    QueueConfig,
    RetryPolicy,
    Status,
    TaskRecord,
    check_transition,
)
from jobbers.policy import FailureKind, decide, policy_json
from jobbers.policy import fingerprint as policy_fingerprint
from jobbers.store.base import Report, new_record
from jobbers.store.sqlite.counts import ADD_TOTAL, count_inserted
from jobbers.store.tally import timing_rows

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
    " result, error, trace"
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
        scheduled = task.due_at is not None and task.due_at > at and not task.after
        status = Status.WAITING if task.after else Status.SUBMITTED
        status = Status.SCHEDULED if scheduled else status
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
                task.trace,
            )
        )
        made[task.id] = new_record(task, kwargs, at)
    inserted = conn.executemany(
        "INSERT INTO tasks (id, name, queue, kwargs, fingerprint, status, priority, policy,"
        " hb_interval, due_at, submitted_at, updated_at, trace)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
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
    linked = [task for task, _ in tasks if task.after or task.run or task.inputs]
    if linked:
        link(conn, linked, at)
    return made


def link(conn: sqlite3.Connection, tasks: Sequence[NewTask], at: float) -> None:
    """The new tasks' runs, inputs and edges; an edge whose parent has already ended is
    settled at once, as that parent's end would have settled it."""
    conn.executemany(
        "INSERT INTO task_flow (task_id, run_id, inputs) VALUES (?, ?, ?)",
        [(t.id, t.run, t.inputs) for t in tasks if t.run or t.inputs],
    )
    conn.executemany(
        "INSERT INTO task_edges (child, parent, ord, key, on_end) VALUES (?, ?, ?, ?, ?)",
        [(t.id, e.parent, i, e.key, e.on) for t in tasks for i, e in enumerate(t.after)],
    )
    parents = list({e.parent for t in tasks for e in t.after})
    ended: list[tuple[str, Status]] = []
    for chunk in chunks(parents):
        rows = conn.execute(
            f"SELECT id, status FROM tasks WHERE id IN ({placeholders(len(chunk))})",
            list(chunk),
        )
        ended += [(r[0], Status(r[1])) for r in rows if r[1] in effects.FINAL]
    for parent, status in ended:
        resolve(conn, parent, status, at)


def resolve(conn: sqlite3.Connection, parent: str, ended: Status, at: float) -> None:
    """A task has ended: each task waiting on it is released when this was its last open
    edge and every edge got the end it waited for, or skipped (cancelled) at once when not,
    which ends it in turn. Runs in the step that ended the parent, so it happens once."""
    stack = [(parent, ended)]
    while stack:
        done, end = stack.pop()
        rows = conn.execute(
            "UPDATE task_edges SET open = 0 WHERE parent = ? AND open = 1 RETURNING child, on_end",
            (done,),
        ).fetchall()
        for child, on in rows:
            found = conn.execute("SELECT status FROM tasks WHERE id = ?", (child,)).fetchone()
            if found is None or found[0] != Status.WAITING:
                continue
            if not effects.satisfies(on, end):
                reason = effects.skip_reason(done, end)
                apply(conn, child, effects.SKIP, found[0], at, None, reason=reason, cascade=False)
                stack.append((child, effects.SKIP.to))
            elif (
                conn.execute(
                    "SELECT 1 FROM task_edges WHERE child = ? AND open = 1 LIMIT 1", (child,)
                ).fetchone()
                is None
            ):
                apply(conn, child, effects.RELEASE, found[0], at, None)


def hand_over(conn: sqlite3.Connection, task_id: str, to: str) -> None:
    """What waits on ``task_id`` waits on ``to`` instead (a fan-out's collector)."""
    conn.execute("UPDATE task_edges SET parent = ? WHERE parent = ? AND open = 1", (to, task_id))


def parent_results(conn: sqlite3.Connection, task_id: str) -> list[tuple[str | None, JSON]]:
    rows = conn.execute(
        "SELECT e.key, t.result FROM task_edges e JOIN tasks t ON t.id = e.parent"
        " WHERE e.child = ? AND t.status = 'completed' ORDER BY e.ord",
        (task_id,),
    )
    return [(key, json.loads(result) if result is not None else None) for key, result in rows]


def drop_flow(conn: sqlite3.Connection, task_ids: Sequence[str]) -> None:
    marks = placeholders(len(task_ids))
    conn.execute(f"DELETE FROM task_flow WHERE task_id IN ({marks})", list(task_ids))
    conn.execute(f"DELETE FROM task_edges WHERE child IN ({marks})", list(task_ids))


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


def _columns(effect: Effect) -> list[str]:
    """What a step writes, its values named: :func:`apply` passes them."""
    columns = ["status = :status", "updated_at = :at"]
    columns += [f"{field} = NULL" for field in sorted(effect.clears)]
    columns += [f"{field} = :{field}" for field in sorted(effect.sets)]
    if effect.finishes:
        columns.append(f"{Field.FINISHED} = :at")
    if effect.spends is not None:
        columns.append(f"{effect.spends} = {effect.spends} + 1")
    columns += [f"{counter} = 0" for counter in sorted(effect.resets)]
    return columns


@cache
def _update(effect: Effect) -> str:
    """Returns what the step's totals are kept by: the task's queue, name and start."""
    return (
        f"UPDATE tasks SET {', '.join(_columns(effect))} WHERE id = :id"
        " RETURNING queue, name, started_at"
    )


#: A start also begins the next attempt on the claiming worker, with its lease.
_START = (
    "UPDATE tasks SET "
    + ", ".join(
        [
            *_columns(effects.START),
            "attempt = attempt + 1",
            "worker = :worker",
            "started_at = :at",
            f"{Field.LEASE} = :lease",
        ]
    )
    + " WHERE id = :id RETURNING attempt, queue, name"
)


def apply(
    conn: sqlite3.Connection,
    task_id: str,
    effect: Effect,
    current: str,
    at: float,
    worker: str | None,
    *,
    attempt: int = 0,
    kind: str = "",
    error: ErrorInfo | None = None,
    reason: str | None = None,
    result: JSON = None,
    due_at: float | None = None,
    cascade: bool = True,
) -> None:
    """The one way a status changes: ``effect`` from ``current``. ``attempt`` (its number)
    and ``kind`` (the failure reported) are what the attempt records when the step ends it (an
    attempt runs only while its task is started); ``error``, ``result`` and ``due_at`` are the
    values of the fields the step sets; ``reason``, the event's when the step's is given."""
    check_transition(task_id, Status(current), effect.to)
    if effect.attempt is not None and current == Status.STARTED:
        outcome = kind if effect.attempt == "reported" else effect.attempt
        kept = error if effect.attempt_error else None
        end_attempt(conn, task_id, attempt, outcome, kept, at)
    values: dict[str, Any] = {"status": effect.to.value, "at": at, "id": task_id}
    if Field.RESULT in effect.sets:
        values[Field.RESULT] = dumps(result)
    if Field.ERROR in effect.sets:
        values[Field.ERROR] = error_json(error)
    if Field.DUE in effect.sets:
        values[Field.DUE] = due_at
    queue, name, started_at = conn.execute(_update(effect), values).fetchone()
    rows: list[tuple[str, str, str, float]] = []
    if effect.total is not None:
        rows.append((queue, name, effect.total, 1))
    if effect.attempt is not None and current == Status.STARTED and started_at is not None:
        rows += timing_rows("run", queue, name, at - started_at)
    if rows:
        conn.executemany(ADD_TOTAL, rows)
    event(
        conn,
        task_id,
        effect.to,
        at,
        worker if effect.names_worker else None,
        effect.reason_for(reason),
    )
    if cascade and effect.to in effects.FINAL and current not in effects.FINAL:
        resolve(conn, task_id, effect.to, at)


def promote(conn: sqlite3.Connection, at: float, queues: Sequence[str] | None) -> int:
    sql = "SELECT id FROM tasks WHERE status = 'scheduled' AND due_at <= ?"
    params: list[Any] = [at]
    if queues is not None:
        sql += f" AND queue IN ({placeholders(len(queues))})"
        params.extend(queues)
    due = [r["id"] for r in conn.execute(sql, params).fetchall()]
    for task_id in due:
        apply(conn, task_id, effects.DUE, Status.SCHEDULED, at, None)
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


#: What counts against each room cap (:data:`jobbers.effects.CAPS`), by the name it gives.
USED = {
    "running": "SELECT COUNT(*) FROM tasks WHERE status = 'started' AND queue = :queue",
    "recent_starts": "SELECT COUNT(*) FROM starts WHERE queue = :queue AND at > :since",
}


def room_for(conn: sqlite3.Connection, config: QueueConfig, limit: int, at: float) -> int:
    """How many tasks of this queue may start now, across every worker."""

    def used(cap: Cap) -> int:
        since = effects.window_start(config, cap, at)
        found = conn.execute(USED[cap.used], {"queue": config.name, "since": since}).fetchone()
        return int(found[0])

    return effects.room(config, limit, used)


def start(
    conn: sqlite3.Connection, task_id: str, worker: str, lease: float, at: float, ready: float
) -> None:
    """``ready``: when the task became ``submitted`` (its ``updated_at`` before this step),
    where its wait starts."""
    step = effects.START
    check_transition(task_id, Status.SUBMITTED, step.to)
    values = {
        "status": step.to.value,
        "at": at,
        "id": task_id,
        "worker": worker,
        "lease": at + lease,
    }
    number, queue, name = conn.execute(_START, values).fetchone()
    assert step.total is not None
    conn.executemany(
        ADD_TOTAL, [(queue, name, step.total, 1), *timing_rows("wait", queue, name, at - ready)]
    )
    event(conn, task_id, step.to, at, worker, step.reason)
    conn.execute(
        "INSERT INTO attempts (task_id, number, worker, started_at, outcome)"
        " VALUES (?, ?, ?, ?, ?)",
        (task_id, number, worker, at, step.attempt),
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
    """A worker's report: its step, or for a failure the steps the policy decides."""
    outcome = report.outcome
    step = effects.REPORTED.get(outcome.kind)
    if outcome.collector is not None and step is effects.COMPLETE:
        fan_out(conn, report.task_id, outcome.spawn, outcome.collector, at)
    if step is not None:
        apply(
            conn,
            report.task_id,
            step,
            Status.STARTED,
            at,
            worker,
            attempt=report.attempt,
            error=outcome.error,
            result=outcome.result,
        )
        return
    kind: FailureKind = "timeout" if outcome.kind == "timeout" else "failed"
    error = effects.failure_error(outcome.error)
    retry_or_fail(conn, row, Status.STARTED, kind, error, worker, at, report.attempt)


def fan_out(
    conn: sqlite3.Connection,
    task_id: str,
    spawn: Sequence[NewTask],
    collector: NewTask,
    at: float,
) -> None:
    """A completing task's children and collector, stored before the completion in the same
    step; the collector takes over what waited on the task."""
    made = [*spawn, collector]
    insert_many(conn, [(t, fingerprint(t)) for t in made], at)
    hand_over(conn, task_id, collector.id)


def stall(
    conn: sqlite3.Connection,
    task_id: str,
    worker: str | None,
    attempt: int,
    kind: FailureKind,
    error: ErrorInfo,
    at: float,
) -> None:
    """An attempt found dead or stuck: started -> stalled, then the policy decides."""
    step = effects.REAPED[kind]
    apply(
        conn,
        task_id,
        step,
        Status.STARTED,
        at,
        worker,
        attempt=attempt,
        error=error,
        reason=error.message,
    )
    row = conn.execute(
        "SELECT id, policy, retries, lost FROM tasks WHERE id = ?", (task_id,)
    ).fetchone()
    retry_or_fail(conn, row, step.to, kind, error, worker, at, attempt)


def retry_or_fail(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    current: Status,
    kind: FailureKind,
    error: ErrorInfo,
    worker: str | None,
    at: float,
    attempt: int,
) -> None:
    """The policy decides: back to ``scheduled``, else ``failed`` (then ``dead``)."""
    task_id = row["id"]
    policy = RetryPolicy.from_json(json.loads(row["policy"]))
    decision = decide(policy, kind, error, row["retries"], row["lost"], at)
    for step in decision.steps:
        apply(
            conn,
            task_id,
            step,
            current,
            at,
            worker,
            attempt=attempt,
            kind=kind,
            error=error,
            reason=decision.reason,
            due_at=decision.due_at,
        )
        current = step.to


def load(conn: sqlite3.Connection, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
    ids = list(dict.fromkeys(task_ids))
    rows: list[sqlite3.Row] = []
    attempts: dict[str, list[Attempt]] = {}
    for chunk in chunks(ids):
        marks = placeholders(len(chunk))
        rows.extend(
            conn.execute(
                f"SELECT {TASK_COLUMNS}, f.run_id, f.inputs FROM tasks"
                f" LEFT JOIN task_flow f ON f.task_id = tasks.id WHERE id IN ({marks})",
                list(chunk),
            )
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
        trace=r["trace"],
        run=r["run_id"],
        inputs=r["inputs"],
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
