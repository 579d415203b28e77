"""The embedded store: one SQLite file shared safely by every process on one host.

WAL lets readers run beside the single writer; every change is one short ``BEGIN IMMEDIATE``
transaction, so a claim and a finish are atomic across processes without any server. All SQL runs
on one thread per store instance, which keeps the connection single-threaded and the event loop
free.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from jobbers.models import (
    TERMINAL,
    Attempt,
    ErrorInfo,
    Event,
    MaintenanceReport,
    NewTask,
    Page,
    QueueConfig,
    QueueStats,
    RetryPolicy,
    Status,
    TaskDefinition,
    TaskFilter,
    TaskRecord,
    WorkerInfo,
    check_transition,
)
from jobbers.retry import backoff_delay, is_retryable
from jobbers.store.base import (
    CancelResult,
    DuplicateTaskConflict,
    Renewal,
    Report,
    Submitted,
)

T = TypeVar("T")

SCHEMA = """
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
    error TEXT
);
CREATE INDEX IF NOT EXISTS tasks_ready ON tasks (status, queue, priority DESC);
CREATE INDEX IF NOT EXISTS tasks_due ON tasks (status, due_at);
CREATE INDEX IF NOT EXISTS tasks_lease ON tasks (status, lease_expires_at);
CREATE INDEX IF NOT EXISTS tasks_finished ON tasks (status, finished_at);
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
    running INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS task_definitions (
    name TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    policy TEXT NOT NULL
);
"""

#: Stay well under SQLite's bound-parameter limit.
CHUNK = 5000
#: How often ``wait_for_change`` looks at PRAGMA data_version for other processes' commits.
CHANGE_POLL = 0.01
TASK_COLUMNS = (
    "id, name, queue, kwargs, status, priority, policy, retries, attempt, due_at, submitted_at,"
    " updated_at, started_at, finished_at, worker, lease_expires_at, heartbeat_at, result, error"
)


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _error_json(error: ErrorInfo | None) -> str | None:
    return _dumps(error.to_json()) if error else None


def _fingerprint(task: NewTask) -> str:
    return _dumps([str(part) for part in task.fingerprint()])


class SQLiteStore:
    """See :class:`jobbers.store.base.Store` for what each method promises."""

    def __init__(self, path: str, busy_timeout: float = 30.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobbers-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._local_writes = 0
        #: data_version after this connection's last call: later commits by others change it.
        self._seen_version: int | None = None
        self._waiters: list[asyncio.Future[None]] = []
        self._closed = threading.Event()

    # -- plumbing -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
            conn.execute("BEGIN IMMEDIATE")
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("COMMIT")
            self._conn = conn
        return self._conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._observe, fn)

    def _observe(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        result = fn(conn)
        self._seen_version = _data_version(conn)
        return result

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._thread, self._transaction, fn)
        self._local_writes += 1
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return result

    def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._seen_version = _data_version(conn)
        return result

    async def wait_for_change(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        writes = self._local_writes
        version = self._seen_version
        if version is None:
            version = await self._read(_data_version)
        while self._local_writes == writes:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, min(CHANGE_POLL, remaining))
                return
            except TimeoutError:
                pass
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if await self._read(_data_version) != version:
                return

    async def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        if not self._closed.is_set():
            self._closed.set()
            await asyncio.get_running_loop().run_in_executor(self._thread, _close)
            self._thread.shutdown(wait=True)

    # -- submit and read ------------------------------------------------------------------

    async def submit(self, tasks: Sequence[NewTask], now: float | None = None) -> list[Submitted]:
        at = _now(now)

        def txn(conn: sqlite3.Connection) -> list[Submitted]:
            existing: dict[str, str] = {}
            for chunk in _chunks([t.id for t in tasks]):
                rows = conn.execute(
                    f"SELECT id, fingerprint FROM tasks WHERE id IN ({_marks(len(chunk))})",
                    list(chunk),
                )
                existing.update({r["id"]: r["fingerprint"] for r in rows})
            conflicts: list[str] = []
            fresh: dict[str, NewTask] = {}
            for task in tasks:
                seen = existing.get(task.id)
                if seen is None and task.id in fresh:
                    seen = _fingerprint(fresh[task.id])
                if seen is not None and seen != _fingerprint(task):
                    conflicts.append(task.id)
                elif seen is None:
                    fresh[task.id] = task
            if conflicts:
                raise DuplicateTaskConflict(conflicts)
            for task in fresh.values():
                _insert(conn, task, at)
            records = _load(conn, [t.id for t in tasks])
            return [Submitted(records[t.id], t.id in fresh and t is fresh[t.id]) for t in tasks]

        return await self._write(txn)

    async def get(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        return await self._read(lambda conn: _load(conn, task_ids))

    async def statuses(self, task_ids: Sequence[str]) -> dict[str, Status]:
        def read(conn: sqlite3.Connection) -> dict[str, Status]:
            out: dict[str, Status] = {}
            for chunk in _chunks(list(task_ids)):
                rows = conn.execute(
                    f"SELECT id, status FROM tasks WHERE id IN ({_marks(len(chunk))})", list(chunk)
                )
                out.update({r["id"]: Status(r["status"]) for r in rows})
            return out

        return await self._read(read)

    async def query(self, filters: TaskFilter, limit: int, cursor: str | None = None) -> Page:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("status", filters.status),
            ("queue", filters.queue),
            ("name", filters.name),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(str(value))
        if filters.ids is not None:
            clauses.append(f"id IN ({_marks(len(filters.ids))})")
            params.extend(filters.ids)
        if cursor is not None:
            try:
                before = int(cursor)
            except ValueError:
                raise ValueError(f"invalid cursor {cursor!r}") from None
            clauses.append("rowid < ?")
            params.append(before)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""

        def read(conn: sqlite3.Connection) -> Page:
            rows = conn.execute(
                f"SELECT rowid AS seq, id FROM tasks {where} ORDER BY rowid DESC LIMIT ?",
                [*params, limit + 1],
            ).fetchall()
            page, more = rows[:limit], len(rows) > limit
            records = _load(conn, [r["id"] for r in page])
            return Page(
                [records[r["id"]] for r in page], str(page[-1]["seq"]) if more and page else None
            )

        return await self._read(read)

    async def events(self, after: int, limit: int) -> list[Event]:
        def read(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                "SELECT seq, task_id, status, at, worker, reason FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
            return [
                Event(
                    r["seq"], r["task_id"], Status(r["status"]), r["at"], r["worker"], r["reason"]
                )
                for r in rows
            ]

        return await self._read(read)

    # -- the worker's path ----------------------------------------------------------------

    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease: float,
        now: float | None = None,
    ) -> list[TaskRecord]:
        if limit <= 0 or not queues:
            return []
        at = _now(now)

        def txn(conn: sqlite3.Connection) -> list[TaskRecord]:
            _promote(conn, at, queues)
            candidates: list[sqlite3.Row] = []
            limited: dict[str, QueueConfig] = {}
            for queue in dict.fromkeys(queues):
                config = _queue_config(conn, queue)
                room = _room(conn, config, limit, at)
                if room <= 0:
                    continue
                if config.rate_limit is not None:
                    limited[queue] = config
                candidates.extend(
                    conn.execute(
                        "SELECT rowid AS seq, id, queue, priority FROM tasks"
                        " WHERE status = 'submitted' AND queue = ?"
                        " ORDER BY priority DESC, rowid LIMIT ?",
                        (queue, room),
                    )
                )
            candidates.sort(key=lambda r: (-r["priority"], r["seq"]))
            chosen = candidates[:limit]
            for row in chosen:
                _start(conn, row["id"], worker_id, lease, at)
                if row["queue"] in limited:
                    conn.execute("INSERT INTO starts (queue, at) VALUES (?, ?)", (row["queue"], at))
            records = _load(conn, [r["id"] for r in chosen])
            return [records[r["id"]] for r in chosen]

        return await self._write(txn)

    async def renew(
        self,
        worker_id: str,
        leases: Mapping[str, int],
        lease: float,
        heartbeats: Mapping[str, float] | None = None,
        now: float | None = None,
    ) -> Renewal:
        at = _now(now)
        beats = heartbeats or {}

        def txn(conn: sqlite3.Connection) -> Renewal:
            conn.execute(
                "UPDATE workers SET last_seen = ?, running = ? WHERE id = ?",
                (at, len(leases), worker_id),
            )
            owned: set[str] = set()
            for chunk in _chunks(list(leases)):
                rows = conn.execute(
                    f"SELECT id, attempt FROM tasks WHERE id IN ({_marks(len(chunk))})"
                    " AND status = 'started' AND worker = ?",
                    [*chunk, worker_id],
                )
                owned.update(r["id"] for r in rows if r["attempt"] == leases[r["id"]])
            conn.executemany(
                "UPDATE tasks SET lease_expires_at = ?,"
                " heartbeat_at = MAX(COALESCE(heartbeat_at, 0), COALESCE(?, 0)) WHERE id = ?",
                [(at + lease, beats.get(task_id), task_id) for task_id in owned],
            )
            return Renewal(lost=[t for t in leases if t not in owned])

        return await self._write(txn)

    async def finish(
        self, worker_id: str, reports: Sequence[Report], now: float | None = None
    ) -> list[TaskRecord | None]:
        at = _now(now)

        def txn(conn: sqlite3.Connection) -> list[TaskRecord | None]:
            done: list[str | None] = []
            for report in reports:
                row = conn.execute(
                    "SELECT id, status, worker, attempt, policy, retries FROM tasks WHERE id = ?",
                    (report.task_id,),
                ).fetchone()
                if (
                    row is None
                    or row["status"] != Status.STARTED
                    or row["worker"] != worker_id
                    or row["attempt"] != report.attempt
                ):
                    done.append(None)
                    continue
                _apply_outcome(conn, row, report, worker_id, at)
                done.append(report.task_id)
            records = _load(conn, [d for d in done if d is not None])
            return [records[d] if d is not None else None for d in done]

        return await self._write(txn)

    # -- operators ------------------------------------------------------------------------

    async def cancel(
        self,
        task_ids: Sequence[str],
        reason: str = "cancelled by request",
        now: float | None = None,
    ) -> CancelResult:
        at = _now(now)

        def txn(conn: sqlite3.Connection) -> CancelResult:
            result = CancelResult()
            for task_id in dict.fromkeys(task_ids):
                row = conn.execute(
                    "SELECT id, status, worker, attempt FROM tasks WHERE id = ?", (task_id,)
                ).fetchone()
                if row is None:
                    result.unknown.append(task_id)
                elif Status(row["status"]) in TERMINAL:
                    result.not_cancellable.append(task_id)
                else:
                    if row["status"] in (Status.STARTED, Status.STALLED):
                        _end_attempt(conn, task_id, row["attempt"], "cancelled", None, at)
                    _move(conn, task_id, row["status"], Status.CANCELLED, at, row["worker"], reason)
                    conn.execute(
                        "UPDATE tasks SET finished_at = ?, lease_expires_at = NULL WHERE id = ?",
                        (at, task_id),
                    )
                    result.cancelled.append(task_id)
            return result

        return await self._write(txn)

    async def resubmit(self, task_ids: Sequence[str], now: float | None = None) -> list[str]:
        at = _now(now)

        def txn(conn: sqlite3.Connection) -> list[str]:
            moved: list[str] = []
            for task_id in dict.fromkeys(task_ids):
                row = conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
                if row is None or row["status"] != Status.DEAD:
                    continue
                _move(conn, task_id, Status.DEAD, Status.SUBMITTED, at, None, "resubmitted")
                conn.execute(
                    "UPDATE tasks SET retries = 0, due_at = NULL, finished_at = NULL,"
                    " worker = NULL, result = NULL WHERE id = ?",
                    (task_id,),
                )
                moved.append(task_id)
            return moved

        return await self._write(txn)

    async def delete(self, task_ids: Sequence[str], statuses: Sequence[Status]) -> list[str]:
        def txn(conn: sqlite3.Connection) -> list[str]:
            gone: list[str] = []
            for chunk in _chunks(list(task_ids)):
                rows = conn.execute(
                    f"DELETE FROM tasks WHERE id IN ({_marks(len(chunk))})"
                    f" AND status IN ({_marks(len(statuses))}) RETURNING id",
                    [*chunk, *(str(s) for s in statuses)],
                ).fetchall()
                gone.extend(r["id"] for r in rows)
            for chunk in _chunks(gone):
                conn.execute(
                    f"DELETE FROM attempts WHERE task_id IN ({_marks(len(chunk))})", list(chunk)
                )
            return gone

        return await self._write(txn)

    async def set_queue(self, config: QueueConfig) -> QueueConfig:
        def txn(conn: sqlite3.Connection) -> QueueConfig:
            conn.execute(
                "INSERT INTO queues (name, concurrency, rate_limit, rate_period, paused)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                " concurrency = excluded.concurrency, rate_limit = excluded.rate_limit,"
                " rate_period = excluded.rate_period, paused = excluded.paused",
                (
                    config.name,
                    config.concurrency,
                    config.rate_limit,
                    config.rate_period,
                    int(config.paused),
                ),
            )
            return _queue_config(conn, config.name)

        return await self._write(txn)

    async def queue_stats(self) -> list[QueueStats]:
        def read(conn: sqlite3.Connection) -> list[QueueStats]:
            counts: dict[str, dict[str, int]] = {}
            for r in conn.execute(
                "SELECT queue, status, COUNT(*) AS n FROM tasks"
                " WHERE status IN ('submitted', 'scheduled', 'started') GROUP BY queue, status"
            ):
                counts.setdefault(r["queue"], {})[r["status"]] = r["n"]
            names = set(counts) | {r["name"] for r in conn.execute("SELECT name FROM queues")}
            return [
                QueueStats(
                    config=_queue_config(conn, name),
                    depth=counts.get(name, {}).get("submitted", 0),
                    scheduled=counts.get(name, {}).get("scheduled", 0),
                    running=counts.get(name, {}).get("started", 0),
                )
                for name in sorted(names)
            ]

        return await self._read(read)

    async def register_worker(
        self, info: WorkerInfo, tasks: Sequence[TaskDefinition], now: float | None = None
    ) -> None:
        def txn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO workers (id, hostname, queues, started_at, last_seen,"
                " running) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    info.id,
                    info.hostname,
                    _dumps(list(info.queues)),
                    info.started_at,
                    _now(now),
                    info.running,
                ),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO task_definitions (name, queue, policy) VALUES (?, ?, ?)",
                [(t.name, t.queue, _dumps(t.policy.to_json())) for t in tasks],
            )

        await self._write(txn)

    async def unregister_worker(self, worker_id: str) -> None:
        await self._write(
            lambda conn: conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))
        )

    async def workers(self) -> list[WorkerInfo]:
        def read(conn: sqlite3.Connection) -> list[WorkerInfo]:
            return [
                WorkerInfo(
                    id=r["id"],
                    hostname=r["hostname"],
                    queues=tuple(json.loads(r["queues"])),
                    started_at=r["started_at"],
                    last_seen=r["last_seen"],
                    running=r["running"],
                )
                for r in conn.execute("SELECT * FROM workers ORDER BY started_at")
            ]

        return await self._read(read)

    async def task_definitions(self) -> dict[str, TaskDefinition]:
        def read(conn: sqlite3.Connection) -> dict[str, TaskDefinition]:
            return {
                r["name"]: TaskDefinition(
                    r["name"], r["queue"], RetryPolicy.from_json(json.loads(r["policy"]))
                )
                for r in conn.execute("SELECT name, queue, policy FROM task_definitions")
            }

        return await self._read(read)

    # -- maintenance ----------------------------------------------------------------------

    async def promote_due(self, now: float | None = None) -> int:
        at = _now(now)
        return await self._write(lambda conn: _promote(conn, at, None))

    async def reap(self, now: float | None = None) -> MaintenanceReport:
        at = _now(now)

        def txn(conn: sqlite3.Connection) -> MaintenanceReport:
            expired = conn.execute(
                "SELECT id, worker, attempt FROM tasks"
                " WHERE status = 'started' AND lease_expires_at < ?",
                (at,),
            ).fetchall()
            for row in expired:
                error = ErrorInfo(
                    "LeaseLost", f"worker {row['worker']} stopped renewing its lease (lost)"
                )
                _stall(conn, row["id"], row["worker"], row["attempt"], "lease_lost", error, at)
            lapsed = conn.execute(
                "SELECT id, worker, attempt, hb_interval FROM tasks WHERE status = 'started'"
                " AND hb_interval IS NOT NULL"
                " AND MAX(COALESCE(heartbeat_at, 0), started_at) + hb_interval < ?",
                (at,),
            ).fetchall()
            for row in lapsed:
                error = ErrorInfo(
                    "HeartbeatTimeout", f"no heartbeat for more than {row['hb_interval']:g} s"
                )
                _stall(conn, row["id"], row["worker"], row["attempt"], "stalled", error, at)
            conn.execute("DELETE FROM starts WHERE at < ?", (at - 3600.0,))
            return MaintenanceReport(reaped=len(expired), stalled=len(lapsed))

        return await self._write(txn)

    async def prune(self, before: float) -> int:
        def txn(conn: sqlite3.Connection) -> int:
            gone = [
                r["id"]
                for r in conn.execute(
                    "DELETE FROM tasks WHERE status IN ('completed', 'failed', 'cancelled')"
                    " AND finished_at < ? RETURNING id",
                    (before,),
                ).fetchall()
            ]
            for chunk in _chunks(gone):
                conn.execute(
                    f"DELETE FROM attempts WHERE task_id IN ({_marks(len(chunk))})", list(chunk)
                )
            conn.execute("DELETE FROM events WHERE at < ?", (before,))
            return len(gone)

        return await self._write(txn)


# -- transaction helpers: each runs inside the caller's write transaction ------------------


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


def _insert(conn: sqlite3.Connection, task: NewTask, at: float) -> None:
    status = Status.SCHEDULED if task.due_at is not None and task.due_at > at else Status.SUBMITTED
    conn.execute(
        "INSERT INTO tasks (id, name, queue, kwargs, fingerprint, status, priority, policy,"
        " hb_interval, due_at, submitted_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            task.id,
            task.name,
            task.queue,
            _dumps(task.kwargs),
            _fingerprint(task),
            str(status),
            task.priority,
            _dumps(task.policy.to_json()),
            task.policy.max_heartbeat_interval,
            task.due_at if status is Status.SCHEDULED else None,
            at,
            at,
        ),
    )
    _event(conn, task.id, status, at, None, None)


def _event(
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


def _move(
    conn: sqlite3.Connection,
    task_id: str,
    current: str,
    target: Status,
    at: float,
    worker: str | None,
    reason: str | None,
) -> None:
    """The single place a status changes: checked against the state machine, then recorded."""
    check_transition(task_id, Status(current), target)
    conn.execute(
        "UPDATE tasks SET status = ?, updated_at = ? WHERE id = ?", (str(target), at, task_id)
    )
    _event(conn, task_id, target, at, worker, reason)


def _promote(conn: sqlite3.Connection, at: float, queues: Sequence[str] | None) -> int:
    sql = "SELECT id FROM tasks WHERE status = 'scheduled' AND due_at <= ?"
    params: list[Any] = [at]
    if queues is not None:
        sql += f" AND queue IN ({_marks(len(queues))})"
        params.extend(queues)
    due = [r["id"] for r in conn.execute(sql, params).fetchall()]
    for task_id in due:
        _move(conn, task_id, Status.SCHEDULED, Status.SUBMITTED, at, None, "due")
        conn.execute("UPDATE tasks SET due_at = NULL WHERE id = ?", (task_id,))
    return len(due)


def _queue_config(conn: sqlite3.Connection, name: str) -> QueueConfig:
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


def _room(conn: sqlite3.Connection, config: QueueConfig, limit: int, at: float) -> int:
    """How many tasks of this queue may start now, across every worker."""
    if config.paused:
        return 0
    room = limit
    if config.concurrency is not None:
        running = conn.execute(
            "SELECT COUNT(*) FROM tasks WHERE status = 'started' AND queue = ?", (config.name,)
        ).fetchone()[0]
        room = min(room, config.concurrency - running)
    if config.rate_limit is not None:
        started = conn.execute(
            "SELECT COUNT(*) FROM starts WHERE queue = ? AND at > ?",
            (config.name, at - config.rate_period),
        ).fetchone()[0]
        room = min(room, config.rate_limit - started)
    return room


def _start(conn: sqlite3.Connection, task_id: str, worker: str, lease: float, at: float) -> None:
    _move(conn, task_id, Status.SUBMITTED, Status.STARTED, at, worker, None)
    number = conn.execute(
        "UPDATE tasks SET attempt = attempt + 1, worker = ?, started_at = ?, finished_at = NULL,"
        " lease_expires_at = ?, heartbeat_at = NULL WHERE id = ? RETURNING attempt",
        (worker, at, at + lease, task_id),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO attempts (task_id, number, worker, started_at, outcome)"
        " VALUES (?, ?, ?, ?, 'running')",
        (task_id, number, worker, at),
    )


def _end_attempt(
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
        (at, outcome, _error_json(error), task_id, number),
    )


def _apply_outcome(
    conn: sqlite3.Connection, row: sqlite3.Row, report: Report, worker: str, at: float
) -> None:
    outcome = report.outcome
    task_id = report.task_id
    if outcome.kind == "completed":
        _end_attempt(conn, task_id, report.attempt, "completed", None, at)
        _move(conn, task_id, Status.STARTED, Status.COMPLETED, at, worker, None)
        conn.execute(
            "UPDATE tasks SET result = ?, error = NULL, finished_at = ?, lease_expires_at = NULL"
            " WHERE id = ?",
            (_dumps(outcome.result), at, task_id),
        )
    elif outcome.kind == "handed_back":
        _end_attempt(conn, task_id, report.attempt, "handed_back", None, at)
        _move(conn, task_id, Status.STARTED, Status.SUBMITTED, at, worker, "handed back")
        conn.execute(
            "UPDATE tasks SET worker = NULL, lease_expires_at = NULL WHERE id = ?", (task_id,)
        )
    elif outcome.kind == "cancelled":
        _end_attempt(conn, task_id, report.attempt, "cancelled", outcome.error, at)
        _move(conn, task_id, Status.STARTED, Status.CANCELLED, at, worker, "cancelled by the task")
        conn.execute(
            "UPDATE tasks SET finished_at = ?, lease_expires_at = NULL WHERE id = ?",
            (at, task_id),
        )
    else:
        error = outcome.error or ErrorInfo("Error", "the task failed without an error")
        _end_attempt(conn, task_id, report.attempt, outcome.kind, error, at)
        _retry_or_fail(conn, row, Status.STARTED, error, worker, at)


def _stall(
    conn: sqlite3.Connection,
    task_id: str,
    worker: str | None,
    attempt: int,
    outcome: str,
    error: ErrorInfo,
    at: float,
) -> None:
    _end_attempt(conn, task_id, attempt, outcome, error, at)
    _move(conn, task_id, Status.STARTED, Status.STALLED, at, worker, error.message)
    row = conn.execute("SELECT id, policy, retries FROM tasks WHERE id = ?", (task_id,)).fetchone()
    _retry_or_fail(conn, row, Status.STALLED, error, worker, at)


def _retry_or_fail(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    current: Status,
    error: ErrorInfo,
    worker: str | None,
    at: float,
) -> None:
    """The policy decides: back to ``scheduled`` after backoff, else ``failed`` (then ``dead``)."""
    task_id = row["id"]
    policy = RetryPolicy.from_json(json.loads(row["policy"]))
    retries = row["retries"]
    reason = f"{error.type}: {error.message}"
    conn.execute(
        "UPDATE tasks SET error = ?, lease_expires_at = NULL WHERE id = ?",
        (_error_json(error), task_id),
    )
    if is_retryable(policy, error.type, retries):
        due = at + backoff_delay(policy, retries + 1)
        _move(conn, task_id, current, Status.SCHEDULED, at, worker, reason)
        conn.execute(
            "UPDATE tasks SET retries = retries + 1, due_at = ? WHERE id = ?", (due, task_id)
        )
        return
    _move(conn, task_id, current, Status.FAILED, at, worker, reason)
    conn.execute("UPDATE tasks SET finished_at = ? WHERE id = ?", (at, task_id))
    if policy.dead_letter == "save":
        _move(conn, task_id, Status.FAILED, Status.DEAD, at, worker, "dead-lettered")


def _load(conn: sqlite3.Connection, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
    ids = list(dict.fromkeys(task_ids))
    rows: list[sqlite3.Row] = []
    attempts: dict[str, list[Attempt]] = {}
    for chunk in _chunks(ids):
        marks = _marks(len(chunk))
        rows.extend(
            conn.execute(f"SELECT {TASK_COLUMNS} FROM tasks WHERE id IN ({marks})", list(chunk))
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
    return {r["id"]: _record(r, attempts.get(r["id"], [])) for r in rows}


def _record(r: sqlite3.Row, attempts: list[Attempt]) -> TaskRecord:
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
        due_at=r["due_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        worker=r["worker"],
        lease_expires_at=r["lease_expires_at"],
        heartbeat_at=r["heartbeat_at"],
        result=json.loads(r["result"]) if r["result"] is not None else None,
        error=ErrorInfo.from_json(json.loads(r["error"]) if r["error"] else None),
        attempts=tuple(attempts),
    )
