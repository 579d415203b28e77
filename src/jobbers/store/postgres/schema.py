"""The PostgreSQL store's schema: its tables live in a schema of their own (``jobbers`` by
default), so the store can share a database (Airflow's, say) without touching its tables.

Versioned migrations run at start-up under a session advisory lock keyed on the schema name, so
two processes starting at once never run the same step twice. The summed counts are kept by a
row trigger that appends deltas (``*_deltas``, insert only, so no two transactions ever wait on
the same counter row); :func:`jobbers.store.postgres.counts.fold` moves them into the sums.
"""

from __future__ import annotations

import zlib

from jobbers import effects
from jobbers.models import Status
from jobbers.store.base import DURATION_BUCKETS
from jobbers.store.tally import OVER


def sql_set(statuses: frozenset[Status]) -> str:
    return "(" + ", ".join(f"'{s.value}'" for s in effects.in_order(statuses)) + ")"


FINAL = sql_set(effects.FINAL)
RAN = sql_set(effects.RAN)


def lock_key(schema: str, what: str) -> int:
    """A stable 63-bit advisory lock key per schema and purpose."""
    return zlib.crc32(f"jobbers:{schema}:{what}".encode()) | (1 << 40)


def _slot(value: str) -> str:
    cases = " ".join(
        f"WHEN {value} <= {bound!r} THEN {i}" for i, bound in enumerate(DURATION_BUCKETS)
    )
    return f"CASE {cases} ELSE {OVER} END"


TABLES = f"""
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    seq BIGSERIAL UNIQUE,
    name TEXT NOT NULL,
    queue TEXT NOT NULL,
    kwargs TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    policy TEXT NOT NULL,
    hb_interval DOUBLE PRECISION,
    retries INTEGER NOT NULL DEFAULT 0,
    lost INTEGER NOT NULL DEFAULT 0,
    attempt INTEGER NOT NULL DEFAULT 0,
    due_at DOUBLE PRECISION,
    submitted_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    worker TEXT,
    lease_expires_at DOUBLE PRECISION,
    heartbeat_at DOUBLE PRECISION,
    result TEXT,
    error TEXT
);
CREATE INDEX tasks_ready ON tasks (queue, priority DESC, seq) WHERE status = 'submitted';
CREATE INDEX tasks_oldest ON tasks (queue, (COALESCE(due_at, submitted_at)))
    WHERE status = 'submitted';
CREATE INDEX tasks_due ON tasks (due_at) WHERE status = 'scheduled';
CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE status = 'started';
CREATE INDEX tasks_running ON tasks (queue) WHERE status = 'started';
CREATE INDEX tasks_finished ON tasks (finished_at) WHERE status IN {FINAL};
CREATE INDEX tasks_status_seq ON tasks (status, seq);
CREATE INDEX tasks_queue_seq ON tasks (queue, seq);
CREATE INDEX tasks_name_seq ON tasks (name, seq);
CREATE INDEX tasks_waiting ON tasks (queue, name) WHERE status IN ('submitted', 'scheduled');
CREATE TABLE attempts (
    task_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    worker TEXT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    outcome TEXT NOT NULL,
    error TEXT,
    PRIMARY KEY (task_id, number)
);
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    task_id TEXT NOT NULL,
    status TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    worker TEXT,
    reason TEXT
);
CREATE INDEX events_at ON events (at);
CREATE TABLE queues (
    name TEXT PRIMARY KEY,
    concurrency INTEGER,
    rate_limit INTEGER,
    rate_period DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    paused BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE starts (queue TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE INDEX starts_queue_at ON starts (queue, at);
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    hostname TEXT NOT NULL,
    queues TEXT NOT NULL,
    tasks TEXT NOT NULL DEFAULT '[]',
    started_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    running INTEGER NOT NULL DEFAULT 0,
    slots INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE definitions (name TEXT PRIMARY KEY, definition TEXT NOT NULL);
CREATE TABLE attempt_progress (
    task_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    fraction DOUBLE PRECISION NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (task_id, number)
);
CREATE TABLE attempt_logs (
    seq BIGSERIAL PRIMARY KEY,
    task_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX attempt_logs_task ON attempt_logs (task_id, seq);
CREATE TABLE feed (pruned_to BIGINT NOT NULL);
INSERT INTO feed VALUES (0);
CREATE TABLE task_counts (
    queue TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    tasks BIGINT NOT NULL, retries BIGINT NOT NULL,
    PRIMARY KEY (queue, name, status)
);
CREATE TABLE task_count_deltas (
    queue TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    tasks BIGINT NOT NULL, retries BIGINT NOT NULL
);
CREATE TABLE finish_counts (
    second BIGINT NOT NULL, status TEXT NOT NULL, tasks BIGINT NOT NULL,
    PRIMARY KEY (second, status)
);
CREATE TABLE finish_deltas (second BIGINT NOT NULL, status TEXT NOT NULL, tasks BIGINT NOT NULL);
CREATE INDEX finish_deltas_second ON finish_deltas (second);
CREATE TABLE duration_counts (
    kind TEXT NOT NULL, queue TEXT NOT NULL, slot INTEGER NOT NULL,
    tasks BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (kind, queue, slot)
);
CREATE TABLE duration_deltas (
    kind TEXT NOT NULL, queue TEXT NOT NULL, slot INTEGER NOT NULL,
    tasks BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL
);
CREATE FUNCTION task_share(t tasks, sign INTEGER) RETURNS void LANGUAGE plpgsql AS $body$
DECLARE v DOUBLE PRECISION;
BEGIN
    INSERT INTO task_count_deltas VALUES (t.queue, t.name, t.status, sign, sign * t.retries);
    IF t.finished_at IS NOT NULL AND t.status IN {FINAL} THEN
        INSERT INTO finish_deltas VALUES (floor(t.finished_at)::BIGINT, t.status, sign);
    END IF;
    IF t.started_at IS NOT NULL THEN
        v := GREATEST(0, t.started_at - COALESCE(t.due_at, t.submitted_at));
        INSERT INTO duration_deltas VALUES ('wait', t.queue, {_slot("v")}, sign, sign * v);
        IF t.finished_at IS NOT NULL AND t.status IN {RAN} THEN
            v := GREATEST(0, t.finished_at - t.started_at);
            INSERT INTO duration_deltas VALUES ('run', t.queue, {_slot("v")}, sign, sign * v);
        END IF;
    END IF;
END
$body$;
CREATE FUNCTION task_counted() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    PERFORM task_share(OLD, -1);
    IF TG_OP = 'UPDATE' THEN
        PERFORM task_share(NEW, 1);
    END IF;
    RETURN NULL;
END
$body$;
CREATE TRIGGER tasks_count_update AFTER UPDATE ON tasks FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.retries IS DISTINCT FROM NEW.retries
          OR OLD.started_at IS DISTINCT FROM NEW.started_at
          OR OLD.finished_at IS DISTINCT FROM NEW.finished_at
          OR OLD.due_at IS DISTINCT FROM NEW.due_at
          OR OLD.submitted_at IS DISTINCT FROM NEW.submitted_at)
    EXECUTE FUNCTION task_counted();
CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks FOR EACH ROW
    EXECUTE FUNCTION task_counted();
"""

#: Monotonic totals per ``(queue, name, total)`` (:attr:`jobbers.effects.Effect.total`, and the
#: ``wait:``/``run:`` timing slots and sums of :func:`jobbers.store.tally.timing_rows`): each step
#: appends its increments to ``task_total_deltas`` (insert only, as the other deltas) and
#: :func:`jobbers.store.postgres.counts.fold` moves them into ``task_totals``. No trigger and no
#: delete ever takes from them, so a prune leaves them.
TOTALS = """
CREATE TABLE task_totals (
    queue TEXT NOT NULL, name TEXT NOT NULL, total TEXT NOT NULL, n DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (queue, name, total)
);
CREATE TABLE task_total_deltas (
    queue TEXT NOT NULL, name TEXT NOT NULL, total TEXT NOT NULL, n DOUBLE PRECISION NOT NULL
);
"""
#: Each task's trace context (W3C ``traceparent``), as submitted.
TRACE = "ALTER TABLE tasks ADD COLUMN trace TEXT;\n"
#: Schedules: the owner's spec and the firers' state (``next_fire``, the last firing) in one row.
SCHEDULES = """
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    next_fire DOUBLE PRECISION,
    last_fire DOUBLE PRECISION,
    last_tasks TEXT
);
"""
#: Workflows: edges between tasks (open until the parent ends), each task's run and the kwarg
#: that receives its parents' results, and the runs themselves.
FLOWS = """
CREATE TABLE task_edges (
    child TEXT NOT NULL,
    parent TEXT NOT NULL,
    ord INTEGER NOT NULL,
    key TEXT,
    on_end TEXT NOT NULL,
    open BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (child, parent)
);
CREATE INDEX task_edges_open ON task_edges (parent) WHERE open;
CREATE TABLE task_flow (task_id TEXT PRIMARY KEY, run_id TEXT, inputs TEXT);
CREATE INDEX task_flow_run ON task_flow (run_id) WHERE run_id IS NOT NULL;
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    seq BIGSERIAL UNIQUE,
    name TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    graph TEXT NOT NULL,
    cancelled_at DOUBLE PRECISION
);
CREATE INDEX runs_name_seq ON runs (name, seq);
"""

#: The schema version :data:`MIGRATIONS` reach. Raise it with a new step whenever they change.
SCHEMA_VERSION = 1
#: SQL that takes a schema from version N - 1 (the key minus one) to N; run in the store's
#: schema (``search_path``), each step in one transaction with the version it reaches.
MIGRATIONS: dict[int, str] = {1: TABLES + TOTALS + TRACE + SCHEDULES + FLOWS}
