"""SQL for attempt notes (progress, log lines), kept apart from the task lifecycle steps: none
of it changes a task's status."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from jobbers.models import TERMINAL
from jobbers.store.base import (
    AttemptNotes,
    LogLine,
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


#: Ids per query when reading progress: under SQLite's default limit of bound parameters.
PROGRESS_CHUNK = 500


def read_progress(
    conn: sqlite3.Connection, attempts: Sequence[tuple[str, int]]
) -> dict[str, tuple[float, str]]:
    wanted = dict(attempts)
    ids = list(wanted)
    out: dict[str, tuple[float, str]] = {}
    for start in range(0, len(ids), PROGRESS_CHUNK):
        chunk = ids[start : start + PROGRESS_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for r in conn.execute(
            "SELECT task_id, number, fraction, message FROM attempt_progress"
            f" WHERE task_id IN ({marks})",
            chunk,
        ):
            if wanted.get(r["task_id"]) == r["number"]:
                out[r["task_id"]] = (r["fraction"], r["message"])
    return out


def drop_notes(conn: sqlite3.Connection, task_ids: Sequence[str]) -> None:
    marks = ", ".join("?" * len(task_ids))
    for table in ("attempt_progress", "attempt_logs"):
        conn.execute(f"DELETE FROM {table} WHERE task_id IN ({marks})", list(task_ids))
