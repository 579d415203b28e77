"""The SQL steps the PostgreSQL store composes, each inside one transaction.

Every status change goes through :func:`apply` (or :func:`start` for a claim), which checks the
state machine and writes what the step's :class:`jobbers.effects.Effect` says in one UPDATE
built from it, so this backend writes the table's rules and none of its own. Events are buffered
on the :class:`Tx` and written by :meth:`Tx.flush` last, just before COMMIT (see there why).
A step that ends tasks settles the edges waiting on them in the same transaction
(:func:`settle`), as the SQLite steps and the Redis scripts do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeAlias

import asyncpg
import asyncpg.pool

from jobbers import effects
from jobbers.compact_json import dumps
from jobbers.effects import Effect, Field
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
from jobbers.store.tally import timing_rows

#: A worker not seen for this long (killed without unregistering) is dropped from the list.
STALE_WORKER = 600.0
TASK_COLUMNS = (
    "id, seq, name, queue, kwargs, status, priority, policy, retries, lost, attempt, due_at,"
    " submitted_at, updated_at, started_at, finished_at, worker, lease_expires_at,"
    " heartbeat_at, result, error, trace"
)
STATUS = {s.value: s for s in Status}
#: A connection of its own or one lent by the pool: the steps use either.
Conn: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"


def clock(now: float | None) -> float:
    return time.time() if now is None else now


def error_json(error: ErrorInfo | None) -> str | None:
    return dumps(error.to_json()) if error else None


@dataclass
class Tx:
    """One transaction's connection, with what it writes last: its events and the running
    tasks it cancelled (announced to workers on commit)."""

    conn: Conn
    feed_lock: int
    channel: str
    events: list[tuple[str, str, float, str | None, str | None]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    #: Counts of inserted tasks per (queue, name, status): the trigger sees only updates.
    inserted: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: Monotonic total increments per (queue, name, total), appended once by :meth:`flush`.
    totals: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def tally(self, rows: Sequence[tuple[str, str, str, float]]) -> None:
        for queue, name, key, n in rows:
            group = (queue, name, key)
            self.totals[group] = self.totals.get(group, 0) + n

    def event(
        self, task_id: str, status: Status, at: float, worker: str | None, reason: str | None
    ) -> None:
        self.events.append((task_id, status.value, at, worker, reason))

    async def flush(self) -> None:
        """Write the buffered events, counts of new tasks and totals in one statement, the
        events under a transaction-level advisory lock, then notify.

        The feed's cursor is the events' ``seq``, and commit order is not ``seq`` order: two
        transactions may take 10 and 11 and commit 11 first, and a reader that then saw 11 would
        move past 10 for good. Taking one lock before the first event's ``seq`` and holding it
        to COMMIT makes every writer of events take its numbers and commit one after another,
        so when a reader sees a ``seq``, every smaller one is already visible. (The alternative,
        reading only rows of transactions older than the snapshot's xmin, still lets an older
        transaction commit a smaller ``seq`` after a reader passed a larger one.) Written last,
        the lock is held only for the insert and the commit itself."""
        if not (self.events or self.inserted or self.totals):
            return
        groups = list(self.inserted.items())
        totals = list(self.totals.items())
        ids, statuses, ats, workers, reasons = ([e[i] for e in self.events] for i in range(5))
        # One statement, one round trip: the lock's row joins every event row, so it is held
        # before the first event takes its ``seq``.
        await self.conn.execute(
            "WITH lock AS (SELECT pg_advisory_xact_lock($8) AS held),"
            " c AS (INSERT INTO task_count_deltas (queue, name, status, tasks, retries)"
            " SELECT q, n, s, k, 0 FROM unnest($9::text[], $10::text[], $11::text[],"
            " $12::bigint[]) AS g(q, n, s, k)),"
            " t AS (INSERT INTO task_total_deltas (queue, name, total, n)"
            " SELECT * FROM unnest($13::text[], $14::text[], $15::text[], $16::float8[])),"
            " e AS (INSERT INTO events (task_id, status, at, worker, reason)"
            " SELECT u.t, u.s, u.a, u.w, u.r FROM lock, unnest($1::text[], $2::text[],"
            " $3::float8[], $4::text[], $5::text[]) WITH ORDINALITY AS u(t, s, a, w, r, o)"
            " ORDER BY u.o)"
            " SELECT pg_notify($6, p) FROM unnest($7::text[]) AS p",
            list(ids),
            list(statuses),
            list(ats),
            list(workers),
            list(reasons),
            self.channel,
            notices(self.cancelled),
            self.feed_lock,
            [g[0] for g, _ in groups],
            [g[1] for g, _ in groups],
            [g[2] for g, _ in groups],
            [n for _, n in groups],
            [k[0] for k, _ in totals],
            [k[1] for k, _ in totals],
            [k[2] for k, _ in totals],
            [n for _, n in totals],
        )


#: Bytes of ids one notification carries (PostgreSQL's limit is 8,000).
NOTICE_BYTES = 7000


def notices(cancelled: Sequence[str]) -> list[str]:
    """The payloads announcing a commit: ``""``, or the cancelled running tasks' ids as JSON
    lists, as many as their length needs."""
    if not cancelled:
        return [""]
    out: list[str] = []
    chunk: list[str] = []
    size = 0
    for task_id in cancelled:
        if chunk and size + len(task_id.encode()) + 4 > NOTICE_BYTES:
            out.append(dumps(chunk))
            chunk, size = [], 0
        chunk.append(task_id)
        size += len(dumps(task_id).encode()) + 1
    out.append(dumps(chunk))
    return out


class Params:
    """``$n`` placeholders by name, numbered in the order first asked for."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str) -> str:
        if name not in self.names:
            self.names.append(name)
        return f"${self.names.index(name) + 1}"


def _columns(effect: Effect, p: Params, per_task: str = "") -> list[str]:
    """What a step writes, generated from its effect (as the SQLite steps do); the values it
    sets come from ``per_task`` (an alias whose columns are named as the fields) when given."""
    columns = [f"status = {p('status')}", f"updated_at = {p('at')}"]
    columns += [f"{f} = NULL" for f in sorted(effect.clears)]
    columns += [
        f"{f} = {per_task}.{f}" if per_task else f"{f} = {p(str(f))}" for f in sorted(effect.sets)
    ]
    if effect.finishes:
        columns.append(f"{Field.FINISHED} = {p('at')}")
    if effect.spends is not None:
        columns.append(f"{effect.spends} = tasks.{effect.spends} + 1")
    columns += [f"{c} = 0" for c in sorted(effect.resets)]
    return columns


#: The SQL type of each field a step may set, for the arrays that carry them.
_SET_TYPES = {Field.RESULT: "text", Field.ERROR: "text", Field.DUE: "float8"}


@cache
def _update(effect: Effect) -> tuple[str, tuple[str, ...]]:
    """One UPDATE applies the step to a batch of tasks, their set values passed as arrays."""
    p = Params()
    fields = sorted(effect.sets)
    cols = ", ".join(_columns(effect, p, per_task="u"))
    arrays = [f"{p('ids')}::text[]", *(f"{p(str(f))}::{_SET_TYPES[f]}[]" for f in fields)]
    names = ", ".join(["id", *(str(f) for f in fields)])
    sql = (
        f"UPDATE tasks SET {cols} FROM unnest({', '.join(arrays)}) AS u({names})"
        " WHERE tasks.id = u.id RETURNING tasks.queue, tasks.name, tasks.started_at"
    )
    return sql, tuple(p.names)


@cache
def _start() -> tuple[str, tuple[str, ...]]:
    """A start also begins the next attempt on the claiming worker, with its lease."""
    p = Params()
    cols = [
        *_columns(effects.START, p),
        "attempt = attempt + 1",
        f"worker = {p('worker')}",
        f"started_at = {p('at')}",
        f"{Field.LEASE} = {p('lease')}",
    ]
    sql = (
        f"UPDATE tasks SET {', '.join(cols)} WHERE id = ANY({p('ids')}::text[])"
        " RETURNING id, attempt, queue, name"
    )
    return sql, tuple(p.names)


@dataclass(frozen=True)
class Step:
    """One task's share of a step: what its attempt records and the values the step sets."""

    task_id: str
    worker: str | None = None
    attempt: int = 0
    kind: str = ""
    error: ErrorInfo | None = None
    reason: str | None = None
    result: JSON = None
    due_at: float | None = None


async def apply_batch(
    tx: Tx,
    effect: Effect,
    current: Status,
    at: float,
    steps: Sequence[Step],
    *,
    cascade: bool = True,
) -> None:
    """The one way statuses change: ``effect`` from ``current`` for every task of ``steps``, in
    one UPDATE of the tasks (and one of their attempts when the step ends them): a batch costs
    the round trips of one task. The event of each names its worker when the step does.

    A step that ends its tasks settles what waits on them (:func:`settle`) unless ``cascade``
    is off; the caller holds the tasks' row locks, so no new edge to them can slip past."""
    if not steps:
        return
    for step in steps:
        check_transition(step.task_id, current, effect.to)
    if effect.attempt is not None and current == Status.STARTED:
        outcomes = [s.kind if effect.attempt == "reported" else effect.attempt for s in steps]
        errors = [error_json(s.error) if effect.attempt_error else None for s in steps]
        await tx.conn.execute(
            "UPDATE attempts SET finished_at = $1, outcome = u.outcome, error = u.error"
            " FROM unnest($2::text[], $3::int[], $4::text[], $5::text[])"
            " AS u(id, number, outcome, error) WHERE attempts.task_id = u.id"
            " AND attempts.number = u.number AND attempts.outcome = 'running'",
            at,
            [s.task_id for s in steps],
            [s.attempt for s in steps],
            outcomes,
            errors,
        )
    values: dict[str, Any] = {
        "status": effect.to.value,
        "at": at,
        "ids": [s.task_id for s in steps],
        Field.RESULT: [dumps(s.result) for s in steps],
        Field.ERROR: [error_json(s.error) for s in steps],
        Field.DUE: [s.due_at for s in steps],
    }
    sql, names = _update(effect)
    changed = await tx.conn.fetch(sql, *(values[n] for n in names))
    tally_step(tx, effect, current, at, changed)
    for step in steps:
        worker = step.worker if effect.names_worker else None
        tx.event(step.task_id, effect.to, at, worker, effect.reason_for(step.reason))
        if effect is effects.CANCEL and current in (Status.STARTED, Status.STALLED):
            tx.cancelled.append(step.task_id)
    if cascade and effect.to in effects.FINAL and current not in effects.FINAL:
        ended = [s.task_id for s in steps]
        await settle(tx, await close_edges(tx, ended), effect.to, at)


def tally_step(
    tx: Tx, effect: Effect, current: Status, at: float, changed: Sequence[asyncpg.Record]
) -> None:
    """The totals a step moves: its own, and each ended attempt's run time (started to now)."""
    timed = effect.attempt is not None and current == Status.STARTED
    for r in changed:
        if effect.total is not None:
            tx.tally([(r["queue"], r["name"], effect.total, 1)])
        if timed and r["started_at"] is not None:
            tx.tally(timing_rows("run", r["queue"], r["name"], at - r["started_at"]))


async def apply(
    tx: Tx, task_id: str, effect: Effect, current: Status, at: float, worker: str | None
) -> None:
    """:func:`apply_batch` for one task whose step sets nothing and ends no attempt."""
    await apply_batch(tx, effect, current, at, [Step(task_id, worker)])


async def start(
    tx: Tx, task_ids: Sequence[str], worker: str, lease: float, at: float, ready: Sequence[float]
) -> None:
    """``ready[i]``: when ``task_ids[i]`` became ``submitted`` (its ``updated_at`` before this
    step), where its wait starts."""
    step = effects.START
    for task_id in task_ids:
        check_transition(task_id, Status.SUBMITTED, step.to)
    values = {"status": step.to.value, "at": at, "worker": worker, "lease": at + lease}
    values_ids: dict[str, Any] = {**values, "ids": list(task_ids)}
    sql, names = _start()
    rows = await tx.conn.fetch(sql, *(values_ids[n] for n in names))
    await tx.conn.executemany(
        "INSERT INTO attempts (task_id, number, worker, started_at, outcome)"
        " VALUES ($1, $2, $3, $4, $5)",
        [(r["id"], r["attempt"], worker, at, step.attempt) for r in rows],
    )
    assert step.total is not None
    since = dict(zip(task_ids, ready, strict=True))
    for r in rows:
        tx.tally([(r["queue"], r["name"], step.total, 1)])
        tx.tally(timing_rows("wait", r["queue"], r["name"], at - since[r["id"]]))
    for task_id in task_ids:
        tx.event(task_id, step.to, at, worker, step.reason)


async def promote(tx: Tx, at: float, queues: Sequence[str] | None) -> int:
    sql = "SELECT id FROM tasks WHERE status = 'scheduled' AND due_at <= $1"
    args: list[Any] = [at]
    if queues is not None:
        sql += " AND queue = ANY($2::text[])"
        args.append(list(queues))
    due = [r["id"] for r in await tx.conn.fetch(sql + " ORDER BY id FOR UPDATE SKIP LOCKED", *args)]
    await apply_batch(tx, effects.DUE, Status.SCHEDULED, at, [Step(t) for t in due])
    return len(due)


def queue_config_of(row: asyncpg.Record | None, name: str) -> QueueConfig:
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
    "running": "SELECT COUNT(*) FROM tasks WHERE status = 'started' AND queue = $1",
    "recent_starts": "SELECT COUNT(*) FROM starts WHERE queue = $1 AND at > $2",
}


async def room_for(tx: Tx, config: QueueConfig, limit: int, at: float) -> int:
    """How many tasks of this queue may start now, across every worker; the caller holds the
    queue's row lock, so no other claim counts the same room."""
    used: dict[str, int] = {}
    for cap in effects.CAPS:
        if getattr(config, cap.limit) is None:
            continue
        since = effects.window_start(config, cap, at)
        args: list[Any] = [config.name] + ([since] if cap.used == "recent_starts" else [])
        used[cap.used] = int(await tx.conn.fetchval(USED[cap.used], *args))
    return effects.room(config, limit, lambda cap: used.get(cap.used, 0))


async def insert_new(
    tx: Tx, tasks: Sequence[tuple[NewTask, str]], at: float
) -> tuple[dict[str, TaskRecord], set[str]]:
    """Insert the tasks whose ids are new; the records of those, and the ids that existed."""
    rows = []
    made: dict[str, TaskRecord] = {}
    for task, print_ in tasks:
        kwargs = dumps(task.kwargs)
        record = new_record(task, kwargs, at)
        made[task.id] = record
        rows.append(
            (
                task.id,
                task.name,
                task.queue,
                kwargs,
                print_,
                record.status.value,
                task.priority,
                policy_json(task.policy),
                task.policy.max_heartbeat_interval,
                record.due_at,
                task.trace,
            )
        )
    cols: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)] if rows else [[]] * 11
    inserted = await tx.conn.fetch(
        "INSERT INTO tasks (id, name, queue, kwargs, fingerprint, status, priority, policy,"
        " hb_interval, due_at, trace, submitted_at, updated_at)"
        " SELECT i, n, q, k, f, s, p, po, h, d, tr, $12, $12 FROM unnest($1::text[],"
        " $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[],"
        " $9::float8[], $10::float8[], $11::text[])"
        " WITH ORDINALITY AS u(i, n, q, k, f, s, p, po, h, d, tr, o) ORDER BY o"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        *cols,
        at,
    )
    fresh = {r["id"] for r in inserted}
    for task, _ in tasks:
        if task.id not in fresh:
            continue
        task_id = task.id
        record = made[task_id]
        tx.event(task_id, record.status, at, None, None)
        group = (record.queue, record.name, record.status.value)
        tx.inserted[group] = tx.inserted.get(group, 0) + 1
        tx.tally([(record.queue, record.name, effects.SUBMITTED, 1)])
    existed = {t.id for t, _ in tasks} - fresh
    linked = [t for t, _ in tasks if t.id in fresh and (t.after or t.run or t.inputs)]
    if linked:
        await link(tx, linked, at)
    return {k: v for k, v in made.items() if k in fresh}, existed


Plan = list[tuple[Effect, Status, Step]]


def outcome_plan(row: asyncpg.Record, report: Report, worker: str, at: float) -> Plan:
    """A worker's report: its step, or for a failure the steps the policy decides."""
    outcome = report.outcome
    step = effects.REPORTED.get(outcome.kind)
    if step is not None:
        given = Step(
            report.task_id, worker, report.attempt, error=outcome.error, result=outcome.result
        )
        return [(step, Status.STARTED, given)]
    kind: FailureKind = "timeout" if outcome.kind == "timeout" else "failed"
    error = effects.failure_error(outcome.error)
    return policy_plan(row, Status.STARTED, kind, error, worker, at, report.attempt)


def stall_plan(row: asyncpg.Record, kind: FailureKind, error: ErrorInfo, at: float) -> Plan:
    """An attempt found dead or stuck: started -> stalled, then the policy decides."""
    step = effects.REAPED[kind]
    first = Step(row["id"], row["worker"], row["attempt"], error=error, reason=error.message)
    rest = policy_plan(row, step.to, kind, error, row["worker"], at, row["attempt"])
    return [(step, Status.STARTED, first), *rest]


def policy_plan(
    row: asyncpg.Record,
    current: Status,
    kind: FailureKind,
    error: ErrorInfo,
    worker: str | None,
    at: float,
    attempt: int,
) -> Plan:
    """The policy decides: back to ``scheduled``, else ``failed`` (then ``dead``). ``row``
    holds the task's counters as they were before these steps (a stall spends none)."""
    policy = RetryPolicy.from_json(json.loads(row["policy"]))
    decision = decide(policy, kind, error, row["retries"], row["lost"], at)
    plan: Plan = []
    for step in decision.steps:
        given = Step(
            row["id"], worker, attempt, kind, error, decision.reason, due_at=decision.due_at
        )
        plan.append((step, current, given))
        current = step.to
    return plan


async def run_plans(tx: Tx, plans: Sequence[Plan], at: float) -> None:
    """Each task's steps in order; the n-th steps of all tasks together, one batch per step
    and source status."""
    depth = max((len(p) for p in plans), default=0)
    for n in range(depth):
        batches: dict[tuple[Effect, Status], list[Step]] = {}
        for plan in plans:
            if n < len(plan):
                effect, current, step = plan[n]
                batches.setdefault((effect, current), []).append(step)
        for (effect, current), steps in batches.items():
            await apply_batch(tx, effect, current, at, steps)


#: A task with its attempts, in one statement: one snapshot, so the two always agree.
LOAD = (
    f"SELECT {TASK_COLUMNS}, f.run_id, f.inputs,"
    " (SELECT json_agg(json_build_array(a.number, a.worker, a.started_at, a.finished_at,"
    " a.outcome, a.error) ORDER BY a.number) FROM attempts a"
    " WHERE a.task_id = tasks.id) AS attempts FROM tasks"
    " LEFT JOIN task_flow f ON f.task_id = tasks.id WHERE id = ANY($1::text[])"
)


async def load(conn: Conn, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
    ids = list(dict.fromkeys(task_ids))
    if not ids:
        return {}
    out: dict[str, TaskRecord] = {}
    for r in await conn.fetch(LOAD, ids):
        attempts = [
            Attempt(
                number=number,
                worker=worker,
                started_at=started,
                finished_at=finished,
                outcome=outcome,
                error=ErrorInfo.from_json(json.loads(error) if error else None),
            )
            for number, worker, started, finished, outcome, error in json.loads(
                r["attempts"] or "[]"
            )
        ]
        out[r["id"]] = record(r, attempts)
    return out


def record(r: asyncpg.Record, attempts: list[Attempt]) -> TaskRecord:
    return TaskRecord(
        id=r["id"],
        name=r["name"],
        queue=r["queue"],
        kwargs=json.loads(r["kwargs"]),
        status=STATUS[r["status"]],
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


# -- workflows: edges between tasks ---------------------------------------------------------


async def link(tx: Tx, tasks: Sequence[NewTask], at: float) -> None:
    """The new tasks' runs, inputs and edges; an edge whose parent has already ended is
    settled at once, as that parent's end would have settled it. The parents are read under a
    share lock: a parent ending meanwhile either committed first (seen ended here) or waits for
    this commit, and then closes the new edges itself."""
    flow = [(t.id, t.run, t.inputs) for t in tasks if t.run or t.inputs]
    if flow:
        ids, runs, inputs = zip(*flow, strict=True)
        await tx.conn.execute(
            "INSERT INTO task_flow (task_id, run_id, inputs)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
            list(ids),
            list(runs),
            list(inputs),
        )
    edges = [(t.id, e.parent, i, e.key, e.on) for t in tasks for i, e in enumerate(t.after)]
    if not edges:
        return
    children, parents, ords, keys, ons = zip(*edges, strict=True)
    await tx.conn.execute(
        "INSERT INTO task_edges (child, parent, ord, key, on_end)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[])",
        list(children),
        list(parents),
        list(ords),
        list(keys),
        list(ons),
    )
    rows = await tx.conn.fetch(
        "SELECT id, status FROM tasks WHERE id = ANY($1::text[]) ORDER BY id FOR SHARE",
        sorted(set(parents)),
    )
    ended: dict[Status, list[str]] = {}
    for r in rows:
        if r["status"] in effects.FINAL:
            ended.setdefault(STATUS[r["status"]], []).append(r["id"])
    for status, done in ended.items():
        await settle(tx, await close_edges(tx, done), status, at)


async def close_edges(tx: Tx, parents: Sequence[str]) -> list[asyncpg.Record]:
    """The open edges from ``parents`` (tasks that just ended), closed: each closes once."""
    return await tx.conn.fetch(
        "UPDATE task_edges SET open = FALSE WHERE parent = ANY($1::text[]) AND open"
        " RETURNING parent, child, on_end",
        list(parents),
    )


async def settle(tx: Tx, closed: Sequence[asyncpg.Record], ended: Status, at: float) -> None:
    """Tasks whose edges ``closed`` (their parents ended ``ended``): each still waiting is
    skipped (cancelled) when an edge did not get the end it waited for, which ends it in turn,
    else released when it has no open edge left. Runs in the step that ended the parents, so
    it happens once. The waiting tasks are locked before their open edges are counted: of two
    parents ending at once, the second to lock sees the first's closed edge and releases."""
    work = [(closed, ended)]
    while work:
        closed, ended = work.pop()
        children = sorted({r["child"] for r in closed})
        if not children:
            continue
        waiting = {
            r["id"]
            for r in await tx.conn.fetch(
                "SELECT id FROM tasks WHERE id = ANY($1::text[]) AND status = 'waiting'"
                " ORDER BY id FOR UPDATE",
                children,
            )
        }
        skipped: dict[str, str] = {}
        for r in closed:
            if r["child"] in waiting and not effects.satisfies(r["on_end"], ended):
                skipped.setdefault(r["child"], r["parent"])
        rest = [c for c in children if c in waiting and c not in skipped]
        still: set[str] = set()
        if rest:
            still = {
                r["child"]
                for r in await tx.conn.fetch(
                    "SELECT DISTINCT child FROM task_edges WHERE child = ANY($1::text[]) AND open",
                    rest,
                )
            }
        released = [Step(c) for c in rest if c not in still]
        await apply_batch(tx, effects.RELEASE, Status.WAITING, at, released)
        if skipped:
            skips = [Step(c, reason=effects.skip_reason(p, ended)) for c, p in skipped.items()]
            await apply_batch(tx, effects.SKIP, Status.WAITING, at, skips, cascade=False)
            work.append((await close_edges(tx, list(skipped)), effects.SKIP.to))


async def fan_out(
    tx: Tx, task_id: str, spawn: Sequence[NewTask], collector: NewTask, at: float
) -> None:
    """A completing task's children and collector, stored before the completion in the same
    transaction; the collector takes over what waited on the task."""
    made = [*spawn, collector]
    await insert_new(tx, [(t, policy_fingerprint(t)) for t in made], at)
    await tx.conn.execute(
        "UPDATE task_edges SET parent = $1 WHERE parent = $2 AND open", collector.id, task_id
    )


async def parent_results(conn: Conn, task_id: str) -> list[tuple[str | None, JSON]]:
    rows = await conn.fetch(
        "SELECT e.key, t.result FROM task_edges e JOIN tasks t ON t.id = e.parent"
        " WHERE e.child = $1 AND t.status = 'completed' ORDER BY e.ord",
        task_id,
    )
    return [(r["key"], json.loads(r["result"]) if r["result"] is not None else None) for r in rows]


async def drop_flow(conn: Conn, task_ids: Sequence[str]) -> None:
    """What deleted tasks leave of workflows: their run and inputs, and their edges."""
    await conn.execute("DELETE FROM task_flow WHERE task_id = ANY($1::text[])", list(task_ids))
    await conn.execute("DELETE FROM task_edges WHERE child = ANY($1::text[])", list(task_ids))
