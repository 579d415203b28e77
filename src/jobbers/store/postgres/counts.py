"""The PostgreSQL store's summed counts: sums plus not-yet-folded deltas.

Every task change appends its deltas (see :mod:`jobbers.store.postgres.schema`), so writers never
queue on a hot counter row; :func:`fold` moves them into the sums, one folder at a time under a
transaction-level advisory lock, and readers add the few deltas not folded yet. A read costs
O(groups + deltas since the last fold), whatever the number of tasks stored.
"""

from __future__ import annotations

from jobbers.models import Status
from jobbers.store.base import Durations, TaskCounts
from jobbers.store.postgres.steps import Conn
from jobbers.store.tally import STATUS, durations, split_totals

TASK_COUNTS = (
    "SELECT queue, name, status, SUM(tasks) AS tasks, SUM(retries) AS retries FROM ("
    " SELECT queue, name, status, tasks, retries FROM task_counts"
    " UNION ALL SELECT queue, name, status, tasks, retries FROM task_count_deltas)"
    " AS c GROUP BY queue, name, status"
)


async def fold(conn: Conn, lock: int) -> None:
    """Move the deltas into the sums, unless another process is doing it right now."""
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", lock):
            return
        await conn.execute(
            "WITH d AS (DELETE FROM task_count_deltas RETURNING *)"
            " INSERT INTO task_counts SELECT queue, name, status, SUM(tasks), SUM(retries)"
            " FROM d GROUP BY queue, name, status ON CONFLICT (queue, name, status) DO UPDATE"
            " SET tasks = task_counts.tasks + excluded.tasks,"
            " retries = task_counts.retries + excluded.retries"
        )
        await conn.execute(
            "WITH d AS (DELETE FROM finish_deltas RETURNING *)"
            " INSERT INTO finish_counts SELECT second, status, SUM(tasks) FROM d"
            " GROUP BY second, status ON CONFLICT (second, status) DO UPDATE"
            " SET tasks = finish_counts.tasks + excluded.tasks"
        )
        await conn.execute(
            "WITH d AS (DELETE FROM duration_deltas RETURNING *)"
            " INSERT INTO duration_counts SELECT kind, queue, slot, SUM(tasks), SUM(total)"
            " FROM d GROUP BY kind, queue, slot ON CONFLICT (kind, queue, slot) DO UPDATE"
            " SET tasks = duration_counts.tasks + excluded.tasks,"
            " total = duration_counts.total + excluded.total"
        )
        await conn.execute(
            "WITH d AS (DELETE FROM task_total_deltas RETURNING *)"
            " INSERT INTO task_totals SELECT queue, name, total, SUM(n) FROM d"
            " GROUP BY queue, name, total ORDER BY queue, name, total"
            " ON CONFLICT (queue, name, total) DO UPDATE SET n = task_totals.n + excluded.n"
        )


async def drop_empty(conn: Conn, before: float) -> None:
    """Sums a prune brought back to zero (after a fold, so the deltas are in them)."""
    await conn.execute("DELETE FROM task_counts WHERE tasks = 0")
    await conn.execute("DELETE FROM finish_counts WHERE second < $1 AND tasks = 0", int(before) + 1)
    await conn.execute("DELETE FROM duration_counts WHERE tasks = 0")


async def counts(conn: Conn, since: float, bucket: float) -> TaskCounts:
    tasks: dict[tuple[str, str, Status], int] = {}
    retries: dict[tuple[str, str], int] = {}
    waiting: list[str] = []
    for r in await conn.fetch(TASK_COUNTS):
        if r["tasks"] <= 0:
            continue
        tasks[(r["queue"], r["name"], STATUS[r["status"]])] = int(r["tasks"])
        key = (r["queue"], r["name"])
        retries[key] = retries.get(key, 0) + int(r["retries"])
        if r["status"] == "submitted" and r["queue"] not in waiting:
            waiting.append(r["queue"])
    oldest: dict[str, float] = {}
    for queue in waiting:
        first = await conn.fetchval(
            "SELECT MIN(COALESCE(due_at, submitted_at)) FROM tasks"
            " WHERE status = 'submitted' AND queue = $1",
            queue,
        )
        if first is not None:
            oldest[queue] = first
    finished: dict[tuple[float, Status], int] = {}
    for r in await conn.fetch(
        "SELECT GREATEST(0, floor((second - $1::float8) / $2::float8))::bigint AS k, status,"
        " SUM(tasks) AS n FROM (SELECT second, status, tasks FROM finish_counts"
        " WHERE second >= $3::bigint UNION ALL SELECT second, status, tasks FROM finish_deltas"
        " WHERE second >= $3::bigint) AS f"
        " WHERE second + 1 > $1::float8 GROUP BY k, status HAVING SUM(tasks) > 0",
        float(since),
        float(bucket),
        int(since) - 1,
    ):
        finished[(since + int(r["k"]) * bucket, STATUS[r["status"]])] = int(r["n"])
    slots: dict[tuple[str, str], dict[int, int]] = {}
    totals: dict[tuple[str, str], float] = {}
    for r in await conn.fetch(
        "SELECT kind, queue, slot, SUM(tasks) AS tasks, SUM(total) AS total FROM ("
        " SELECT kind, queue, slot, tasks, total FROM duration_counts"
        " UNION ALL SELECT kind, queue, slot, tasks, total FROM duration_deltas) AS d"
        " GROUP BY kind, queue, slot HAVING SUM(tasks) != 0"
    ):
        key = (r["kind"], r["queue"])
        slots.setdefault(key, {})[r["slot"]] = int(r["tasks"])
        totals[key] = totals.get(key, 0.0) + float(r["total"])
    found: dict[str, dict[str, Durations]] = {"wait": {}, "run": {}}
    for (kind, queue), by_slot in slots.items():
        found[kind][queue] = durations(by_slot, totals[(kind, queue)])
    kept, timings = split_totals(
        (r["queue"], r["name"], r["total"], float(r["n"]))
        for r in await conn.fetch(
            "SELECT queue, name, total, SUM(n) AS n FROM (SELECT queue, name, total, n"
            " FROM task_totals UNION ALL SELECT queue, name, total, n FROM task_total_deltas)"
            " AS t GROUP BY queue, name, total"
        )
    )
    return TaskCounts(tasks, retries, oldest, finished, found["wait"], found["run"], kept, timings)


async def queue_counts(conn: Conn) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in await conn.fetch(TASK_COUNTS):
        if r["status"] in ("submitted", "scheduled", "started") and r["tasks"] > 0:
            q = out.setdefault(r["queue"], {})
            q[r["status"]] = q.get(r["status"], 0) + int(r["tasks"])
    return out
