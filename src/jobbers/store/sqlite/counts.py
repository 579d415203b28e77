"""The SQLite store's summed counts: tables kept current by triggers on ``tasks``, so every
statement that inserts, changes or deletes a task updates them in its own transaction, and
``counts()`` and ``queue_stats()`` read O(groups) rows instead of scanning every task.

Finishes are summed per second and per minute: a window that starts on a minute and counts in
whole minutes (the dashboard's last hour) reads 60 rows per status instead of 3,600; any other
window reads the seconds.

Each trigger takes the old row's share out and puts the new row's in, computed from the row
alone, so the sums always equal what a scan of the tasks kept would give. Inserts are the
exception: a new task is always submitted or scheduled, with no attempt yet, so its only share
is one task in its group, and :func:`count_inserted` adds those per group in the inserting
transaction: one statement per group, where a row trigger would run one per task.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from jobbers import effects
from jobbers.models import Status
from jobbers.store.base import DURATION_BUCKETS, Durations, TaskCounts
from jobbers.store.tally import (
    OVER,
    STATUS,
    by_minute,
    durations,
    finish_buckets,
    split_totals,
)


def sql_set(statuses: frozenset[Status]) -> str:
    """A status set as an SQL list, in the table's order (trigger text never changes)."""
    return "(" + ", ".join(f"'{s.value}'" for s in effects.in_order(statuses)) + ")"


FINAL = sql_set(effects.FINAL)
RAN = sql_set(effects.RAN)


def _slot(value: str) -> str:
    cases = " ".join(
        f"WHEN {value} <= {bound!r} THEN {i}" for i, bound in enumerate(DURATION_BUCKETS)
    )
    return f"CASE {cases} ELSE {OVER} END"


def _shares(row: str, sign: str) -> dict[str, str]:
    """The statements that add (sign "") or take out (sign "-") one row's share of each sum."""
    duration = (
        "INSERT INTO duration_counts (kind, queue, slot, tasks, total)"
        " SELECT '{kind}', {row}.queue, " + _slot("v") + ", {sign}1, {sign}v"
        " FROM (SELECT MAX(0, {value}) AS v) WHERE {where}"
        " ON CONFLICT (kind, queue, slot) DO UPDATE SET"
        " tasks = tasks + excluded.tasks, total = total + excluded.total;"
    )
    return {
        "tally": (
            f"INSERT INTO task_counts (queue, name, status, tasks, retries) VALUES"
            f" ({row}.queue, {row}.name, {row}.status, {sign}1, {sign}{row}.retries)"
            " ON CONFLICT (queue, name, status) DO UPDATE SET"
            " tasks = tasks + excluded.tasks, retries = retries + excluded.retries;"
        ),
        "finish": (
            "INSERT INTO finish_counts (second, status, tasks)"
            f" SELECT CAST({row}.finished_at AS INTEGER), {row}.status, {sign}1"
            f" WHERE {row}.finished_at IS NOT NULL AND {row}.status IN {FINAL}"
            " ON CONFLICT (second, status) DO UPDATE SET tasks = tasks + excluded.tasks;"
        ),
        "minute": (
            "INSERT INTO finish_minutes (minute, status, tasks)"
            f" SELECT CAST({row}.finished_at AS INTEGER) / 60 * 60, {row}.status, {sign}1"
            f" WHERE {row}.finished_at IS NOT NULL AND {row}.status IN {FINAL}"
            " ON CONFLICT (minute, status) DO UPDATE SET tasks = tasks + excluded.tasks;"
        ),
        "wait": duration.format(
            kind="wait",
            row=row,
            sign=sign,
            value=f"{row}.started_at - COALESCE({row}.due_at, {row}.submitted_at)",
            where=f"{row}.started_at IS NOT NULL",
        ),
        "run": duration.format(
            kind="run",
            row=row,
            sign=sign,
            value=f"{row}.finished_at - {row}.started_at",
            where=f"{row}.started_at IS NOT NULL AND {row}.finished_at IS NOT NULL"
            f" AND {row}.status IN {RAN}",
        ),
    }


def _trigger(name: str, when: str, parts: list[str], old: bool = True, new: bool = True) -> str:
    body = [
        *(_shares("OLD", "-")[part] for part in parts if old),
        *(_shares("NEW", "")[part] for part in parts if new),
    ]
    return f"CREATE TRIGGER IF NOT EXISTS {name} {when} BEGIN\n" + "\n".join(body) + "\nEND;\n"


ALL = ["tally", "finish", "minute", "wait", "run"]

COUNTS_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS task_counts (
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    tasks INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    PRIMARY KEY (queue, name, status)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS finish_counts (
    second INTEGER NOT NULL,
    status TEXT NOT NULL,
    tasks INTEGER NOT NULL,
    PRIMARY KEY (second, status)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS finish_minutes (
    minute INTEGER NOT NULL,
    status TEXT NOT NULL,
    tasks INTEGER NOT NULL,
    PRIMARY KEY (minute, status)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS duration_counts (
    kind TEXT NOT NULL,
    queue TEXT NOT NULL,
    slot INTEGER NOT NULL,
    tasks INTEGER NOT NULL,
    total REAL NOT NULL,
    PRIMARY KEY (kind, queue, slot)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tasks_waiting ON tasks (status, queue, COALESCE(due_at, submitted_at));
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks (queue);
"""
    + _trigger("tasks_count_delete", "AFTER DELETE ON tasks", ALL, new=False)
    + _trigger(
        "tasks_count_status",
        "AFTER UPDATE OF status, retries ON tasks"
        " WHEN OLD.status IS NOT NEW.status OR OLD.retries IS NOT NEW.retries",
        ["tally"],
    )
    + _trigger(
        "tasks_count_finish",
        "AFTER UPDATE OF status, started_at, finished_at ON tasks WHEN OLD.status IS NOT"
        " NEW.status OR OLD.started_at IS NOT NEW.started_at OR OLD.finished_at IS NOT"
        " NEW.finished_at",
        ["finish", "minute", "run"],
    )
    + _trigger(
        "tasks_count_wait",
        "AFTER UPDATE OF started_at, due_at, submitted_at ON tasks WHEN OLD.started_at IS NOT"
        " NEW.started_at OR OLD.due_at IS NOT NEW.due_at OR OLD.submitted_at IS NOT"
        " NEW.submitted_at",
        ["wait"],
    )
)

#: Schema version 2 counted inserts with a row trigger; :func:`count_inserted` does it now.
DROP_INSERT_TRIGGER = "DROP TRIGGER IF EXISTS tasks_count_insert;\n"


def count_inserted(conn: sqlite3.Connection, groups: Iterable[tuple[str, str, str]]) -> None:
    """Add freshly inserted tasks, one ``(queue, name, status)`` per task, to their groups,
    and to the submitted total of their ``(queue, name)``."""
    tally: dict[tuple[str, str, str], int] = {}
    for group in groups:
        tally[group] = tally.get(group, 0) + 1
    conn.executemany(
        "INSERT INTO task_counts (queue, name, status, tasks, retries) VALUES (?, ?, ?, ?, 0)"
        " ON CONFLICT (queue, name, status) DO UPDATE SET tasks = tasks + excluded.tasks",
        [(*group, n) for group, n in tally.items()],
    )
    submitted: dict[tuple[str, str], int] = {}
    for (queue, name, _), n in tally.items():
        submitted[(queue, name)] = submitted.get((queue, name), 0) + n
    conn.executemany(
        ADD_TOTAL, [(q, name, effects.SUBMITTED, n) for (q, name), n in submitted.items()]
    )


#: Monotonic totals per ``(queue, name, total)`` (:attr:`jobbers.effects.Effect.total`): added
#: to by the step that makes them happen, never by a trigger, and never taken back by a delete,
#: so a prune leaves them.
TOTALS_SCHEMA = """
CREATE TABLE IF NOT EXISTS task_totals (
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    total TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (queue, name, total)
) WITHOUT ROWID;
"""
ADD_TOTAL = (
    "INSERT INTO task_totals (queue, name, total, n) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (queue, name, total) DO UPDATE SET n = n + excluded.n"
)
#: A file made before the totals starts them from the tasks it keeps (what can still be told of
#: them), once: a file that already has any total is left as it is.
TOTALS_BACKFILL = f"""
INSERT INTO task_totals (queue, name, total, n)
    SELECT queue, name, '{effects.SUBMITTED}', COUNT(*) FROM tasks
    WHERE NOT EXISTS (SELECT 1 FROM task_totals) GROUP BY queue, name;
INSERT INTO task_totals (queue, name, total, n)
    SELECT t.queue, t.name, '{effects.Total.STARTED.value}', COUNT(*) FROM attempts a
    JOIN tasks t ON t.id = a.task_id
    WHERE NOT EXISTS (SELECT 1 FROM task_totals WHERE total != '{effects.SUBMITTED}')
    GROUP BY t.queue, t.name;
INSERT INTO task_totals (queue, name, total, n)
    SELECT queue, name, '{effects.Total.FINISHED.value}:' ||
        CASE status WHEN 'dead' THEN 'failed' ELSE status END AS s, COUNT(*) FROM tasks
    WHERE status IN {FINAL}
    AND NOT EXISTS (SELECT 1 FROM task_totals WHERE total LIKE 'finished:%')
    GROUP BY queue, name, s;
INSERT INTO task_totals (queue, name, total, n)
    SELECT queue, name, '{effects.Total.RETRIED.value}', SUM(retries) FROM tasks
    WHERE retries > 0
    AND NOT EXISTS (SELECT 1 FROM task_totals WHERE total = '{effects.Total.RETRIED.value}')
    GROUP BY queue, name;
INSERT INTO task_totals (queue, name, total, n)
    SELECT queue, name, '{effects.Total.DEAD_LETTERED.value}', COUNT(*) FROM tasks
    WHERE status = 'dead'
    AND NOT EXISTS (SELECT 1 FROM task_totals WHERE total = '{effects.Total.DEAD_LETTERED.value}')
    GROUP BY queue, name;
"""


def read_totals(
    conn: sqlite3.Connection,
) -> tuple[dict[tuple[str, str, str], int], dict[tuple[str, str, str], Durations]]:
    return split_totals((r[0], r[1], r[2], r[3]) for r in conn.execute("SELECT * FROM task_totals"))


#: Schema version 4 sums finishes per minute beside the seconds: the two triggers that keep
#: ``finish_counts`` are made again with the minute share, and the minutes are filled from the
#: seconds already summed (the same tasks, so the same totals).
ADD_MINUTES = (
    "DROP TRIGGER IF EXISTS tasks_count_delete;\n"
    "DROP TRIGGER IF EXISTS tasks_count_finish;\n"
    + COUNTS_SCHEMA
    + """
DELETE FROM finish_minutes;
INSERT INTO finish_minutes (minute, status, tasks)
    SELECT second / 60 * 60 AS m, status, SUM(tasks) FROM finish_counts
    GROUP BY m, status HAVING SUM(tasks) != 0;
"""
)

#: Fills the sums of a file written before they existed (schema version 1).
BACKFILL = f"""
INSERT INTO task_counts (queue, name, status, tasks, retries)
    SELECT queue, name, status, COUNT(*), TOTAL(retries) FROM tasks GROUP BY queue, name, status;
INSERT INTO finish_counts (second, status, tasks)
    SELECT CAST(finished_at AS INTEGER) AS s, status, COUNT(*) FROM tasks
    WHERE finished_at IS NOT NULL AND status IN {FINAL} GROUP BY s, status;
INSERT INTO duration_counts (kind, queue, slot, tasks, total)
    SELECT 'wait', queue, {_slot("v")} AS slot, COUNT(*), TOTAL(v) FROM (
        SELECT queue, MAX(0, started_at - COALESCE(due_at, submitted_at)) AS v FROM tasks
        WHERE started_at IS NOT NULL) GROUP BY queue, slot;
INSERT INTO duration_counts (kind, queue, slot, tasks, total)
    SELECT 'run', queue, {_slot("v")} AS slot, COUNT(*), TOTAL(v) FROM (
        SELECT queue, MAX(0, finished_at - started_at) AS v FROM tasks
        WHERE started_at IS NOT NULL AND finished_at IS NOT NULL AND status IN {RAN})
        GROUP BY queue, slot;
"""


def drop_empty(conn: sqlite3.Connection, before: float) -> None:
    """Rows whose share went back to zero after a prune: groups and slots with no task left
    (few rows), and the seconds and minutes before ``before`` (only those a prune just emptied
    remain)."""
    conn.execute("DELETE FROM task_counts WHERE tasks = 0")
    conn.execute("DELETE FROM finish_counts WHERE second < ? AND tasks = 0", (int(before) + 1,))
    conn.execute("DELETE FROM finish_minutes WHERE minute < ? AND tasks = 0", (int(before) + 1,))
    conn.execute("DELETE FROM duration_counts WHERE tasks = 0")


def counts(conn: sqlite3.Connection, since: float, bucket: float) -> TaskCounts:
    tasks: dict[tuple[str, str, Status], int] = {}
    retries: dict[tuple[str, str], int] = {}
    waiting: list[str] = []
    for r in conn.execute(
        "SELECT queue, name, status, tasks, retries FROM task_counts WHERE tasks > 0"
    ):
        tasks[(r[0], r[1], STATUS[r[2]])] = r[3]
        retries[(r[0], r[1])] = retries.get((r[0], r[1]), 0) + int(r[4])
        if r[2] == "submitted" and r[0] not in waiting:
            waiting.append(r[0])
    oldest = {}
    for queue in waiting:
        first = conn.execute(
            "SELECT MIN(COALESCE(due_at, submitted_at)) FROM tasks"
            " WHERE status = 'submitted' AND queue = ?",
            (queue,),
        ).fetchone()[0]
        if first is not None:
            oldest[queue] = first
    finished = finishes(conn, since, bucket)
    slots: dict[tuple[str, str], dict[int, int]] = {}
    totals: dict[tuple[str, str], float] = {}
    for r in conn.execute(
        "SELECT kind, queue, slot, tasks, total FROM duration_counts WHERE tasks != 0"
    ):
        slots.setdefault((r[0], r[1]), {})[r[2]] = r[3]
        totals[(r[0], r[1])] = totals.get((r[0], r[1]), 0.0) + r[4]
    found: dict[str, dict[str, Durations]] = {"wait": {}, "run": {}}
    for (kind, queue), by_slot in slots.items():
        found[kind][queue] = durations(by_slot, totals[(kind, queue)])
    kept, timings = read_totals(conn)
    return TaskCounts(tasks, retries, oldest, finished, found["wait"], found["run"], kept, timings)


def finishes(
    conn: sqlite3.Connection, since: float, bucket: float
) -> dict[tuple[float, Status], int]:
    """From the per-minute sums when they give the same buckets (a row per minute with
    finishes, already in bucket order), else from the per-second sums."""
    if by_minute(since, bucket):
        rows = conn.execute(
            "SELECT minute, status, tasks FROM finish_minutes WHERE minute >= ? AND tasks > 0",
            (int(since),),
        )
        return finish_buckets(rows, since, bucket)
    # Summed per bucket in SQL: Python then sees a row per bucket and status, not per second.
    # Truncation is floor here: only the second holding ``since`` is negative, and MAX makes
    # it bucket 0, as tally.finish_buckets does.
    finished: dict[tuple[float, Status], int] = {}
    for k, status, n in conn.execute(
        "SELECT MAX(0, CAST((second - :since) / :bucket AS INTEGER)) AS k, status, SUM(tasks)"
        " FROM finish_counts WHERE second >= :low AND second + 1 > :since AND tasks > 0"
        " GROUP BY k, status",
        {"since": since, "bucket": float(bucket), "low": int(since) - 1},
    ):
        finished[(since + k * bucket, STATUS[status])] = n
    return finished


def queue_counts(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """``queue -> status -> tasks`` for the statuses a queue's stats show."""
    out: dict[str, dict[str, int]] = {}
    for r in conn.execute(
        "SELECT queue, status, SUM(tasks) FROM task_counts"
        " WHERE status IN ('submitted', 'scheduled', 'started') GROUP BY queue, status"
        " HAVING SUM(tasks) > 0"
    ):
        out.setdefault(r[0], {})[r[1]] = r[2]
    return out
