"""The embedded store: one SQLite file shared safely by every process on one host.

WAL lets readers run beside the single writer; every change is one short ``BEGIN IMMEDIATE``
transaction, so a claim and a finish are atomic across processes without any server. A small call
runs on the event loop's thread when it can start at once (the store's own thread idle, the write
lock free): handing a short transaction to a thread and back costs more than the transaction.
Big calls, and anything that would wait for a lock, run on one thread per store instance instead,
so the event loop never blocks on another process; a lock keeps the connection to one thread at
a time.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import sqlite3
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, NoReturn
from urllib.parse import quote

from jobbers import effects
from jobbers.compact_json import dumps
from jobbers.models import (
    JSON,
    Event,
    MaintenanceReport,
    NewTask,
    Page,
    QueueConfig,
    QueueStats,
    Run,
    RunPage,
    Status,
    TaskDefinition,
    TaskFilter,
    TaskRecord,
    WorkerInfo,
)
from jobbers.policy import start_retention
from jobbers.schedule import Schedule
from jobbers.store.base import (
    AttemptNotes,
    BadCursor,
    CancelResult,
    DuplicateTaskConflict,
    Renewal,
    Report,
    Submitted,
    TaskCounts,
)
from jobbers.store.sqlite import connection as sqlite_open
from jobbers.store.sqlite import runs as run_sql
from jobbers.store.sqlite import schedules as sched_sql
from jobbers.store.sqlite.checkpoint import BACKSTOP_PAGES, Checkpointer
from jobbers.store.sqlite.counts import FINAL, counts, drop_empty, queue_counts
from jobbers.store.sqlite.notes import add_notes, drop_notes, read_notes, read_progress
from jobbers.store.sqlite.steps import (
    CHANGE_POLL_MAX,
    CHANGE_POLL_MIN,
    STALE_WORKER,
    T,
    apply,
    apply_outcome,
    chunks,
    clock,
    data_version,
    drop_flow,
    fingerprint,
    insert_fresh,
    insert_many,
    load,
    parent_results,
    placeholders,
    promote,
    queue_config,
    room_for,
    stall,
    start,
)
from jobbers.store.sqlite.watch import FileWatch
from jobbers.store.tally import unrunnable

#: Calls on up to this many items may run on the event loop's thread (about a millisecond).
SMALL = 32
#: Events one change-feed read takes on the loop's thread (a few hundred fit in a millisecond).
FEED_INLINE = SMALL * 8
#: Statuses by their stored text: a lookup, where ``Status(text)`` costs a call per row.
_STATUS = {s.value: s for s in Status}
#: Bytes of the file read through a memory map (SQLite caps it at its build's maximum, about
#: 2 GiB on 64-bit builds). Mapped pages are the kernel's page cache, shared between processes.
MMAP_BYTES = 2 << 30
#: Tasks deleted per prune transaction: each costs about 60 µs with its triggers and indexes,
#: so a batch holds the write lock for a few milliseconds.
PRUNE_BATCH = 50
#: Pause between two prune transactions: longer than a waiting writer's pause between tries
#: (``sqlite_open.LOCK_RETRY_MAX``), so other processes' claims get the lock in between.
PRUNE_PAUSE = 0.005


class SQLiteStore:
    """See :class:`jobbers.store.base.Store` for what each method promises."""

    def __init__(self, path: str, busy_timeout: float = 30.0, *, inline: bool = False) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        #: Run SQL on the calling thread: for a loop that does nothing but call this store (a
        #: blocking producer), where handing each call to a thread costs more than the SQL.
        self._inline = inline
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobbers-sqlite")
        self._conn: sqlite3.Connection | None = None
        #: The change feed's own connection (see :meth:`_feed_connection`).
        self._feed_conn: sqlite3.Connection | None = None
        self._local_writes = 0
        #: data_version after this connection's last call: later commits by others change it.
        self._seen_version: int | None = None
        #: The same, per caller: a wait starts from what its own task (or the task that
        #: started it: a context is copied into the tasks it creates) last read, so another
        #: task's newer read cannot mark as seen a commit this one never read.
        self._seen_here: contextvars.ContextVar[int | None] = contextvars.ContextVar(
            f"jobbers-sqlite-seen-{id(self)}", default=None
        )
        self._waiters: list[asyncio.Future[bool]] = []
        self._watch: FileWatch | None = None
        self._closed = threading.Event()
        self._identity: sqlite_open.FileIdentity = None
        self._checkpointer = Checkpointer(path) if sqlite_open.is_file(path) else None
        #: Calls handed to the store's thread: started, done there, and cancelled before running.
        self._hops_started = self._hops_done = self._hops_dropped = 0
        #: Held by whichever thread uses the connection: never two at once.
        self._conn_lock = threading.Lock()

    # -- plumbing -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._open()
        return self._conn

    def _open(self) -> sqlite3.Connection:
        conn = sqlite_open.connect(self.path, self._busy_timeout)
        conn.execute("PRAGMA busy_timeout=0")  # sqlite_open.patiently waits instead
        # Reads through a memory map skip SQLite's page cache and a copy per page, which keeps
        # random lookups on a large file close to their cost on a small one.
        conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        self._identity = sqlite_open.identity(self.path)
        if self._checkpointer is not None:
            conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
        return conn

    async def check(self) -> None:
        def verify() -> None:
            sqlite_open.verify(self._connection(), self.path, self._identity)

        await self._hop(sqlite_open.patiently, verify, self._busy_timeout)

    def _hop(self, call: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``call`` on the store's thread, counting what is queued or running there so that
        the loop thread takes the connection only while nothing is (and never overtakes)."""
        self._hops_started += 1

        def counted() -> T:
            try:
                with self._conn_lock:
                    return call(*args)
            finally:
                self._hops_done += 1

        future = self._thread.submit(counted)
        future.add_done_callback(self._hop_dropped)
        return asyncio.wrap_future(future)

    def _hop_dropped(self, future: Future[Any]) -> None:
        if future.cancelled():  # never ran: cancelled by the loop thread before it started
            self._hops_dropped += 1

    def _take_now(self) -> bool:
        """True, holding the connection's lock, when the calling thread may use the connection
        at once: it is open and the store's thread has nothing queued or running."""
        idle = self._hops_started == self._hops_done + self._hops_dropped
        return self._conn is not None and idle and self._conn_lock.acquire(blocking=False)

    async def _read(self, fn: Callable[[sqlite3.Connection], T], small: bool = True) -> T:
        """A ``small`` call runs on the calling thread when the store's thread is idle and
        nothing has to be waited for (a hop to a thread costs more than a small read); others,
        which could hold the event loop for milliseconds, on the store's thread."""
        return self._seen(*await self._reading(partial(self._observe, fn), small))

    async def _reading(self, call: Callable[[], T], small: bool) -> T:
        """Where :meth:`_read` (and the feed's reads) run ``call``: see :meth:`_read`."""
        try:
            if self._inline:
                with self._conn_lock:
                    return sqlite_open.patiently(call, self._busy_timeout)
            if small and self._take_now():
                try:
                    # The connection's busy handler is off: a lock held elsewhere raises at once.
                    return call()
                except sqlite3.OperationalError:
                    pass  # busy (or worse): the thread waits, or raises what is wrong
                finally:
                    self._conn_lock.release()
            return await self._hop(sqlite_open.patiently, call, self._busy_timeout)
        except sqlite3.DatabaseError as exc:
            self._raise_unavailable(exc)

    def _seen(self, result: T, version: int) -> T:
        """On the loop's thread, after a call: its caller has seen ``version``."""
        self._seen_here.set(version)
        return result

    def _raise_unavailable(self, exc: sqlite3.DatabaseError) -> NoReturn:
        """Errors of the file (gone, read-only, locked, another schema) become StoreUnavailable;
        any other error (a constraint, a bad statement) is a bug and stays what it is."""
        if isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError:
            raise sqlite_open.unavailable(self.path, exc) from None
        raise exc

    def _observe(self, fn: Callable[[sqlite3.Connection], T]) -> tuple[T, int]:
        """The result and the version from before the read: a commit landing between the read
        and a look taken after it would count as seen, and the next wait would sleep through
        it."""
        conn = self._connection()
        version = data_version(conn)
        result = fn(conn)
        self._seen_version = version
        return result, version

    async def _write(self, fn: Callable[[sqlite3.Connection], T], small: bool = True) -> T:
        """Like :meth:`_read`: a ``small`` transaction on the calling thread when the write lock
        is free right now, since it costs less than the hop; else the store's thread waits."""
        try:
            if self._inline:
                with self._conn_lock:
                    result, version = self._transaction(fn)
            elif small and self._take_now() and self._begun_now():
                try:
                    result, version = self._transaction(fn, begun=True)
                finally:
                    self._conn_lock.release()
            else:
                result, version = await self._hop(self._transaction, fn)
        except sqlite3.DatabaseError as exc:
            self._raise_unavailable(exc)
        self._local_writes += 1
        self._wake_waiters(certain=True)
        return self._seen(result, version)

    def _begun_now(self) -> bool:
        """With the connection's lock held: True once a transaction has begun without waiting;
        else False, the lock released."""
        try:
            begun = self._begin_now()
        except BaseException:
            self._conn_lock.release()
            raise
        if not begun:
            self._conn_lock.release()
        return begun

    def _begin_now(self) -> bool:
        """The connection's busy handler is off, so a lock held elsewhere fails at once."""
        try:
            self._connection().execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return False
        return True

    def _transaction(
        self, fn: Callable[[sqlite3.Connection], T], begun: bool = False
    ) -> tuple[T, int]:
        conn = self._connection()
        if not begun:
            sqlite_open.patiently(partial(conn.execute, "BEGIN IMMEDIATE"), self._busy_timeout)
        try:
            result = fn(conn)
            # Read under the write lock, before COMMIT: no other commit can land in between,
            # so none that came after this transaction counts as seen.
            version = data_version(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        self._seen_version = version
        if self._checkpointer is not None:
            self._checkpointer.committed(conn.total_changes)
        return result, version

    async def wait_for_change(self, timeout: float) -> None:
        """Woken at once by this store's own writes; by other processes' commits as soon as the
        WAL file is written where inotify exists (see :mod:`jobbers.store.sqlite.watch`), and by
        polling ``data_version`` otherwise and as a backstop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        writes = self._local_writes
        version = self._seen_here.get()
        if version is None:
            version = self._seen_version
        if version is None:
            version = await self._read(data_version)
        self._watch_wal(loop)
        poll = CHANGE_POLL_MIN
        while self._local_writes == writes:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            waiter: asyncio.Future[bool] = loop.create_future()
            self._waiters.append(waiter)
            certain: bool | None = None
            try:
                certain = await asyncio.wait_for(waiter, min(poll, remaining))
            except TimeoutError:
                pass
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if certain or await self._read(data_version) != version:
                return
            # After a file event, look again soon: the rest of that commit is on its way.
            poll = CHANGE_POLL_MIN if certain is False else min(poll * 2, CHANGE_POLL_MAX)

    def _watch_wal(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._watch is not None and self._watch.loop is not loop:
            self._watch.close()
            self._watch = None
        if self._watch is None and self._checkpointer is not None and not self._closed.is_set():
            self._watch = FileWatch.start(f"{self.path}-wal", loop, self._wake_waiters)

    def _wake_waiters(self, certain: bool = False) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(certain)

    async def wait_for_cancel(self, timeout: float) -> list[str]:
        """SQLite has no push: renewals find cancellations."""
        await asyncio.sleep(timeout)
        return []

    # -- schedules ------------------------------------------------------------------------

    async def save_schedule(self, schedule: Schedule, create: bool) -> bool:
        return await self._write(lambda conn: sched_sql.save(conn, schedule, create))

    async def schedules(self) -> list[Schedule]:
        return await self._read(sched_sql.read_all)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        return await self._read(lambda conn: sched_sql.read_one(conn, schedule_id))

    async def delete_schedule(self, schedule_id: str) -> bool:
        return await self._write(lambda conn: sched_sql.delete(conn, schedule_id))

    async def advance_schedule(
        self,
        schedule_id: str,
        expected: float,
        next_fire: float | None,
        fired_at: float | None = None,
        tasks: Sequence[str] = (),
    ) -> bool:
        def txn(conn: sqlite3.Connection) -> bool:
            return sched_sql.advance(conn, schedule_id, expected, next_fire, fired_at, tasks)

        return await self._write(txn)

    async def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            if self._feed_conn is not None:
                self._feed_conn.close()
                self._feed_conn = None

        if not self._closed.is_set():
            self._closed.set()
            if self._watch is not None:
                self._watch.close()
                self._watch = None
            await self._hop(_close)
            self._thread.shutdown(wait=True)
            if self._checkpointer is not None:
                self._checkpointer.close()

    # -- submit and read ------------------------------------------------------------------

    async def submit(self, tasks: Sequence[NewTask], now: float | None = None) -> list[Submitted]:
        """Fresh tasks are answered from what was just inserted; only ids that already existed
        are read back."""
        at = clock(now)
        prints = [fingerprint(t) for t in tasks]

        def txn(conn: sqlite3.Connection) -> list[Submitted]:
            made = insert_fresh(conn, tasks, prints, at)
            if made is not None:
                return [Submitted(made[t.id], True) for t in tasks]
            existing: dict[str, str] = {}
            for chunk in chunks([t.id for t in tasks]):
                rows = conn.execute(
                    f"SELECT id, fingerprint FROM tasks WHERE id IN ({placeholders(len(chunk))})",
                    list(chunk),
                )
                existing.update({r[0]: r[1] for r in rows})
            conflicts: list[str] = []
            fresh: dict[str, int] = {}
            for index, task in enumerate(tasks):
                seen = existing.get(task.id)
                if seen is None and task.id in fresh:
                    seen = prints[fresh[task.id]]
                if seen is not None and seen != prints[index]:
                    conflicts.append(task.id)
                elif seen is None:
                    fresh[task.id] = index
            if conflicts:
                raise DuplicateTaskConflict(conflicts)
            made = insert_many(conn, [(tasks[i], prints[i]) for i in fresh.values()], at)
            assert made is not None
            records = load(conn, [t.id for t in tasks if t.id not in fresh]) if existing else {}
            records.update(made)
            return [
                Submitted(records[t.id], fresh.get(t.id) == index) for index, t in enumerate(tasks)
            ]

        return await self._write(txn, small=len(tasks) <= SMALL)

    async def get(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        return await self._read(lambda conn: load(conn, task_ids), small=len(task_ids) <= SMALL)

    async def statuses(self, task_ids: Sequence[str]) -> dict[str, Status]:
        def read(conn: sqlite3.Connection) -> dict[str, Status]:
            out: dict[str, Status] = {}
            for chunk in chunks(list(task_ids)):
                rows = conn.execute(
                    f"SELECT id, status FROM tasks WHERE id IN ({placeholders(len(chunk))})",
                    list(chunk),
                )
                out.update({r["id"]: Status(r["status"]) for r in rows})
            return out

        return await self._read(read, small=len(task_ids) <= SMALL)

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
        if cursor is not None:
            clauses.append("rowid < ?")
            params.append(_seq(cursor))
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""

        def read(conn: sqlite3.Connection) -> Page:
            rows = conn.execute(
                f"SELECT rowid AS seq, id FROM tasks {where} ORDER BY rowid DESC LIMIT ?",
                [*params, limit + 1],
            ).fetchall()
            page, more = rows[:limit], len(rows) > limit
            records = load(conn, [r["id"] for r in page])
            return Page(
                [records[r["id"]] for r in page], str(page[-1]["seq"]) if more and page else None
            )

        return await self._read(read, small=limit <= SMALL)

    async def events(self, after: str | None, limit: int) -> list[Event]:
        """The first :data:`FEED_INLINE` events are read like any small call (on the loop's
        thread when the store is idle); only a longer backlog hands the rest to the store's
        thread. A reader that keeps up, such as an executor's ``sync()``, asks for up to a
        thousand and gets a few hundred, so it no longer pays the hop on every read. Events are
        committed in ``seq`` order (one writer at a time), so two reads leave no gap."""
        start = 0 if after is None else _seq(after)

        def read(first: int, most: int, conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                "SELECT seq, task_id, status, at, worker, reason FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (first, most),
            )
            return [
                Event(str(seq), task_id, _STATUS[status], at, worker, reason)
                for seq, task_id, status, at, worker, reason in rows
            ]

        head = min(limit, FEED_INLINE)
        found = await self._read_feed(partial(read, start, head))
        if len(found) == head < limit:
            more = limit - head
            found += await self._read_feed(partial(read, int(found[-1].cursor), more), small=False)
        return found

    async def latest_event(self) -> str:
        def read(conn: sqlite3.Connection) -> str:
            row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
            return str(row[0]) if row else "0"

        return await self._read_feed(read)

    def _feed_connection(self) -> sqlite3.Connection:
        """A second connection, without a memory map, for the change feed.

        SQLite drops a connection's map of the file at its first read after another process
        has committed, and unmapping costs the kernel a step per page the map held. On the main
        connection, a feed read after a worker's commit would therefore pay for every page the
        calls before it faulted in (a bulk submission's index pages, spread over the whole file),
        so a larger store made the same feed read slower. The feed reads the few newest pages of
        one table, which gain nothing from a map.
        """
        if self._feed_conn is None:
            self._connection()  # the main connection creates or checks the file first
            conn = sqlite3.connect(
                f"file:{quote(self.path)}?mode=rw",
                uri=True,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA mmap_size=0")
            self._feed_conn = conn
        return self._feed_conn

    async def _read_feed(self, fn: Callable[[sqlite3.Connection], T], small: bool = True) -> T:
        """:meth:`_read` on the feed's connection, under the same lock and on the same thread.

        Leaves ``_seen_version`` alone: data_version counts per connection, and reading it on
        the main connection would start a read there and unmap its file after all. A store
        that is not a plain file (in memory, a URI) has no second connection to the same data.
        """
        if not sqlite_open.is_file(self.path):
            return await self._read(fn, small)
        return await self._reading(lambda: fn(self._feed_connection()), small)

    # -- the worker's path ----------------------------------------------------------------

    async def claim(
        self,
        worker_id: str,
        queues: Sequence[str],
        limit: int,
        lease: float,
        now: float | None = None,
        *,
        names: Collection[str] | None = None,
    ) -> list[TaskRecord]:
        if limit <= 0 or not queues or (names is not None and not names):
            return []
        at = clock(now)
        only = sorted(names) if names is not None else []
        by_name = f" AND name IN ({placeholders(len(only))})" if names is not None else ""

        def txn(conn: sqlite3.Connection) -> list[TaskRecord]:
            promote(conn, at, queues)
            candidates: list[sqlite3.Row] = []
            limited: dict[str, QueueConfig] = {}
            for queue in dict.fromkeys(queues):
                config = queue_config(conn, queue)
                room = room_for(conn, config, limit, at)
                if room <= 0:
                    continue
                if config.rate_limit is not None:
                    limited[queue] = config
                candidates.extend(
                    conn.execute(
                        "SELECT rowid AS seq, id, queue, priority, updated_at FROM tasks"
                        f" WHERE status = 'submitted' AND queue = ?{by_name}"
                        " ORDER BY priority DESC, rowid LIMIT ?",
                        (queue, *only, room),
                    )
                )
            candidates.sort(key=lambda r: (-r["priority"], r["seq"]))
            chosen = candidates[:limit]
            for row in chosen:
                start(conn, row["id"], worker_id, lease, at, row["updated_at"])
                if row["queue"] in limited:
                    conn.execute("INSERT INTO starts (queue, at) VALUES (?, ?)", (row["queue"], at))
            records = load(conn, [r["id"] for r in chosen])
            return [records[r["id"]] for r in chosen]

        return await self._write(txn)  # bounded by the worker's slots

    async def renew(
        self,
        worker_id: str,
        leases: Mapping[str, int],
        lease: float,
        heartbeats: Mapping[str, float] | None = None,
        now: float | None = None,
    ) -> Renewal:
        at = clock(now)
        beats = heartbeats or {}

        def txn(conn: sqlite3.Connection) -> Renewal:
            seen = conn.execute(
                "UPDATE workers SET last_seen = ?, running = ? WHERE id = ?",
                (at, len(leases), worker_id),
            )
            registered = seen.rowcount == 1
            owned: set[str] = set()
            for chunk in chunks(list(leases)):
                rows = conn.execute(
                    f"SELECT id, attempt FROM tasks WHERE id IN ({placeholders(len(chunk))})"
                    # unary + keeps the planner on the id lookup, off the status index
                    " AND +status = 'started' AND worker = ?",
                    [*chunk, worker_id],
                )
                owned.update(r["id"] for r in rows if r["attempt"] == leases[r["id"]])
            conn.executemany(
                "UPDATE tasks SET lease_expires_at = ?,"
                " heartbeat_at = MAX(COALESCE(heartbeat_at, 0), COALESCE(?, 0)) WHERE id = ?",
                [(at + lease, beats.get(task_id), task_id) for task_id in owned],
            )
            return Renewal(lost=[t for t in leases if t not in owned], registered=registered)

        return await self._write(txn)  # bounded by the worker's slots

    async def finish(
        self, worker_id: str, reports: Sequence[Report], now: float | None = None
    ) -> list[TaskRecord | None]:
        at = clock(now)

        def txn(conn: sqlite3.Connection) -> list[TaskRecord | None]:
            done: list[str | None] = []
            for report in reports:
                row = conn.execute(
                    "SELECT id, status, worker, attempt, policy, retries, lost FROM tasks"
                    " WHERE id = ?",
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
                apply_outcome(conn, row, report, worker_id, at)
                done.append(report.task_id)
            records = load(conn, [d for d in done if d is not None])
            return [records[d] if d is not None else None for d in done]

        return await self._write(txn)  # bounded by the worker's slots

    # -- operators ------------------------------------------------------------------------

    async def cancel(
        self,
        task_ids: Sequence[str],
        reason: str = "cancelled by request",
        now: float | None = None,
    ) -> CancelResult:
        at = clock(now)
        step = effects.CANCEL

        def txn(conn: sqlite3.Connection) -> CancelResult:
            result = CancelResult()
            for task_id in dict.fromkeys(task_ids):
                row = conn.execute(
                    "SELECT id, status, worker, attempt FROM tasks WHERE id = ?", (task_id,)
                ).fetchone()
                if row is None:
                    result.unknown.append(task_id)
                elif row["status"] not in step.sources:
                    result.not_cancellable.append(task_id)
                else:
                    apply(
                        conn,
                        task_id,
                        step,
                        row["status"],
                        at,
                        row["worker"],
                        attempt=row["attempt"],
                        reason=reason,
                    )
                    result.cancelled.append(task_id)
            return result

        return await self._write(txn, small=len(task_ids) <= SMALL)

    async def resubmit(self, task_ids: Sequence[str], now: float | None = None) -> list[str]:
        at = clock(now)

        def txn(conn: sqlite3.Connection) -> list[str]:
            moved: list[str] = []
            for task_id in dict.fromkeys(task_ids):
                row = conn.execute("SELECT status FROM tasks WHERE id = ?", (task_id,)).fetchone()
                if row is None or row["status"] not in effects.RESUBMIT.sources:
                    continue
                apply(conn, task_id, effects.RESUBMIT, row["status"], at, None)
                moved.append(task_id)
            return moved

        return await self._write(txn, small=len(task_ids) <= SMALL)

    async def delete(self, task_ids: Sequence[str], statuses: Sequence[Status]) -> list[str]:
        def txn(conn: sqlite3.Connection) -> list[str]:
            gone: list[str] = []
            for chunk in chunks(list(task_ids)):
                rows = conn.execute(
                    f"DELETE FROM tasks WHERE id IN ({placeholders(len(chunk))})"
                    f" AND +status IN ({placeholders(len(statuses))}) RETURNING id",
                    [*chunk, *(str(s) for s in statuses)],
                ).fetchall()
                gone.extend(r["id"] for r in rows)
            for chunk in chunks(gone):
                conn.execute(
                    f"DELETE FROM attempts WHERE task_id IN ({placeholders(len(chunk))})",
                    list(chunk),
                )
                drop_notes(conn, chunk)
                drop_flow(conn, chunk)
            return gone

        return await self._write(txn, small=len(task_ids) <= SMALL)

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
            return queue_config(conn, config.name)

        return await self._write(txn)

    async def queue_stats(self) -> list[QueueStats]:
        def read(conn: sqlite3.Connection) -> list[QueueStats]:
            counts = queue_counts(conn)
            names = set(counts) | {r["name"] for r in conn.execute("SELECT name FROM queues")}
            waiting: dict[str, dict[str, int]] = {}
            for r in conn.execute(
                "SELECT queue, name, COUNT(*) AS n FROM tasks"
                " WHERE status IN ('submitted', 'scheduled') GROUP BY queue, name"
            ):
                waiting.setdefault(r["queue"], {})[r["name"]] = r["n"]
            workers = _workers(conn)
            return [
                QueueStats(
                    config=queue_config(conn, name),
                    depth=counts.get(name, {}).get("submitted", 0),
                    scheduled=counts.get(name, {}).get("scheduled", 0),
                    running=counts.get(name, {}).get("started", 0),
                    unrunnable=unrunnable(waiting.get(name, {}), name, workers),
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
                " running, slots) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    info.id,
                    info.hostname,
                    dumps(list(info.queues)),
                    info.started_at,
                    clock(now),
                    info.running,
                    info.slots,
                ),
            )
            conn.execute(
                "INSERT OR REPLACE INTO worker_tasks (worker_id, tasks) VALUES (?, ?)",
                (info.id, dumps(sorted(info.tasks))),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO definitions (name, definition) VALUES (?, ?)",
                [(t.name, t.to_json()) for t in tasks],
            )

        await self._write(txn)

    async def unregister_worker(self, worker_id: str) -> None:
        await self._write(
            lambda conn: conn.execute("DELETE FROM workers WHERE id = ?", (worker_id,))
        )

    async def workers(self) -> list[WorkerInfo]:
        return await self._read(_workers)

    async def task_definitions(self) -> dict[str, TaskDefinition]:
        def read(conn: sqlite3.Connection) -> dict[str, TaskDefinition]:
            return {
                r["name"]: TaskDefinition.from_json(r["definition"])
                for r in conn.execute("SELECT name, definition FROM definitions")
            }

        return await self._read(read)

    # -- maintenance ----------------------------------------------------------------------

    async def promote_due(self, now: float | None = None) -> int:
        at = clock(now)
        return await self._write(lambda conn: promote(conn, at, None), small=False)

    async def reap(self, now: float | None = None) -> MaintenanceReport:
        at = clock(now)

        def txn(conn: sqlite3.Connection) -> MaintenanceReport:
            expired = conn.execute(
                "SELECT id, worker, attempt FROM tasks"
                " WHERE status = 'started' AND lease_expires_at < ?",
                (at,),
            ).fetchall()
            for row in expired:
                error = effects.lease_lost_error(row["worker"])
                stall(conn, row["id"], row["worker"], row["attempt"], "lease_lost", error, at)
            lapsed = conn.execute(
                "SELECT id, worker, attempt, hb_interval FROM tasks WHERE status = 'started'"
                " AND hb_interval IS NOT NULL"
                " AND MAX(COALESCE(heartbeat_at, 0), started_at) + hb_interval < ?",
                (at,),
            ).fetchall()
            for row in lapsed:
                error = effects.heartbeat_error(row["hb_interval"])
                stall(conn, row["id"], row["worker"], row["attempt"], "stalled", error, at)
            keep = start_retention(
                queue_config(conn, r["name"]) for r in conn.execute("SELECT name FROM queues")
            )
            conn.execute("DELETE FROM starts WHERE at < ?", (at - keep,))
            conn.execute("DELETE FROM workers WHERE last_seen < ?", (at - STALE_WORKER,))
            return MaintenanceReport(reaped=len(expired), stalled=len(lapsed))

        return await self._write(txn, small=False)

    async def prune(self, before: float) -> int:
        """In batches of :data:`PRUNE_BATCH`, one transaction each with a pause between, so that
        a large prune never holds a claim up for more than a few milliseconds."""

        def batch(conn: sqlite3.Connection) -> int:
            gone = [
                r["id"]
                for r in conn.execute(
                    "DELETE FROM tasks WHERE rowid IN (SELECT rowid FROM tasks"
                    f" WHERE status IN {FINAL} AND finished_at < ? LIMIT ?) RETURNING id",
                    (before, PRUNE_BATCH),
                ).fetchall()
            ]
            if gone:
                conn.execute(
                    f"DELETE FROM attempts WHERE task_id IN ({placeholders(len(gone))})", gone
                )
                drop_notes(conn, gone)
                drop_flow(conn, gone)
            return len(gone)

        def events(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE at < ? LIMIT ?)",
                (before, PRUNE_BATCH * 4),
            ).rowcount

        pruned = 0
        while (done := await self._write(batch, small=False)) > 0:
            pruned += done
            await asyncio.sleep(PRUNE_PAUSE)
        more = True
        while more:
            more = await self._write(events, small=False) > 0
            await asyncio.sleep(PRUNE_PAUSE if more else 0)
        await self._write(lambda conn: drop_empty(conn, before), small=False)
        return pruned

    # -- what operators see -------------------------------------------------------------

    async def counts(self, since: float, bucket: float = 60.0) -> TaskCounts:
        return await self._read(lambda conn: counts(conn, since, bucket))

    # -- workflow runs ----------------------------------------------------------------------

    async def create_run(
        self, run: Run, tasks: Sequence[NewTask], now: float | None = None
    ) -> None:
        at = clock(now)
        await self._write(lambda conn: run_sql.create(conn, run, tasks, at), small=False)

    async def runs(self, limit: int, cursor: str | None = None, name: str | None = None) -> RunPage:
        if cursor is not None and not cursor.isdigit():
            raise BadCursor(cursor)
        return await self._read(lambda conn: run_sql.page(conn, limit, cursor, name))

    async def run(self, run_id: str) -> tuple[Run, list[TaskRecord]] | None:
        return await self._read(lambda conn: run_sql.read(conn, run_id), small=False)

    async def cancel_run(
        self, run_id: str, reason: str, now: float | None = None
    ) -> CancelResult | None:
        at = clock(now)
        return await self._write(lambda conn: run_sql.cancel(conn, run_id, reason, at), small=False)

    async def parent_results(self, task_id: str) -> list[tuple[str | None, JSON]]:
        return await self._read(lambda conn: parent_results(conn, task_id))

    async def add_notes(
        self, worker_id: str, notes: Sequence[AttemptNotes], now: float | None = None
    ) -> None:
        if notes:
            await self._write(lambda conn: add_notes(conn, worker_id, notes))

    async def notes(self, task_id: str) -> list[AttemptNotes]:
        return await self._read(lambda conn: read_notes(conn, task_id))

    async def progress(self, attempts: Sequence[tuple[str, int]]) -> dict[str, tuple[float, str]]:
        if not attempts:
            return {}
        return await self._read(lambda conn: read_progress(conn, attempts))


def _seq(cursor: str) -> int:
    """Cursors of this backend are decimal row numbers: nothing else (no sign, no spaces)."""
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        raise BadCursor(cursor)
    return int(cursor)


def _workers(conn: sqlite3.Connection) -> list[WorkerInfo]:
    return [
        WorkerInfo(
            id=r["id"],
            hostname=r["hostname"],
            queues=tuple(json.loads(r["queues"])),
            started_at=r["started_at"],
            last_seen=r["last_seen"],
            running=r["running"],
            slots=r["slots"],
            tasks=tuple(json.loads(r["tasks"] or "[]")),
        )
        for r in conn.execute(
            "SELECT w.*, t.tasks FROM workers w LEFT JOIN worker_tasks t ON t.worker_id = w.id"
            " ORDER BY w.started_at"
        )
    ]
