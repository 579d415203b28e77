"""SQL for schedules: the owner's spec and the firers' state in one row, changed apart.

``advance`` is the firers' compare-and-set: it moves ``next_fire`` only from the value the firer
read, so of any number of firers that read one occurrence exactly one moves it on.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from jobbers.schedule import Schedule

SCHEDULES = """
CREATE TABLE IF NOT EXISTS schedules (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    next_fire REAL,
    last_fire REAL,
    last_tasks TEXT
);
"""

_COLUMNS = "id, spec, next_fire, last_fire, last_tasks"


def _row(row: tuple[str, str, float | None, float | None, str | None]) -> Schedule:
    return Schedule.from_parts(*row)


def read_all(conn: sqlite3.Connection) -> list[Schedule]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM schedules ORDER BY id").fetchall()
    return [_row(r) for r in rows]


def read_one(conn: sqlite3.Connection, schedule_id: str) -> Schedule | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
    return None if row is None else _row(row)


def save(conn: sqlite3.Connection, schedule: Schedule, create: bool) -> bool:
    """Insert (``create``) or update the spec and ``next_fire``; False when the id is taken (on
    create) or unknown (on update). The firing history is kept across updates."""
    if create:
        cur = conn.execute(
            "INSERT OR IGNORE INTO schedules (id, spec, next_fire) VALUES (?, ?, ?)",
            (schedule.id, schedule.spec_json(), schedule.next_fire),
        )
    else:
        cur = conn.execute(
            "UPDATE schedules SET spec = ?, next_fire = ? WHERE id = ?",
            (schedule.spec_json(), schedule.next_fire, schedule.id),
        )
    return cur.rowcount == 1


def delete(conn: sqlite3.Connection, schedule_id: str) -> bool:
    return conn.execute("DELETE FROM schedules WHERE id = ?", (schedule_id,)).rowcount == 1


def advance(
    conn: sqlite3.Connection,
    schedule_id: str,
    expected: float,
    next_fire: float | None,
    fired_at: float | None,
    tasks: Sequence[str],
) -> bool:
    if fired_at is None:
        cur = conn.execute(
            "UPDATE schedules SET next_fire = ? WHERE id = ? AND next_fire = ?",
            (next_fire, schedule_id, expected),
        )
    else:
        cur = conn.execute(
            "UPDATE schedules SET next_fire = ?, last_fire = ?, last_tasks = ?"
            " WHERE id = ? AND next_fire = ?",
            (next_fire, fired_at, json.dumps(list(tasks)), schedule_id, expected),
        )
    return cur.rowcount == 1
