"""SQL for attempt notes (progress, log lines) and the summed counts, kept apart from the task
lifecycle steps: none of it changes a task's status."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from jobbers.models import TERMINAL, Status
from jobbers.store.base import (
    DURATION_BUCKETS,
    AttemptNotes,
    Durations,
    LogLine,
    TaskCounts,
)

FINAL = tuple(str(s) for s in TERMINAL)


def add_notes(conn: sqlite3.Connection, worker: str, notes: Sequence[AttemptNotes]) -> None:
    for note in notes:
        owner = conn.execute(
            "SELECT 1 FROM tasks WHERE id = ? AND attempt = ? AND worker = ?",
            (note.task_id, note.attempt, worker),
        ).fetchone()
        if owner is None:
            continue
        if note.progress is not None:
            conn.execute(
                "INSERT INTO attempt_progress (task_id, number, fraction, message)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (task_id, number) DO UPDATE SET"
                " fraction = excluded.fraction, message = excluded.message",
                (note.task_id, note.attempt, note.progress, note.message),
            )
        conn.executemany(
            "INSERT INTO attempt_logs (task_id, number, at, level, message) VALUES (?, ?, ?, ?, ?)",
            [(note.task_id, note.attempt, ln.at, ln.level, ln.message) for ln in note.lines],
        )


def read_notes(conn: sqlite3.Connection, task_id: str) -> list[AttemptNotes]:
    progress = {
        r["number"]: (r["fraction"], r["message"])
        for r in conn.execute(
            "SELECT number, fraction, message FROM attempt_progress WHERE task_id = ?", (task_id,)
        )
    }
    lines: dict[int, list[LogLine]] = {}
    for r in conn.execute(
        "SELECT number, at, level, message FROM attempt_logs WHERE task_id = ? ORDER BY seq",
        (task_id,),
    ):
        lines.setdefault(r["number"], []).append(LogLine(r["at"], r["level"], r["message"]))
    out = []
    for number in sorted(progress.keys() | lines.keys()):
        fraction, message = progress.get(number, (None, ""))
        out.append(AttemptNotes(task_id, number, fraction, message, tuple(lines.get(number, []))))
    return out


def drop_notes(conn: sqlite3.Connection, task_ids: Sequence[str]) -> None:
    marks = ", ".join("?" * len(task_ids))
    for table in ("attempt_progress", "attempt_logs"):
        conn.execute(f"DELETE FROM {table} WHERE task_id IN ({marks})", list(task_ids))


def _histograms(conn: sqlite3.Connection, values_sql: str) -> dict[str, Durations]:
    below = ", ".join(f"SUM(v <= {bound!r})" for bound in DURATION_BUCKETS)
    rows = conn.execute(
        f"SELECT queue, COUNT(*), TOTAL(v), {below} FROM ({values_sql}) GROUP BY queue"
    ).fetchall()
    return {r[0]: Durations(tuple(int(n) for n in r[3:]), r[1], float(r[2])) for r in rows}


def counts(conn: sqlite3.Connection, since: float, bucket: float) -> TaskCounts:
    tasks: dict[tuple[str, str, Status], int] = {}
    retries: dict[tuple[str, str], int] = {}
    for r in conn.execute(
        "SELECT queue, name, status, COUNT(*) AS n, SUM(retries) AS retries FROM tasks"
        " GROUP BY queue, name, status"
    ):
        tasks[(r["queue"], r["name"], Status(r["status"]))] = r["n"]
        key = (r["queue"], r["name"])
        retries[key] = retries.get(key, 0) + r["retries"]
    oldest = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT queue, MIN(COALESCE(due_at, submitted_at)) FROM tasks"
            " WHERE status = 'submitted' GROUP BY queue"
        )
    }
    finished = {
        (since + r[0] * bucket, Status(r[1])): r[2]
        for r in conn.execute(
            f"SELECT CAST((finished_at - ?) / ? AS INTEGER) AS b, status, COUNT(*) FROM tasks"
            f" WHERE finished_at >= ? AND status IN ({', '.join('?' * len(FINAL))})"
            " GROUP BY b, status",
            (since, bucket, since, *FINAL),
        )
    }
    wait = _histograms(
        conn,
        "SELECT queue, MAX(0, started_at - COALESCE(due_at, submitted_at)) AS v FROM tasks"
        " WHERE started_at IS NOT NULL",
    )
    run = _histograms(
        conn,
        "SELECT queue, MAX(0, finished_at - started_at) AS v FROM tasks WHERE started_at IS NOT"
        " NULL AND finished_at IS NOT NULL AND status IN ('completed', 'failed', 'dead')",
    )
    return TaskCounts(tasks, retries, oldest, finished, wait, run)
