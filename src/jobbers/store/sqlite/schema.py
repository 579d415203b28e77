"""The SQLite store's schema, in one place: the tables, the indexes, the version and the steps
that bring an older file up to it. The summed counts' tables and triggers are generated in
:mod:`jobbers.store.sqlite.counts` and composed here.
"""

from __future__ import annotations

from jobbers.store.sqlite.counts import (
    ADD_MINUTES,
    BACKFILL,
    COUNTS_SCHEMA,
    DROP_INSERT_TRIGGER,
    FINAL,
    TOTALS_BACKFILL,
    TOTALS_SCHEMA,
)
from jobbers.store.sqlite.schedules import SCHEDULES

#: Each holds only the tasks of the status its query asks for, so a submission (the commonest write)
#: touches none of them: three index pages fewer to write per commit. Their queries name the status
#: as a literal, which is what lets SQLite use a partial index; the status column stays in them so
#: that the planner, which has no statistics, ranks them above the plain status index.
PARTIAL_INDEXES = f"""
CREATE INDEX IF NOT EXISTS tasks_due_scheduled ON tasks (status, due_at) WHERE status = 'scheduled';
CREATE INDEX IF NOT EXISTS tasks_lease_started ON tasks (status, lease_expires_at)
    WHERE status = 'started';
CREATE INDEX IF NOT EXISTS tasks_finished_final ON tasks (status, finished_at)
    WHERE status IN {FINAL};
"""
#: Version 5: the indexes above replace full ones on (status, column).
PARTIAL_INDEXES_MIGRATION = (
    "DROP INDEX IF EXISTS tasks_due; DROP INDEX IF EXISTS tasks_lease;"
    " DROP INDEX IF EXISTS tasks_finished;" + PARTIAL_INDEXES
)

#: The task names each worker has the code for, as a JSON list: a row goes with its worker.
#: (A replace of the worker's row deletes without firing the trigger: recursive triggers are
#: off.) Every statement may run again, so the step that adds it is safe on any file.
WORKER_TASKS = """
CREATE TABLE IF NOT EXISTS worker_tasks (worker_id TEXT PRIMARY KEY, tasks TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS worker_tasks_gone AFTER DELETE ON workers
BEGIN
    DELETE FROM worker_tasks WHERE worker_id = OLD.id;
END;
"""

#: Workflows: the edges a waiting task waits on (``open`` until its parent ends), the run and
#: the parents' results parameter of a task that has them, and the runs themselves. Every
#: statement may run again.
FLOWS = """
CREATE TABLE IF NOT EXISTS task_edges (
    child TEXT NOT NULL,
    parent TEXT NOT NULL,
    ord INTEGER NOT NULL,
    key TEXT,
    on_end TEXT NOT NULL,
    open INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (child, parent)
);
CREATE INDEX IF NOT EXISTS task_edges_open ON task_edges (parent) WHERE open = 1;
CREATE INDEX IF NOT EXISTS task_edges_waiting ON task_edges (child) WHERE open = 1;
CREATE TABLE IF NOT EXISTS task_flow (task_id TEXT PRIMARY KEY, run_id TEXT, inputs TEXT);
CREATE INDEX IF NOT EXISTS task_flow_run ON task_flow (run_id) WHERE run_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    graph TEXT NOT NULL,
    cancelled_at REAL
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at);
"""

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    queue TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    policy TEXT NOT NULL,
    hb_interval REAL,
    retries INTEGER NOT NULL DEFAULT 0,
    lost INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 0,
    due_at REAL,
    submitted_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    worker TEXT,
    lease_expires_at REAL,
    heartbeat_at REAL,
    result TEXT,
    error TEXT,
    trace TEXT
);
CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (status, queue, priority DESC);
CREATE INDEX IF NOT EXISTS tasks_name ON tasks (name);
CREATE TABLE IF NOT EXISTS attempts (
    task_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    worker TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    outcome TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (task_id, number)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at REAL NOT NULL,
    worker TEXT,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    concurrency INTEGER,
    rate_limit INTEGER,
    rate_period REAL NOT NULL DEFAULT 1.0,
    paused INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS starts (queue TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS starts_queue_at ON starts (queue, at);
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    queues TEXT NOT NULL,
    started_at REAL NOT NULL,
    last_seen REAL NOT NULL,
    running INTEGER NOT NULL DEFAULT 0,
    slots INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS definitions (name TEXT PRIMARY KEY, definition TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS attempt_progress (
    task_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    fraction REAL NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (task_id, number)
);
CREATE TABLE IF NOT EXISTS attempt_logs (
    seq INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    at REAL NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS attempt_logs_task ON attempt_logs (task_id, seq);
"""
    + PARTIAL_INDEXES
    + COUNTS_SCHEMA
    + WORKER_TASKS
    + TOTALS_SCHEMA
    + FLOWS
    + SCHEDULES
)

#: The schema :data:`SCHEMA` creates. Raise it whenever SCHEMA changes, with a migration step.
SCHEMA_VERSION = 9
#: SQL that takes a file from version N (the key) to N + 1; files without a step are refused.
#: Version 2 added the summed counts kept by triggers, filled from the tasks already stored;
#: version 3 dropped the insert trigger; version 4 added the per-minute finish sums; version 5
#: made the due, lease and finished indexes partial; version 6 keeps the task names each
#: worker runs (``worker_tasks``); version 7 keeps the monotonic totals (``task_totals``),
#: started once from the tasks kept, and each task's trace context (``tasks.trace``); version 8
#: adds workflows (edges, runs); version 9 keeps schedules.
MIGRATIONS: dict[int, str] = {
    1: COUNTS_SCHEMA + BACKFILL,
    2: DROP_INSERT_TRIGGER,
    3: ADD_MINUTES,
    4: PARTIAL_INDEXES_MIGRATION,
    5: WORKER_TASKS,
    6: TOTALS_SCHEMA + TOTALS_BACKFILL + "ALTER TABLE tasks ADD COLUMN trace TEXT;",
    7: FLOWS,
    8: SCHEDULES,
}
#: The tables of the summed counts: a file without a version that lacks only these is version 1.
COUNT_TABLES = {"task_counts", "finish_counts", "finish_minutes", "duration_counts"}
