"""Opening a SQLite store: each unusable file is one StoreUnavailable line, a good one opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from jobbers.models import NewTask, Outcome, Status
from jobbers.store.base import Report, StoreIncompatible, StoreUnavailable
from jobbers.store.sqlite import SQLiteStore
from jobbers.store.sqlite.counts import ALL, _trigger
from jobbers.store.sqlite.schema import SCHEMA, SCHEMA_VERSION
from tests.cli.bad_stores import BAD_STORES

pytestmark = pytest.mark.anyio

T0 = 1_000_000.0
#: The sums a version 3 delete trigger kept (no per-minute finishes).
V3_PARTS = ["tally", "finish", "wait", "run"]


@pytest.mark.parametrize("bad", sorted(BAD_STORES))
async def test_check_refuses_each_bad_store_with_one_line(bad: str, tmp_path: Path) -> None:
    make, words = BAD_STORES[bad]
    store = SQLiteStore(str(make(tmp_path)))
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.check()
        assert words in str(raised.value)
        assert "\n" not in str(raised.value)
        # Any later call says the same instead of failing some other way.
        with pytest.raises(StoreUnavailable):
            await store.statuses(["x"])
    finally:
        await store.close()


@pytest.mark.parametrize("bad", ["older schema", "newer schema"])
async def test_another_schema_is_incompatible_not_a_passing_outage(
    bad: str, tmp_path: Path
) -> None:
    make, _ = BAD_STORES[bad]
    store = SQLiteStore(str(make(tmp_path)))
    try:
        with pytest.raises(StoreIncompatible):
            await store.check()
    finally:
        await store.close()


async def test_a_new_file_gets_the_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    store = SQLiteStore(str(path))
    try:
        await store.check()
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_an_unversioned_file_with_the_current_schema_is_stamped_and_kept(
    tmp_path: Path,
) -> None:
    """Files written before the schema carried a version hold the current tables: keep them."""
    path = tmp_path / "unversioned.db"
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    conn.execute("INSERT INTO queues (name) VALUES ('kept')")
    conn.commit()
    conn.close()
    store = SQLiteStore(str(path))
    try:
        await store.check()
        assert [s.config.name for s in await store.queue_stats()] == ["kept"]
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_check_fails_once_the_file_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    store = SQLiteStore(str(path))
    try:
        await store.check()
        path.unlink()
        with pytest.raises(StoreUnavailable, match="removed or replaced"):
            await store.check()
    finally:
        await store.close()


async def test_a_schema_changed_under_an_open_store_is_incompatible(tmp_path: Path) -> None:
    path = tmp_path / "changed.db"
    store = SQLiteStore(str(path))
    try:
        await store.check()
        other = sqlite3.connect(path)
        other.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        other.close()
        with pytest.raises(StoreIncompatible, match=f"schema version {SCHEMA_VERSION + 1}"):
            await store.check()
    finally:
        await store.close()


@pytest.mark.parametrize("version", [1, 0])
async def test_a_version_1_file_gains_the_counts_filled_from_its_tasks(
    version: int, tmp_path: Path
) -> None:
    """Version 1 had no summed counts: opening it adds them, counted from the tasks it holds
    (an unversioned file with the version 1 tables is taken as version 1)."""
    path = tmp_path / "v1.db"
    store = SQLiteStore(str(path))
    try:
        await store.submit([NewTask("a", "t.add", {}), NewTask("b", "t.add", {}, "q2")], now=T0)
        await store.claim("w", ["default"], 1, 10.0, now=T0 + 2)
        await store.finish("w", [Report("a", 1, Outcome("completed"))], now=T0 + 5)
        expected = await store.counts(since=T0)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    for trigger in [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
    ]:
        conn.execute(f"DROP TRIGGER {trigger}")
    for table in ("task_counts", "finish_counts", "finish_minutes", "duration_counts"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    store = SQLiteStore(str(path))
    try:
        await store.check()
        assert await store.counts(since=T0) == expected
        assert expected.tasks == {
            ("default", "t.add", Status.COMPLETED): 1,
            ("q2", "t.add", Status.SUBMITTED): 1,
        }
        await store.claim("w", ["q2"], 1, 10.0, now=T0 + 6)
        assert (await store.counts(since=T0)).tasks[("q2", "t.add", Status.STARTED)] == 1
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_a_version_2_file_loses_its_insert_trigger_and_counts_each_insert_once(
    tmp_path: Path,
) -> None:
    """Version 2 counted inserts with a row trigger; the store now counts them itself, so
    migrating must drop the trigger or every new task would count twice."""
    path = tmp_path / "v2.db"
    store = SQLiteStore(str(path))
    try:
        await store.submit([NewTask("a", "t.add", {})], now=T0)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        _trigger("tasks_count_insert", "AFTER INSERT ON tasks", ALL, old=False)
        + "PRAGMA user_version = 2;"
    )
    conn.close()
    store = SQLiteStore(str(path))
    try:
        await store.submit([NewTask("b", "t.add", {}), NewTask("c", "t.add", {}, "q2")], now=T0)
        assert (await store.counts(since=T0)).tasks == {
            ("default", "t.add", Status.SUBMITTED): 2,
            ("q2", "t.add", Status.SUBMITTED): 1,
        }
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert "tasks_count_insert" not in triggers
    conn.close()


async def test_a_version_3_file_gains_minute_sums_filled_from_its_seconds(
    tmp_path: Path,
) -> None:
    """Version 3 summed finishes per second only: migrating fills the minutes from the seconds
    and remakes the triggers, so later finishes and deletes keep the minutes too."""
    path = tmp_path / "v3.db"
    m = T0 - T0 % 60 + 60
    ids = [f"t{i}" for i in range(6)]
    store = SQLiteStore(str(path))
    try:
        await store.submit([NewTask(i, "t.add", {}) for i in ids], now=m - 10)
        await store.claim("w", ["default"], 6, 1e6, now=m - 5)
        for n, at in enumerate((0.5, 59.5, 60.0, 130.0)):
            await store.finish("w", [Report(ids[n], 1, Outcome("completed"))], now=m + at)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    old_triggers = _trigger(
        "tasks_count_delete", "AFTER DELETE ON tasks", V3_PARTS, new=False
    ) + _trigger(
        "tasks_count_finish",
        "AFTER UPDATE OF status, started_at, finished_at ON tasks WHEN OLD.status IS NOT"
        " NEW.status OR OLD.started_at IS NOT NEW.started_at OR OLD.finished_at IS NOT"
        " NEW.finished_at",
        ["finish", "run"],
    )
    conn.executescript(
        "DROP TRIGGER tasks_count_delete; DROP TRIGGER tasks_count_finish;"
        " DROP TABLE finish_minutes;" + old_triggers + "PRAGMA user_version = 3;"
    )
    conn.close()
    store = SQLiteStore(str(path))
    try:
        await store.check()
        done = Status.COMPLETED
        assert (await store.counts(since=m, bucket=60)).finished == {
            (m, done): 2,
            (m + 60, done): 1,
            (m + 120, done): 1,
        }
        await store.finish("w", [Report(ids[4], 1, Outcome("completed"))], now=m + 61)
        assert await store.delete([ids[0]], [done]) == [ids[0]]
        assert (await store.counts(since=m, bucket=60)).finished == {
            (m, done): 1,
            (m + 60, done): 2,
            (m + 120, done): 1,
        }
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


async def test_a_version_4_file_trades_its_full_status_indexes_for_partial_ones(
    tmp_path: Path,
) -> None:
    """Version 4 indexed every task by (status, due_at), (status, lease_expires_at) and
    (status, finished_at); version 5 indexes only the tasks of the status each query asks for,
    and the queries still find their tasks through them."""
    path = tmp_path / "v4.db"
    store = SQLiteStore(str(path))
    try:
        await store.submit([NewTask("a", "t.add", {}), NewTask("b", "t.add", {})], now=T0)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP INDEX tasks_due_scheduled; DROP INDEX tasks_lease_started;"
        " DROP INDEX tasks_finished_final;"
        " CREATE INDEX tasks_due ON tasks (status, due_at);"
        " CREATE INDEX tasks_lease ON tasks (status, lease_expires_at);"
        " CREATE INDEX tasks_finished ON tasks (status, finished_at);"
        " PRAGMA user_version = 4;"
    )
    conn.close()
    store = SQLiteStore(str(path))
    try:
        await store.claim("w", ["default"], 1, 10.0, now=T0 + 1)
        report = await store.reap(now=T0 + 60)
        assert report.reaped == 1
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"tasks_due", "tasks_lease", "tasks_finished"}.isdisjoint(indexes)
    assert {"tasks_due_scheduled", "tasks_lease_started", "tasks_finished_final"} <= indexes
    plan = conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM tasks WHERE status = 'started' AND lease_expires_at < ?",
        (T0,),
    ).fetchall()
    assert "tasks_lease_started" in plan[0][3]
    conn.close()


async def test_a_file_without_totals_starts_them_once_from_its_tasks(tmp_path: Path) -> None:
    """A file made before the monotonic totals gets them on opening, started from the tasks it
    keeps; they then move with each step, and opening the file again adds nothing."""
    path = tmp_path / "v6.db"
    store = SQLiteStore(str(path))
    try:
        await store.submit([NewTask(i, "t.add", {}) for i in "abc"], now=T0)
        await store.claim("w", ["default"], 2, 10.0, now=T0 + 1)
        await store.finish("w", [Report("a", 1, Outcome("completed"))], now=T0 + 2)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE task_totals; PRAGMA user_version = 6;")
    conn.close()
    for _ in range(2):
        store = SQLiteStore(str(path))
        try:
            totals = (await store.counts(since=T0)).totals
        finally:
            await store.close()
        assert totals == {
            ("default", "t.add", "submitted"): 3,
            ("default", "t.add", "started"): 2,
            ("default", "t.add", "finished:completed"): 1,
        }
    store = SQLiteStore(str(path))
    try:
        await store.finish("w", [Report("b", 1, Outcome("completed"))], now=T0 + 3)
        totals = (await store.counts(since=T0)).totals
    finally:
        await store.close()
    assert totals[("default", "t.add", "finished:completed")] == 2
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_the_totals_step_may_run_again(tmp_path: Path) -> None:
    """Every migration statement is idempotent: the column it adds is skipped when present and
    the totals are started only while there are none."""
    from jobbers.store.sqlite.connection import _migrate
    from jobbers.store.sqlite.schema import MIGRATIONS

    conn = sqlite3.connect(tmp_path / "twice.db")
    untraced = SCHEMA.replace("    error TEXT,\n    trace TEXT\n", "    error TEXT\n")
    assert untraced != SCHEMA
    conn.executescript(untraced)
    conn.execute(
        "INSERT INTO tasks (id, name, queue, kwargs, fingerprint, status, policy, submitted_at,"
        " updated_at) VALUES ('a', 't.add', 'default', '{}', '', 'submitted', '{}', 0, 0)"
    )
    conn.execute("DELETE FROM task_totals")
    for _ in range(2):
        _migrate(conn, MIGRATIONS[6])  # the step to version 7: the totals and the trace column
    columns = [r[1] for r in conn.execute("PRAGMA table_info(tasks)")]
    assert columns.count("trace") == 1
    assert conn.execute("SELECT queue, name, total, n FROM task_totals").fetchall() == [
        ("default", "t.add", "submitted", 1)
    ]
    conn.close()


@pytest.mark.parametrize("version", [6, 7, 8, 9])
async def test_a_file_before_version_9_gains_the_schedules_table(
    tmp_path: Path, version: int
) -> None:
    """Versions 6 to 8 had no schedules; opening one adds the table and keeps the tasks, and
    opening it again (or a file that has the table) changes nothing."""
    path = tmp_path / "old.db"
    store = SQLiteStore(str(path))
    try:
        await store.submit([NewTask("a", "t.add", {})], now=T0)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    if version < 9:
        conn.execute("DROP TABLE schedules")
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()
    for _ in range(2):
        store = SQLiteStore(str(path))
        try:
            assert await store.schedules() == []
            assert set(await store.statuses(["a"])) == {"a"}
        finally:
            await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 9
    conn.close()
