"""The PostgreSQL store: Managers and workers on many hosts share one PostgreSQL database.

Built on asyncpg: one dependency with no C library to install, PostgreSQL's binary protocol,
prepared statements cached per connection, fast ``executemany`` and ``unnest`` array binds for
batches, and LISTEN/NOTIFY built in. Every contract call is one transaction; rows a step changes
are locked (``FOR UPDATE``; a claim skips locked rows, so claimers never wait on each other), and
transitions are the ones :mod:`jobbers.effects` describes, applied by
:mod:`jobbers.store.postgres.steps`. Claimers and workers wake on NOTIFY (new work,
cancellations) through one listening connection per store, and poll when it is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import asyncpg

from jobbers import effects
from jobbers.cancelling import cancel_until_done
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
from jobbers.policy import fingerprint, start_retention
from jobbers.schedule import Schedule
from jobbers.store.base import (
    ANY_TASK,
    AttemptNotes,
    BadCursor,
    CancelResult,
    DuplicateTaskConflict,
    LogLine,
    Renewal,
    Report,
    StoreIncompatible,
    StoreUnavailable,
    StoreUnreachable,
    Submitted,
    TaskCounts,
)
from jobbers.store.postgres import counts as pg_counts
from jobbers.store.postgres import runs as pg_runs
from jobbers.store.postgres import schedules as pg_schedules
from jobbers.store.postgres.schema import FINAL, MIGRATIONS, SCHEMA_VERSION, lock_key
from jobbers.store.postgres.steps import (
    STALE_WORKER,
    STATUS,
    Conn,
    Step,
    Tx,
    apply_batch,
    clock,
    drop_flow,
    fan_out,
    insert_new,
    load,
    outcome_plan,
    parent_results,
    promote,
    queue_config_of,
    room_for,
    run_plans,
    stall_plan,
    start,
)
from jobbers.store.postgres.url import parse as parse_url
from jobbers.store.tally import unrunnable

T = TypeVar("T")

#: How every connection of the store names itself in ``pg_stat_activity``, the listening one
#: too: a database shared with Airflow can then count Jobbers' connections apart from its own.
APPLICATION_NAME = "jobbers"
#: Connections each store instance (each process) may hold, besides its listening one.
POOL_SIZE = 4
#: Seconds to open a connection before the server counts as unreachable.
CONNECT_TIMEOUT = 10.0
#: While the listening connection is down, waits return after this long: the caller polls.
POLL_FALLBACK = 0.5
#: A transaction that lost a deadlock or a serialisation check runs again, up to this often.
RETRIES = 8
#: Tasks (and events) deleted per prune transaction.
PRUNE_BATCH = 500
#: Cursors are decimal sequence numbers.
_MAX_CURSOR_DIGITS = 18


def _line(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:300]


class PostgresStore:
    """See :class:`jobbers.store.base.Store` for what each method promises."""

    def __init__(self, url: str) -> None:
        parsed = parse_url(url)
        self._dsn = parsed.dsn
        self.schema = parsed.schema
        self._where = parsed.where
        self._channel = f"jobbers_{self.schema}"
        self._feed_lock = lock_key(self.schema, "feed")
        self._fold_lock = lock_key(self.schema, "fold")
        self._pool: asyncpg.Pool[Any] | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._opening: asyncio.Lock | None = None
        self._opening_loop: asyncio.AbstractEventLoop | None = None
        self._checked = False
        self._closing = False
        self._listener: Conn | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._changes = 0
        self._seen_changes = 0
        self._changed = asyncio.Event()
        self._cancelled: set[str] = set()
        self._cancel_event = asyncio.Event()

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        return cls(url)

    # -- plumbing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Any failure to reach or use the database becomes StoreUnavailable with one line."""
        try:
            yield
        except (
            asyncpg.InvalidPasswordError,
            asyncpg.InvalidAuthorizationSpecificationError,
        ) as exc:
            raise StoreUnavailable(f"{self._where} refuses the login: {_line(exc)}") from exc
        except asyncpg.InvalidCatalogNameError as exc:
            raise StoreUnavailable(f"{self._where}: {_line(exc)}") from exc
        except asyncpg.InsufficientPrivilegeError as exc:
            raise StoreUnavailable(
                f"{self._where}, schema {self.schema}: missing permission: {_line(exc)}"
            ) from exc
        except asyncpg.ReadOnlySQLTransactionError as exc:
            raise StoreUnavailable(f"{self._where} refuses writes: {_line(exc)}") from exc
        except (
            OSError,
            TimeoutError,
            asyncpg.PostgresConnectionError,
            asyncpg.CannotConnectNowError,
            asyncpg.AdminShutdownError,
            asyncpg.ConnectionDoesNotExistError,
            asyncpg.InternalClientError,
        ) as exc:
            raise StoreUnreachable(f"{self._where} is unavailable: {_line(exc)}") from exc
        except asyncpg.InterfaceError as exc:
            if "closed" in str(exc):
                raise StoreUnreachable(f"{self._where} is unavailable: {_line(exc)}") from exc
            raise

    async def _get_pool(self) -> asyncpg.Pool[Any]:
        """The pool, made (and the schema checked) once however many calls start together:
        two first calls at once would otherwise each make a pool and leak one."""
        if self._pool is not None and self._checked and self._pool_loop is _loop():
            return self._pool
        loop = asyncio.get_running_loop()
        if self._opening is None or self._opening_loop is not loop:
            self._opening, self._opening_loop = asyncio.Lock(), loop
        async with self._opening:
            return await self._open_pool()

    async def _open_pool(self) -> asyncpg.Pool[Any]:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._pool_loop is not loop:
            self._pool.terminate()  # made on another (finished) loop: unusable here
            self._pool = None
            self._listener = None
            self._listen_task = None
        if self._pool is None:
            with self._reachable():
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,
                    max_size=POOL_SIZE,
                    timeout=CONNECT_TIMEOUT,
                    reset=_keep,
                    server_settings={
                        "search_path": self.schema,
                        "application_name": APPLICATION_NAME,
                    },
                )
            self._pool_loop = loop
        if not self._checked:
            await self._migrate(self._pool)
        return self._pool

    async def _migrate(self, pool: asyncpg.Pool[Any]) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION` under a session advisory lock, so that
        processes starting together apply each step once; refuse a schema this code does not
        know (newer, or tables without a version)."""
        key = lock_key(self.schema, "migrate")
        with self._reachable():
            async with pool.acquire() as conn:
                await conn.execute("SELECT pg_advisory_lock($1)", key)
                try:
                    await self._migrate_locked(conn)
                finally:
                    with contextlib.suppress(Exception):
                        await conn.execute("SELECT pg_advisory_unlock($1)", key)
        self._checked = True

    async def _migrate_locked(self, conn: Conn) -> None:
        exists = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", self.schema)
        if not exists:
            await conn.execute(f'CREATE SCHEMA "{self.schema}"')
        has_meta = await conn.fetchval(
            "SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'meta'", self.schema
        )
        version = 0
        if has_meta:
            found = await conn.fetchval("SELECT value FROM meta WHERE key = 'schema'")
            version = int(found) if found is not None else 0
        elif await conn.fetchval(
            "SELECT 1 FROM pg_tables WHERE schemaname = $1 LIMIT 1", self.schema
        ):
            raise StoreIncompatible(
                f"{self._where}: schema {self.schema} holds tables but is not a Jobbers store"
                " (no meta table): use ?schema= to pick another"
            )
        if version > SCHEMA_VERSION:
            raise StoreIncompatible(
                f"{self._where}, schema {self.schema}: store schema version {version},"
                f" this Jobbers expects {SCHEMA_VERSION}"
            )
        for step in range(version + 1, SCHEMA_VERSION + 1):
            async with conn.transaction():
                if step == 1:
                    await conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
                await conn.execute(MIGRATIONS[step])
                await conn.execute(
                    "INSERT INTO meta VALUES ('schema', $1) ON CONFLICT (key)"
                    " DO UPDATE SET value = excluded.value",
                    str(step),
                )

    async def check(self) -> None:
        with self._reachable():
            pool = await self._get_pool()
            await pool.fetchval("SELECT 1")

    async def _write(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """``fn`` in one transaction, run again if it lost a deadlock (nothing of it stayed)."""
        pool = await self._get_pool()
        for attempt in range(RETRIES):
            try:
                with self._reachable():
                    async with pool.acquire() as conn, conn.transaction():
                        tx = Tx(conn, self._feed_lock, self._channel)
                        result = await fn(tx)
                        await tx.flush()
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                if attempt == RETRIES - 1:
                    raise
                await asyncio.sleep(0.001 * (attempt + 1))
                continue
            if tx.events:
                self._bump()
            return result
        raise AssertionError("unreachable")

    async def _read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        pool = await self._get_pool()
        with self._reachable():
            async with pool.acquire() as conn:
                return await fn(conn)

    async def close(self) -> None:
        """Bounded: a process shutting down never waits long on a server that went away."""
        self._closing = True
        if self._listen_task is not None:
            await cancel_until_done([self._listen_task], within=2.0)
            self._listen_task = None
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.close(), 2.0)
            self._listener = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 2.0)
            except Exception:
                pool.terminate()

    # -- wake-ups -------------------------------------------------------------------------

    def _bump(self) -> None:
        self._changes += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def _heard(self, conn: object, pid: int, channel: str, payload: object) -> None:
        if payload:
            self._cancelled.update(json.loads(str(payload)))
            self._cancel_event.set()
        self._bump()

    async def _listen(self) -> None:
        """Hold the listening connection; open it again after the server comes back."""
        while not self._closing:
            conn: Conn | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn,
                    timeout=CONNECT_TIMEOUT,
                    server_settings={"application_name": APPLICATION_NAME},
                )
                lost = asyncio.Event()
                conn.add_termination_listener(partial(_set, lost))
                await conn.add_listener(self._channel, self._heard)
                self._listener = conn
                # Notifications may have been missed while not listening: waiters look again,
                # and a worker renews at once, which tells it of any cancellation meanwhile.
                self._cancelled.add(ANY_TASK)
                self._cancel_event.set()
                self._bump()
                while not lost.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 5.0)
                    if not lost.is_set() and not conn.is_closed():
                        await conn.execute("SELECT 1")  # notice a dead server
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(POLL_FALLBACK)
            finally:
                self._listener = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.terminate()

    def _listening(self) -> bool:
        loop = asyncio.get_running_loop()
        task = self._listen_task
        if task is None or task.done() or task.get_loop() is not loop:
            self._listen_task = loop.create_task(self._listen(), name="jobbers-pg-listen")
        return self._listener is not None and not self._listener.is_closed()

    async def wait_for_change(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not self._listening():
            timeout = min(timeout, POLL_FALLBACK)
            deadline = loop.time() + timeout
        if self._changes == self._seen_changes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))
        self._seen_changes = self._changes

    async def wait_for_cancel(self, timeout: float) -> list[str]:
        """Running tasks cancelled since the last call, as soon as one is; [] after timeout
        (renewals find cancellations while the listening connection is down)."""
        self._listening()
        if not self._cancelled:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cancel_event.wait(), timeout)
        self._cancel_event.clear()
        found, self._cancelled = sorted(self._cancelled), set()
        return found

    # -- submit and read ------------------------------------------------------------------

    async def submit(self, tasks: Sequence[NewTask], now: float | None = None) -> list[Submitted]:
        at = clock(now)
        prints: dict[str, str] = {}
        clashes: list[str] = []
        first: dict[str, int] = {}
        for index, task in enumerate(tasks):
            fp = fingerprint(task)
            if prints.setdefault(task.id, fp) != fp:
                clashes.append(task.id)
            first.setdefault(task.id, index)
        if clashes:
            raise DuplicateTaskConflict(
                clashes,
                "task id(s) given twice in one batch with different payloads: "
                + ", ".join(clashes[:10]),
            )
        unique = [(tasks[i], prints[tasks[i].id]) for i in first.values()]

        async def txn(tx: Tx) -> list[Submitted]:
            made, existed = await insert_new(tx, unique, at)
            records: dict[str, TaskRecord] = dict(made)
            if existed:
                rows = await tx.conn.fetch(
                    "SELECT id, fingerprint FROM tasks WHERE id = ANY($1::text[])", list(existed)
                )
                conflicts = [r["id"] for r in rows if r["fingerprint"] != prints[r["id"]]]
                if conflicts:
                    raise DuplicateTaskConflict(sorted(conflicts))
                records.update(await load(tx.conn, list(existed)))
            return [
                Submitted(records[t.id], t.id in made and first[t.id] == i)
                for i, t in enumerate(tasks)
            ]

        return await self._write(txn)

    async def get(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        return await self._read(lambda conn: load(conn, task_ids))

    async def statuses(self, task_ids: Sequence[str]) -> dict[str, Status]:
        async def read(conn: Conn) -> dict[str, Status]:
            rows = await conn.fetch(
                "SELECT id, status FROM tasks WHERE id = ANY($1::text[])", list(task_ids)
            )
            return {r["id"]: STATUS[r["status"]] for r in rows}

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
                params.append(str(value))
                clauses.append(f"{column} = ${len(params)}")
        if cursor is not None:
            params.append(_seq(cursor))
            clauses.append(f"seq < ${len(params)}")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        params.append(limit + 1)
        sql = f"SELECT seq, id FROM tasks {where} ORDER BY seq DESC LIMIT ${len(params)}"

        async def read(conn: Conn) -> Page:
            rows = await conn.fetch(sql, *params)
            page, more = rows[:limit], len(rows) > limit
            records = await load(conn, [r["id"] for r in page])
            return Page(
                [records[r["id"]] for r in page], str(page[-1]["seq"]) if more and page else None
            )

        return await self._read(read)

    async def events(self, after: str | None, limit: int) -> list[Event]:
        """Oldest first from the cursor; no commit can land behind a cursor already read (the
        events' writers commit in ``seq`` order: see
        :meth:`jobbers.store.postgres.steps.Tx.flush`)."""
        first = 0 if after is None else _seq(after)

        async def read(conn: Conn) -> list[Event]:
            rows = await conn.fetch(
                "SELECT seq, task_id, status, at, worker, reason FROM events"
                " WHERE seq > $1 ORDER BY seq LIMIT $2",
                first,
                limit,
            )
            return [Event(str(r[0]), r[1], STATUS[r[2]], r[3], r[4], r[5]) for r in rows]

        return await self._read(read)

    async def latest_event(self) -> str:
        async def read(conn: Conn) -> str:
            found = await conn.fetchval(
                "SELECT GREATEST((SELECT MAX(seq) FROM events), (SELECT pruned_to FROM feed))"
            )
            return str(found or 0)

        return await self._read(read)

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
        """One ``FOR UPDATE SKIP LOCKED`` statement takes the batch across the queues, each
        bounded by its room; queues with a cap are counted under their row's lock, so two
        claimers never spend the same room."""
        if limit <= 0 or not queues or (names is not None and not names):
            return []
        at = clock(now)
        wanted = list(dict.fromkeys(queues))
        only = sorted(names) if names is not None else None

        async def txn(tx: Tx) -> list[TaskRecord]:
            await promote(tx, at, wanted)
            rows = {
                r["name"]: r
                for r in await tx.conn.fetch(
                    "SELECT * FROM queues WHERE name = ANY($1::text[])", wanted
                )
            }
            capped = sorted(
                n
                for n, r in rows.items()
                if r["concurrency"] is not None or r["rate_limit"] is not None
            )
            if capped:
                for r in await tx.conn.fetch(
                    "SELECT * FROM queues WHERE name = ANY($1::text[]) ORDER BY name FOR UPDATE",
                    capped,
                ):
                    rows[r["name"]] = r
            rooms: list[tuple[str, int]] = []
            limited: set[str] = set()
            for queue in wanted:
                config = queue_config_of(rows.get(queue), queue)
                room = await room_for(tx, config, limit, at)
                if room > 0:
                    rooms.append((queue, room))
                    if config.rate_limit is not None:
                        limited.add(queue)
            if not rooms:
                return []
            by_name = " AND t.name = ANY($4::text[])" if only is not None else ""
            args: list[Any] = [[q for q, _ in rooms], [r for _, r in rooms], limit]
            if only is not None:
                args.append(only)
            chosen = await tx.conn.fetch(
                "SELECT c.id, c.queue, c.updated_at FROM unnest($1::text[], $2::int[])"
                " AS q(name, room) CROSS JOIN LATERAL (SELECT t.id, t.queue, t.priority,"
                " t.seq, t.updated_at FROM tasks t"
                f" WHERE t.status = 'submitted' AND t.queue = q.name{by_name}"
                " ORDER BY t.priority DESC, t.seq LIMIT q.room FOR UPDATE SKIP LOCKED) AS c"
                " ORDER BY c.priority DESC, c.seq LIMIT $3",
                *args,
            )
            if not chosen:
                return []
            ids = [r["id"] for r in chosen]
            await start(tx, ids, worker_id, lease, at, [r["updated_at"] for r in chosen])
            starts = [(r["queue"], at) for r in chosen if r["queue"] in limited]
            if starts:
                await tx.conn.executemany("INSERT INTO starts (queue, at) VALUES ($1, $2)", starts)
            records = await load(tx.conn, ids)
            return [records[i] for i in ids]

        return await self._write(txn)

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
        ids = list(leases)
        # Rows locked in id order, as finish and cancel lock theirs: no deadlock between them.
        ordered = sorted(ids)

        async def txn(tx: Tx) -> Renewal:
            seen = await tx.conn.execute(
                "UPDATE workers SET last_seen = $1, running = $2 WHERE id = $3",
                at,
                len(leases),
                worker_id,
            )
            registered = seen == "UPDATE 1"
            if not ids:
                return Renewal(lost=[], registered=registered)
            # Rows another transaction holds (this worker's own finish, a cancel) are skipped,
            # not waited for: a renewal never queues behind a lock, and the next one renews
            # them if they are still this worker's.
            rows = await tx.conn.fetch(
                "WITH r AS (SELECT * FROM unnest($2::text[], $3::int[], $4::float8[])"
                " AS r(id, attempt, hb)), mine AS (SELECT t.id, r.hb FROM tasks t JOIN r"
                " ON t.id = r.id AND t.attempt = r.attempt WHERE t.status = 'started'"
                " AND t.worker = $5 ORDER BY t.id FOR UPDATE OF t SKIP LOCKED)"
                " UPDATE tasks SET lease_expires_at = $1, heartbeat_at ="
                " GREATEST(COALESCE(tasks.heartbeat_at, 0), COALESCE(mine.hb, 0))"
                " FROM mine WHERE tasks.id = mine.id RETURNING tasks.id",
                at + lease,
                ordered,
                [leases[i] for i in ordered],
                [beats.get(i) for i in ordered],
                worker_id,
            )
            renewed = {r["id"] for r in rows}
            rest = [i for i in ordered if i not in renewed]
            busy = (
                await tx.conn.fetch(
                    "SELECT t.id FROM tasks t JOIN unnest($1::text[], $2::int[]) AS r(id, attempt)"
                    " ON t.id = r.id AND t.attempt = r.attempt WHERE t.status = 'started'"
                    " AND t.worker = $3",
                    rest,
                    [leases[i] for i in rest],
                    worker_id,
                )
                if rest
                else []
            )
            rows = [*rows, *busy]
            owned = {r["id"] for r in rows}
            return Renewal(lost=[t for t in ids if t not in owned], registered=registered)

        return await self._write(txn)

    async def finish(
        self, worker_id: str, reports: Sequence[Report], now: float | None = None
    ) -> list[TaskRecord | None]:
        at = clock(now)

        async def txn(tx: Tx) -> list[TaskRecord | None]:
            rows = {
                r["id"]: r
                for r in await tx.conn.fetch(
                    "SELECT id, status, worker, attempt, policy, retries, lost FROM tasks"
                    " WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
                    sorted({r.task_id for r in reports}),
                )
            }
            done: list[str | None] = []
            plans = []
            for report in reports:
                row = rows.pop(report.task_id, None)
                if (
                    row is None
                    or row["status"] != Status.STARTED
                    or row["worker"] != worker_id
                    or row["attempt"] != report.attempt
                ):
                    done.append(None)
                    continue
                outcome = report.outcome
                if outcome.collector is not None and outcome.kind == "completed":
                    await fan_out(tx, report.task_id, outcome.spawn, outcome.collector, at)
                plans.append(outcome_plan(row, report, worker_id, at))
                done.append(report.task_id)
            await run_plans(tx, plans, at)
            records = await load(tx.conn, [d for d in done if d is not None])
            return [records[d] if d is not None else None for d in done]

        return await self._write(txn)

    # -- operators ------------------------------------------------------------------------

    async def cancel(
        self,
        task_ids: Sequence[str],
        reason: str = "cancelled by request",
        now: float | None = None,
    ) -> CancelResult:
        at = clock(now)
        step = effects.CANCEL
        wanted = list(dict.fromkeys(task_ids))

        async def txn(tx: Tx) -> CancelResult:
            rows = {
                r["id"]: r
                for r in await tx.conn.fetch(
                    "SELECT id, status, worker, attempt FROM tasks WHERE id = ANY($1::text[])"
                    " ORDER BY id FOR UPDATE",
                    wanted,
                )
            }
            result = CancelResult()
            by_status: dict[Status, list[Step]] = {}
            for task_id in wanted:
                row = rows.get(task_id)
                if row is None:
                    result.unknown.append(task_id)
                elif row["status"] not in step.sources:
                    result.not_cancellable.append(task_id)
                else:
                    given = Step(task_id, row["worker"], row["attempt"], reason=reason)
                    by_status.setdefault(STATUS[row["status"]], []).append(given)
                    result.cancelled.append(task_id)
            # Waiting tasks first: a parent cancelled before them would skip them, and their
            # own step would then end them a second time.
            for current, steps in sorted(by_status.items(), key=lambda s: s[0] != Status.WAITING):
                await apply_batch(tx, step, current, at, steps)
            return result

        return await self._write(txn)

    async def resubmit(self, task_ids: Sequence[str], now: float | None = None) -> list[str]:
        at = clock(now)
        wanted = list(dict.fromkeys(task_ids))

        async def txn(tx: Tx) -> list[str]:
            rows = {
                r["id"]: r["status"]
                for r in await tx.conn.fetch(
                    "SELECT id, status FROM tasks WHERE id = ANY($1::text[]) ORDER BY id"
                    " FOR UPDATE",
                    wanted,
                )
            }
            moved = [t for t in wanted if rows.get(t) in effects.RESUBMIT.sources]
            for current in effects.in_order(effects.RESUBMIT.sources):
                steps = [Step(t) for t in moved if rows[t] == current]
                await apply_batch(tx, effects.RESUBMIT, current, at, steps)
            return moved

        return await self._write(txn)

    async def delete(self, task_ids: Sequence[str], statuses: Sequence[Status]) -> list[str]:
        async def txn(tx: Tx) -> list[str]:
            rows = await tx.conn.fetch(
                "DELETE FROM tasks WHERE id = ANY($1::text[]) AND status = ANY($2::text[])"
                " RETURNING id",
                list(task_ids),
                [str(s) for s in statuses],
            )
            gone = [r["id"] for r in rows]
            await _drop_task_rows(tx.conn, gone)
            return gone

        return await self._write(txn)

    async def set_queue(self, config: QueueConfig) -> QueueConfig:
        async def txn(tx: Tx) -> QueueConfig:
            row = await tx.conn.fetchrow(
                "INSERT INTO queues (name, concurrency, rate_limit, rate_period, paused)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET"
                " concurrency = excluded.concurrency, rate_limit = excluded.rate_limit,"
                " rate_period = excluded.rate_period, paused = excluded.paused RETURNING *",
                config.name,
                config.concurrency,
                config.rate_limit,
                config.rate_period,
                config.paused,
            )
            await tx.conn.execute("SELECT pg_notify($1, '')", self._channel)
            return queue_config_of(row, config.name)

        return await self._write(txn)

    async def queue_stats(self) -> list[QueueStats]:
        async def read(conn: Conn) -> list[QueueStats]:
            counts = await pg_counts.queue_counts(conn)
            configs = {r["name"]: r for r in await conn.fetch("SELECT * FROM queues")}
            waiting: dict[str, dict[str, int]] = {}
            for r in await conn.fetch(
                "SELECT queue, name, COUNT(*) AS n FROM tasks"
                " WHERE status IN ('submitted', 'scheduled') GROUP BY queue, name"
            ):
                waiting.setdefault(r["queue"], {})[r["name"]] = int(r["n"])
            workers = await _workers(conn)
            return [
                QueueStats(
                    config=queue_config_of(configs.get(name), name),
                    depth=counts.get(name, {}).get("submitted", 0),
                    scheduled=counts.get(name, {}).get("scheduled", 0),
                    running=counts.get(name, {}).get("started", 0),
                    unrunnable=unrunnable(waiting.get(name, {}), name, workers),
                )
                for name in sorted(set(counts) | set(configs))
            ]

        return await self._read(read)

    async def register_worker(
        self, info: WorkerInfo, tasks: Sequence[TaskDefinition], now: float | None = None
    ) -> None:
        async def txn(tx: Tx) -> None:
            await tx.conn.execute(
                "INSERT INTO workers (id, hostname, queues, tasks, started_at, last_seen,"
                " running, slots) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id)"
                " DO UPDATE SET hostname = excluded.hostname, queues = excluded.queues,"
                " tasks = excluded.tasks, started_at = excluded.started_at,"
                " last_seen = excluded.last_seen, running = excluded.running,"
                " slots = excluded.slots",
                info.id,
                info.hostname,
                dumps(list(info.queues)),
                dumps(sorted(info.tasks)),
                info.started_at,
                clock(now),
                info.running,
                info.slots,
            )
            defs = sorted((t.name, t.to_json()) for t in tasks)
            if defs:
                await tx.conn.executemany(
                    "INSERT INTO definitions (name, definition) VALUES ($1, $2)"
                    " ON CONFLICT (name) DO UPDATE SET definition = excluded.definition",
                    defs,
                )

        await self._write(txn)

    async def unregister_worker(self, worker_id: str) -> None:
        async def txn(tx: Tx) -> None:
            await tx.conn.execute("DELETE FROM workers WHERE id = $1", worker_id)

        await self._write(txn)

    async def workers(self) -> list[WorkerInfo]:
        return await self._read(_workers)

    async def task_definitions(self) -> dict[str, TaskDefinition]:
        async def read(conn: Conn) -> dict[str, TaskDefinition]:
            return {
                r["name"]: TaskDefinition.from_json(r["definition"])
                for r in await conn.fetch("SELECT name, definition FROM definitions")
            }

        return await self._read(read)

    # -- maintenance ----------------------------------------------------------------------

    async def promote_due(self, now: float | None = None) -> int:
        at = clock(now)

        async def txn(tx: Tx) -> int:
            return await promote(tx, at, None)

        return await self._write(txn)

    async def reap(self, now: float | None = None) -> MaintenanceReport:
        at = clock(now)

        async def txn(tx: Tx) -> MaintenanceReport:
            expired = await tx.conn.fetch(
                "SELECT id, worker, attempt, policy, retries, lost FROM tasks"
                " WHERE status = 'started' AND lease_expires_at < $1 ORDER BY id"
                " FOR UPDATE SKIP LOCKED",
                at,
            )
            await run_plans(
                tx,
                [
                    stall_plan(row, "lease_lost", effects.lease_lost_error(row["worker"]), at)
                    for row in expired
                ],
                at,
            )
            lapsed = await tx.conn.fetch(
                "SELECT id, worker, attempt, policy, retries, lost, hb_interval FROM tasks"
                " WHERE status = 'started' AND hb_interval IS NOT NULL"
                " AND GREATEST(COALESCE(heartbeat_at, 0), started_at) + hb_interval < $1"
                " ORDER BY id FOR UPDATE SKIP LOCKED",
                at,
            )
            await run_plans(
                tx,
                [
                    stall_plan(row, "stalled", effects.heartbeat_error(row["hb_interval"]), at)
                    for row in lapsed
                ],
                at,
            )
            configs = await tx.conn.fetch("SELECT * FROM queues")
            keep = start_retention(queue_config_of(r, r["name"]) for r in configs)
            await tx.conn.execute("DELETE FROM starts WHERE at < $1", at - keep)
            await tx.conn.execute("DELETE FROM workers WHERE last_seen < $1", at - STALE_WORKER)
            return MaintenanceReport(reaped=len(expired), stalled=len(lapsed))

        report = await self._write(txn)
        await self._read(lambda conn: pg_counts.fold(conn, self._fold_lock))
        return report

    async def prune(self, before: float) -> int:
        """In batches of :data:`PRUNE_BATCH`, one transaction each, so a large prune holds no
        lock for long; then the events, and the sums the deleted tasks emptied."""

        async def batch(tx: Tx) -> int:
            rows = await tx.conn.fetch(
                "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks"
                f" WHERE status IN {FINAL} AND finished_at < $1 LIMIT $2"
                " FOR UPDATE SKIP LOCKED) RETURNING id",
                before,
                PRUNE_BATCH,
            )
            gone = [r["id"] for r in rows]
            await _drop_task_rows(tx.conn, gone)
            return len(gone)

        async def events(tx: Tx) -> int:
            top = await tx.conn.fetchval(
                "WITH d AS (DELETE FROM events WHERE seq IN (SELECT seq FROM events"
                " WHERE at < $1 ORDER BY seq LIMIT $2) RETURNING seq) SELECT MAX(seq) FROM d",
                before,
                PRUNE_BATCH * 4,
            )
            if top is None:
                return 0
            await tx.conn.execute("UPDATE feed SET pruned_to = GREATEST(pruned_to, $1)", int(top))
            return 1

        pruned = 0
        while (done := await self._write(batch)) > 0:
            pruned += done
        while await self._write(events) > 0:
            pass

        async def tidy(conn: Conn) -> None:
            await pg_counts.fold(conn, self._fold_lock)
            async with conn.transaction():
                if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self._fold_lock):
                    await pg_counts.drop_empty(conn, before)

        await self._read(tidy)
        return pruned

    # -- what operators see -------------------------------------------------------------

    async def counts(self, since: float, bucket: float = 60.0) -> TaskCounts:
        async def read(conn: Conn) -> TaskCounts:
            await pg_counts.fold(conn, self._fold_lock)
            return await pg_counts.counts(conn, since, bucket)

        return await self._read(read)

    # -- workflow runs --------------------------------------------------------------------

    async def create_run(
        self, run: Run, tasks: Sequence[NewTask], now: float | None = None
    ) -> None:
        at = clock(now)
        await self._write(lambda tx: pg_runs.create(tx, run, tasks, at))

    async def runs(self, limit: int, cursor: str | None = None, name: str | None = None) -> RunPage:
        seq = None if cursor is None else _seq(cursor)
        return await self._read(lambda conn: pg_runs.page(conn, limit, seq, name))

    async def run(self, run_id: str) -> tuple[Run, list[TaskRecord]] | None:
        return await self._read(lambda conn: pg_runs.read(conn, run_id))

    async def cancel_run(
        self, run_id: str, reason: str, now: float | None = None
    ) -> CancelResult | None:
        at = clock(now)
        return await self._write(lambda tx: pg_runs.cancel(tx, run_id, reason, at))

    async def parent_results(self, task_id: str) -> list[tuple[str | None, JSON]]:
        return await self._read(lambda conn: parent_results(conn, task_id))

    async def add_notes(
        self, worker_id: str, notes: Sequence[AttemptNotes], now: float | None = None
    ) -> None:
        if not notes:
            return

        async def txn(tx: Tx) -> None:
            owned = {
                (r["id"], r["attempt"])
                for r in await tx.conn.fetch(
                    "SELECT id, attempt FROM tasks WHERE id = ANY($1::text[]) AND worker = $2",
                    list({n.task_id for n in notes}),
                    worker_id,
                )
            }
            for note in notes:
                if (note.task_id, note.attempt) not in owned:
                    continue
                if note.progress is not None:
                    await tx.conn.execute(
                        "INSERT INTO attempt_progress (task_id, number, fraction, message)"
                        " VALUES ($1, $2, $3, $4) ON CONFLICT (task_id, number) DO UPDATE SET"
                        " fraction = excluded.fraction, message = excluded.message",
                        note.task_id,
                        note.attempt,
                        note.progress,
                        note.message,
                    )
                if note.lines:
                    await tx.conn.executemany(
                        "INSERT INTO attempt_logs (task_id, number, at, level, message)"
                        " VALUES ($1, $2, $3, $4, $5)",
                        [
                            (note.task_id, note.attempt, ln.at, ln.level, ln.message)
                            for ln in note.lines
                        ],
                    )

        await self._write(txn)

    async def notes(self, task_id: str) -> list[AttemptNotes]:
        async def read(conn: Conn) -> list[AttemptNotes]:
            progress = {
                r["number"]: (r["fraction"], r["message"])
                for r in await conn.fetch(
                    "SELECT number, fraction, message FROM attempt_progress WHERE task_id = $1",
                    task_id,
                )
            }
            lines: dict[int, list[LogLine]] = {}
            for r in await conn.fetch(
                "SELECT number, at, level, message FROM attempt_logs WHERE task_id = $1"
                " ORDER BY seq",
                task_id,
            ):
                lines.setdefault(r["number"], []).append(LogLine(r["at"], r["level"], r["message"]))
            out = []
            for number in sorted(progress.keys() | lines.keys()):
                fraction, message = progress.get(number, (None, ""))
                out.append(
                    AttemptNotes(task_id, number, fraction, message, tuple(lines.get(number, [])))
                )
            return out

        return await self._read(read)

    async def progress(self, attempts: Sequence[tuple[str, int]]) -> dict[str, tuple[float, str]]:
        if not attempts:
            return {}
        ids, numbers = zip(*dict(attempts).items(), strict=True)

        async def read(conn: Conn) -> dict[str, tuple[float, str]]:
            return {
                r["task_id"]: (r["fraction"], r["message"])
                for r in await conn.fetch(
                    "SELECT p.task_id, p.fraction, p.message FROM attempt_progress p"
                    " JOIN unnest($1::text[], $2::int[]) AS a(id, number)"
                    " ON p.task_id = a.id AND p.number = a.number",
                    list(ids),
                    list(numbers),
                )
            }

        return await self._read(read)

    # -- schedules ------------------------------------------------------------------------

    async def save_schedule(self, schedule: Schedule, create: bool) -> bool:
        return await self._write(lambda tx: pg_schedules.save(tx.conn, schedule, create))

    async def schedules(self) -> list[Schedule]:
        return await self._read(pg_schedules.read_all)

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        return await self._read(lambda conn: pg_schedules.read_one(conn, schedule_id))

    async def delete_schedule(self, schedule_id: str) -> bool:
        return await self._write(lambda tx: pg_schedules.delete(tx.conn, schedule_id))

    async def advance_schedule(
        self,
        schedule_id: str,
        expected: float,
        next_fire: float | None,
        fired_at: float | None = None,
        tasks: Sequence[str] = (),
    ) -> bool:
        return await self._write(
            lambda tx: pg_schedules.advance(
                tx.conn, schedule_id, expected, next_fire, fired_at, tasks
            )
        )


async def _keep(conn: Conn) -> None:
    """Pool connections go back as they are: calls leave no session state behind (no LISTEN,
    no prepared cursor, no session lock), so the reset the pool sends by default would only
    cost a round trip per call."""


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def _set(event: asyncio.Event, _conn: object) -> None:
    event.set()


async def _drop_task_rows(conn: Conn, gone: list[str]) -> None:
    """What goes with deleted tasks: their attempts, notes and workflow rows."""
    if gone:
        for table in ("attempts", "attempt_progress", "attempt_logs"):
            await conn.execute(f"DELETE FROM {table} WHERE task_id = ANY($1::text[])", gone)
        await drop_flow(conn, gone)


def _seq(cursor: str) -> int:
    """Cursors of this backend are decimal sequence numbers: nothing else."""
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= _MAX_CURSOR_DIGITS):
        raise BadCursor(cursor)
    return int(cursor)


async def _workers(conn: Conn) -> list[WorkerInfo]:
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
        for r in await conn.fetch("SELECT * FROM workers ORDER BY started_at")
    ]
