"""The Redis store: Managers and workers on many hosts share one Redis.

Every change that touches more than one key is one Lua script (``store/redis/lua/*.lua``), loaded
once per connection and run by its SHA, so a claim, a finish or a cancel is atomic however many
processes race. Decisions that are not storage (retry or fail, backoff, lost-lease requeueing)
are taken in Python by :mod:`jobbers.policy` from what the task held, and the script applies
them only if the attempt is still the one the decision was taken for (fencing), so a stale
decision never lands. The change feed is a Redis stream with bounded length; claimers and
workers wake on pub/sub instead of polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions as rexc
from redis.commands.core import AsyncScript

from jobbers import effects
from jobbers.cancelling import cancel_until_done
from jobbers.compact_json import dumps
from jobbers.effects import Effect, Field
from jobbers.models import (
    JSON,
    Attempt,
    ErrorInfo,
    Event,
    MaintenanceReport,
    NewTask,
    Page,
    QueueConfig,
    QueueStats,
    RetryPolicy,
    Run,
    RunPage,
    Status,
    TaskDefinition,
    TaskFilter,
    TaskRecord,
    WorkerInfo,
)
from jobbers.policy import Decision, FailureKind, decide, fingerprint, policy_json
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
    new_record,
)
from jobbers.store.redis import tables
from jobbers.store.redis.connect import clients
from jobbers.store.redis.counts import fill_minutes, read_counts
from jobbers.store.redis.keys import PREVIOUS_VERSION, SCHEMA_VERSION, Keys
from jobbers.store.redis.schedules import RedisSchedules
from jobbers.store.redis.url import DEFAULT_EVENTS_MAXLEN
from jobbers.store.redis.url import parse as parse_url
from jobbers.store.redis.waiting import waiting_names
from jobbers.store.tally import unrunnable

SCRIPTS = (
    "submit",
    "claim",
    "renew",
    "finish",
    "reap",
    "cancel",
    "resubmit",
    "delete",
    "promote",
    "notes",
    "minutes",
    "totals",
    "create_run",
    "cancel_run",
)
#: A worker not seen for this long (killed without unregistering) is dropped from the list.
STALE_WORKER = 600.0
#: Reads and writes are cut into pipelines of this many commands.
CHUNK = 1000
#: Tasks deleted per prune script: each script blocks Redis, so it stays a few milliseconds.
PRUNE_BATCH = 100
#: Stream ids (``ms-seq``); plain numbers are accepted too (cursors of a numeric feed).
CURSOR = re.compile(r"^[0-9]{1,19}(-[0-9]{1,19})?$")
SEQ_CURSOR = re.compile(r"^[0-9]{1,18}$")
#: Error replies that mean "Redis cannot take writes now", not "this call is wrong".
REFUSALS = frozenset({"OOM", "MISCONF", "READONLY", "MASTERDOWN", "NOREPLICAS", "BUSY", "LOADING"})
#: Scripts that must not run twice for one call (a second claim takes more tasks, a second
#: finish or cancel answers "not yours" for what the first did): never sent again by the client.
ONCE = frozenset(
    {"claim", "finish", "cancel", "resubmit", "notes", "delete", "create_run", "cancel_run"}
)
#: Claims whose answer was lost that a worker's next claim may take back (only the last one
#: that ran can hold tasks; a few cover answers lost in a row).
LOST_CLAIMS = 8
#: Redis 6.2 brought XTRIM MINID and exclusive XRANGE bounds.
MIN_REDIS = (6, 2)


def _t(value: float) -> str:
    return repr(float(value))


def _text(value: str) -> str:
    """Text that encodes to UTF-8 (a lone surrogate in an error message becomes '?')."""
    return value.encode("utf-8", "replace").decode("utf-8")


@cache
def _script_text(name: str) -> str:
    """The generated tables, the shared functions, then the script: built once per process."""
    folder = resources.files("jobbers.store.redis") / "lua"
    common = (folder / "common.lua").read_text()
    return tables.prelude() + common + (folder / f"{name}.lua").read_text()


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _opt(h: Mapping[str, str], key: str) -> float | None:
    value = h.get(key)
    return float(value) if value not in (None, "") else None


@lru_cache(maxsize=256)
def _policy(text: str) -> RetryPolicy:
    """Policies repeat across tasks and are immutable: parse each distinct text once."""
    return RetryPolicy.from_json(json.loads(text))


def _record(h: Mapping[str, str], att: Mapping[str, str]) -> TaskRecord:
    attempts = []
    for number in sorted(att, key=int):
        a = json.loads(att[number])
        attempts.append(
            Attempt(
                number=int(a["n"]),
                worker=a["w"],
                started_at=float(a["s"]),
                finished_at=float(a["f"]) if "f" in a else None,
                outcome=a["o"],
                error=ErrorInfo.from_json(json.loads(a["e"])) if a.get("e") else None,
            )
        )
    return TaskRecord(
        id=h["id"],
        name=h["name"],
        queue=h["queue"],
        kwargs=json.loads(h["kwargs"]),
        status=Status(h["status"]),
        priority=int(h["priority"]),
        policy=_policy(h["policy"]),
        submitted_at=float(h["submitted_at"]),
        updated_at=float(h["updated_at"]),
        retries=int(h.get("retries", 0)),
        lost=int(h.get("lost", 0)),
        due_at=_opt(h, "due_at"),
        started_at=_opt(h, "started_at"),
        finished_at=_opt(h, "finished_at"),
        worker=h.get("worker") or None,
        lease_expires_at=_opt(h, "lease"),
        heartbeat_at=_opt(h, "hb_at"),
        result=json.loads(h["result"]) if "result" in h else None,
        error=ErrorInfo.from_json(json.loads(h["error"])) if h.get("error") else None,
        attempts=tuple(attempts),
        trace=h.get("trace") or None,
        run=h.get("run"),
        inputs=h.get("inputs"),
    )


def _loaded(text: str) -> TaskRecord:
    """A record as a script returns it: JSON of the task's and the attempts' flat HGETALLs
    (an empty one encodes as ``{}``)."""
    task, attempts = json.loads(text)
    return _record(_pairs(task), _pairs(attempts) if isinstance(attempts, list) else {})


def _run(h: Mapping[str, str]) -> Run:
    return Run(
        h["id"], h["name"], float(h["created_at"]), json.loads(h["graph"]), _opt(h, "cancelled_at")
    )


def _queue_config(name: str, h: Mapping[str, str]) -> QueueConfig:
    return QueueConfig(
        name=name,
        concurrency=int(h["concurrency"]) if h.get("concurrency") else None,
        rate_limit=int(h["rate_limit"]) if h.get("rate_limit") else None,
        rate_period=float(h.get("rate_period") or 1.0),
        paused=h.get("paused") == "1",
    )


def _clock(now: float | None) -> float:
    return time.time() if now is None else now


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


class RedisStore:
    """See :class:`jobbers.store.base.Store` for what each method promises."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        once: aioredis.Redis | None = None,
        prefix: str = "jobbers",
        events_maxlen: int = DEFAULT_EVENTS_MAXLEN,
        where: str = "Redis",
        wait_replicas: int = 0,
        wait_timeout: float = 5.0,
    ) -> None:
        #: Typed loosely: redis-py's annotations cannot say that decode_responses gives str.
        self._client: Any = client
        self.keys = Keys.for_prefix(prefix)
        self._maxlen = str(events_maxlen)
        self._where = where
        #: Replicas a submission must reach before it is answered (``WAIT``), and for how long.
        #: Half the call's timeout: the answer must still come within the whole of it.
        self._wait = (wait_replicas, max(1, int(wait_timeout * 500)))
        self._db = self._client.connection_pool.connection_kwargs.get("db", 0)
        self._scripts: dict[str, AsyncScript] = {
            name: (once if once is not None and name in ONCE else client).register_script(
                _script_text(name)
            )
            for name in SCRIPTS
        }
        self._once: Any = once
        #: Creates and compare-and-sets must not run twice: on the client that is never retried.
        self._schedules = RedisSchedules(once if once is not None else client, self.keys)
        self._checked = False
        self._listener: asyncio.Task[None] | None = None
        self._closing = False
        self._subscribed = asyncio.Event()
        #: A call failed to reach Redis: the subscription's connection may be dead too, silently
        #: (a partition leaves it half open), so the next wait subscribes on a new one.
        self._resubscribe = False
        self._old_listeners: set[asyncio.Task[None]] = set()
        self._changes = 0
        self._seen_changes = 0
        self._changed = asyncio.Event()
        self._cancelled: set[str] = set()
        #: Per worker, tokens of claims whose answer was lost (they may have started tasks).
        self._lost_claims: dict[str, list[str]] = {}
        self._cancel_event = asyncio.Event()

    @classmethod
    def from_url(cls, url: str) -> RedisStore:
        """``redis://[[user]:password@]host:port/db``, ``rediss://`` (TLS) or
        ``redis+sentinel://h1:26379,h2:26379/service/db``; the query may add ``prefix`` (default
        ``jobbers``), ``events_maxlen``, ``timeout`` (seconds any one call may take, connecting
        included) and ``wait_replicas``. Anything else is refused (:mod:`.url`)."""
        found = parse_url(url)
        client, once = clients(found)
        return cls(
            client,
            once=once,
            prefix=found.prefix,
            events_maxlen=found.events_maxlen,
            where=found.where,
            wait_replicas=found.wait_replicas,
            wait_timeout=found.timeout,
        )

    # -- plumbing -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Any failure to reach Redis becomes StoreUnavailable with one line."""
        try:
            yield
        except rexc.AuthenticationError as exc:
            raise StoreUnavailable(f"{self._where} refuses the login: {_line(exc)}") from exc
        except (rexc.ConnectionError, rexc.TimeoutError, OSError) as exc:
            self._resubscribe = True
            raise StoreUnreachable(f"{self._where} is unavailable: {_line(exc)}") from exc
        except rexc.ResponseError as exc:
            # Redis refusing writes (out of memory, a replica, a failed save) is an outage too.
            refused = isinstance(exc, rexc.ReadOnlyError | rexc.OutOfMemoryError)
            if refused or str(exc).split(" ", 1)[0] in REFUSALS:
                raise StoreUnavailable(f"{self._where} refuses writes: {_line(exc)}") from exc
            if "DB index is out of range" in str(exc):
                raise StoreUnavailable(
                    f"{self._where} has no database {self._db} (its `databases` setting is"
                    " lower): use a smaller number in the URL's path"
                ) from exc
            raise

    async def _run(self, name: str, now: float, *args: Any) -> Any:
        if not self._checked:
            await self.check()
        with self._reachable():
            return await self._scripts[name](
                keys=[self.keys.meta], args=[self.keys.base, self._maxlen, _t(now), *args]
            )

    async def _run_replicated(self, name: str, now: float, *args: Any) -> Any:
        """:meth:`_run`, answered only once ``WAIT`` saw the change reach the replicas the URL
        asks for: an answer then survives a failover to one of them."""
        replicas, ms = self._wait
        if not replicas:
            return await self._run(name, now, *args)
        if not self._checked:
            await self.check()
        with self._reachable():
            pipe = self._client.pipeline(transaction=False)
            await self._scripts[name](
                keys=[self.keys.meta],
                args=[self.keys.base, self._maxlen, _t(now), *args],
                client=pipe,
            )
            pipe.execute_command("WAIT", replicas, ms)
            found, reached = await pipe.execute()
        if reached < replicas:
            raise StoreUnavailable(
                f"{self._where}: the change reached {reached} of {replicas} replica(s) within"
                f" {ms} ms, so a failover could lose it; send it again (the same id is idempotent)"
            )
        return found

    async def check(self) -> None:
        with self._reachable():
            await self._client.ping()
            info = await self._client.info("server")
            version = tuple(int(p) for p in str(info.get("redis_version", "0.0")).split(".")[:2])
            if version < MIN_REDIS:
                raise StoreUnavailable(
                    f"{self._where} runs Redis {info.get('redis_version')}; Jobbers needs 6.2+"
                )
            await self._client.hsetnx(self.keys.meta, "schema", SCHEMA_VERSION)
            found = await self._client.hget(self.keys.meta, "schema")
            if found == PREVIOUS_VERSION:
                await fill_minutes(self._client, self._scripts["minutes"], self.keys)
                await self._client.hset(self.keys.meta, "schema", SCHEMA_VERSION)
                found = SCHEMA_VERSION
            if found == SCHEMA_VERSION:
                await self._scripts["totals"](
                    keys=[self.keys.meta], args=[self.keys.base, self._maxlen, "0"]
                )
        if found != SCHEMA_VERSION:
            raise StoreIncompatible(
                f"{self._where}, prefix {self.keys.base}: store schema {found!r},"
                f" this Jobbers needs {SCHEMA_VERSION!r}"
            )
        self._checked = True

    async def close(self) -> None:
        """Bounded: a process shutting down never waits long on a Redis that went away."""
        self._closing = True
        listeners = [*self._old_listeners, *([self._listener] if self._listener else [])]
        if listeners:
            await cancel_until_done(listeners, within=2.0)
            self._listener = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._client.aclose(), 2.0)
        if self._once is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._once.aclose(), 2.0)

    # -- wake-ups -------------------------------------------------------------------------

    async def _listen(self) -> None:
        """Follow the change and cancel channels; resubscribe after Redis comes back."""
        while not self._closing:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.keys.changed, self.keys.cancel)
                self._subscribed.set()
                # Messages may have been missed while not subscribed: waiters look again, and a
                # worker renews at once, which tells it of any cancellation published meanwhile.
                self._cancelled.add(ANY_TASK)
                self._cancel_event.set()
                self._bump()
                async for message in pubsub.listen():
                    if self._closing:
                        return
                    if message.get("type") != "message":
                        continue
                    if message["channel"] == self.keys.cancel:
                        self._cancelled.update(json.loads(message["data"]))
                        self._cancel_event.set()
                    self._bump()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._subscribed.clear()
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _bump(self) -> None:
        self._changes += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def _ensure_listening(self, timeout: float) -> None:
        if self._resubscribe and self._listener is not None:
            self._resubscribe = False
            self._subscribed.clear()
            self._listener.cancel()
            self._old_listeners.add(self._listener)
            self._listener.add_done_callback(self._old_listeners.discard)
            self._listener = None
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="jobbers-redis-listen")
        if not self._subscribed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), timeout)

    async def wait_for_change(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        await self._ensure_listening(timeout)
        if self._changes == self._seen_changes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))
        self._seen_changes = self._changes

    async def wait_for_cancel(self, timeout: float) -> list[str]:
        """Running tasks cancelled since the last call, as soon as one is; [] after timeout."""
        await self._ensure_listening(timeout)
        if not self._cancelled:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cancel_event.wait(), timeout)
        self._cancel_event.clear()
        found, self._cancelled = sorted(self._cancelled), set()
        return found

    # -- submit and read ------------------------------------------------------------------

    async def submit(self, tasks: Sequence[NewTask], now: float | None = None) -> list[Submitted]:
        at = _clock(now)
        prints: dict[str, str] = {}
        clashes: list[str] = []
        payload: list[dict[str, Any]] = []
        for task in tasks:
            fp = fingerprint(task)
            if prints.setdefault(task.id, fp) != fp:
                clashes.append(task.id)
            payload.append(_inserted(task, at, fp))
        if clashes:
            raise DuplicateTaskConflict(clashes)
        if not payload:
            return []
        ok, body = await self._run_replicated("submit", at, dumps(payload))
        if not ok:
            raise DuplicateTaskConflict(list(body))
        return [
            Submitted(new_record(task, sent["kwargs"], at), True)
            if created
            else Submitted(_loaded(stored), False)
            for task, sent, (created, stored) in zip(tasks, payload, body, strict=True)
        ]

    async def get(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        ids = list(dict.fromkeys(task_ids))
        out: dict[str, TaskRecord] = {}
        with self._reachable():
            for chunk in _chunks(ids):
                pipe = self._client.pipeline(transaction=False)
                for task_id in chunk:
                    pipe.hgetall(self.keys.task(task_id))
                    pipe.hgetall(self.keys.attempts(task_id))
                found = await pipe.execute()
                for i, task_id in enumerate(chunk):
                    if found[2 * i]:
                        out[task_id] = _record(found[2 * i], found[2 * i + 1])
        return out

    async def statuses(self, task_ids: Sequence[str]) -> dict[str, Status]:
        ids = list(dict.fromkeys(task_ids))
        out: dict[str, Status] = {}
        with self._reachable():
            for chunk in _chunks(ids):
                pipe = self._client.pipeline(transaction=False)
                for task_id in chunk:
                    pipe.hget(self.keys.task(task_id), "status")
                for task_id, status in zip(chunk, await pipe.execute(), strict=True):
                    if status is not None:
                        out[task_id] = Status(status)
        return out

    async def query(self, filters: TaskFilter, limit: int, cursor: str | None = None) -> Page:
        """Walks one index newest first (status, else queue, else name, else every task) and
        filters by the other fields."""
        if cursor is not None and not SEQ_CURSOR.match(cursor):
            raise BadCursor(cursor)
        if filters.status:
            index = self.keys.status(filters.status)
        elif filters.queue is not None:
            index = self.keys.by_queue(filters.queue)
        elif filters.name is not None:
            index = self.keys.by_name(filters.name)
        else:
            index = self.keys.all
        top = f"({cursor}" if cursor is not None else "+inf"
        picked: list[tuple[str, int]] = []
        with self._reachable():
            while len(picked) <= limit:
                batch = await self._client.zrevrangebyscore(
                    index, top, "-inf", start=0, num=max(limit + 1, 100), withscores=True
                )
                if not batch:
                    break
                pipe = self._client.pipeline(transaction=False)
                for task_id, _ in batch:
                    pipe.hmget(self.keys.task(task_id), "queue", "name")
                for (task_id, seq), (queue, name) in zip(batch, await pipe.execute(), strict=True):
                    if queue is None:
                        continue
                    if filters.queue is not None and queue != filters.queue:
                        continue
                    if filters.name is not None and name != filters.name:
                        continue
                    picked.append((task_id, int(seq)))
                top = f"({int(batch[-1][1])}"
        page, more = picked[:limit], len(picked) > limit
        records = await self.get([task_id for task_id, _ in page])
        return Page(
            [records[t] for t, _ in page if t in records],
            str(page[-1][1]) if more and page else None,
        )

    async def events(self, after: str | None, limit: int) -> list[Event]:
        if after is not None and not CURSOR.match(after):
            raise BadCursor(after)
        start = "-" if after in (None, "0") else f"({after}"
        with self._reachable():
            try:
                entries = await self._client.xrange(self.keys.events, start, "+", count=limit)
            except rexc.ResponseError as exc:
                raise BadCursor(str(after)) from exc
        return [
            Event(
                cursor=entry_id,
                task_id=f["t"],
                status=Status(f["s"]),
                at=float(f["a"]),
                worker=f.get("w"),
                reason=f.get("r"),
            )
            for entry_id, f in entries
        ]

    async def latest_event(self) -> str:
        with self._reachable():
            if not await self._client.exists(self.keys.events):
                return "0"
            info = await self._client.xinfo_stream(self.keys.events)
        last = str(info["last-generated-id"])
        return "0" if last == "0-0" else last

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
        at = _clock(now)
        self._seen_changes = self._changes
        if self._listener is None:
            # Started, not awaited: a Redis that stalls must not hold the claim up. Once
            # subscribed the listener wakes every waiter, so nothing published meanwhile is missed.
            await self._ensure_listening(0.0)
        token = secrets.token_hex(8)
        unsure = self._lost_claims.get(worker_id, [])
        try:
            found = await self._run(
                "claim",
                at,
                worker_id,
                _t(at + lease),
                limit,
                token,
                ",".join(unsure),
                dumps(sorted(names)) if names is not None else "",
                *dict.fromkeys(queues),
            )
        except StoreUnavailable:
            # It may have run: the next claim takes back what it started (nobody runs it).
            self._lost_claims[worker_id] = [*unsure, token][-LOST_CLAIMS:]
            raise
        self._lost_claims.pop(worker_id, None)
        return [_loaded(pair) for pair in found]

    async def renew(
        self,
        worker_id: str,
        leases: Mapping[str, int],
        lease: float,
        heartbeats: Mapping[str, float] | None = None,
        now: float | None = None,
    ) -> Renewal:
        at = _clock(now)
        beats = heartbeats or {}
        payload = [
            {"id": task_id, "n": number, "beat": _t(beats[task_id]) if task_id in beats else ""}
            for task_id, number in leases.items()
        ]
        lost, known = await self._run(
            "renew", at, worker_id, _t(at + lease), dumps(payload), len(leases)
        )
        return Renewal(lost=list(lost), registered=known == 1)

    async def _decisions(
        self, items: Sequence[tuple[str, FailureKind, ErrorInfo]], at: float
    ) -> dict[str, Decision]:
        """The pure policy's decision for each failed attempt, from the task's stored counters."""
        if not items:
            return {}
        with self._reachable():
            pipe = self._client.pipeline(transaction=False)
            for task_id, _, _ in items:
                pipe.hmget(self.keys.task(task_id), "policy", "retries", "lost")
            rows = await pipe.execute()
        return {
            task_id: decide(_policy(policy), kind, error, int(retries), int(lost), at)
            for (task_id, kind, error), (policy, retries, lost) in zip(items, rows, strict=True)
            if policy is not None
        }

    async def finish(
        self, worker_id: str, reports: Sequence[Report], now: float | None = None
    ) -> list[TaskRecord | None]:
        at = _clock(now)
        failures: list[tuple[str, FailureKind, ErrorInfo]] = []
        for report in reports:
            if report.outcome.kind in ("failed", "timeout"):
                kind: FailureKind = "timeout" if report.outcome.kind == "timeout" else "failed"
                failures.append((report.task_id, kind, effects.failure_error(report.outcome.error)))
        decisions = await self._decisions(failures, at)
        payload = [_reported(r, decisions.get(r.task_id)) for r in reports]
        if not payload:
            return []
        found = await self._run("finish", at, worker_id, dumps(payload))
        return [_loaded(item[1]) if item[0] else None for item in found]

    # -- workflow runs ----------------------------------------------------------------------

    async def create_run(
        self, run: Run, tasks: Sequence[NewTask], now: float | None = None
    ) -> None:
        at = _clock(now)
        head = {
            "id": run.id,
            "name": run.name,
            "created_at": _t(run.created_at),
            "graph": dumps(run.graph),
        }
        body = dumps([_inserted(t, at) for t in tasks])
        found = await self._run_replicated("create_run", at, dumps(head), body)
        if not found[0]:
            raise DuplicateTaskConflict(list(found[1]))

    async def runs(self, limit: int, cursor: str | None = None, name: str | None = None) -> RunPage:
        if cursor is not None and not SEQ_CURSOR.match(cursor):
            raise BadCursor(cursor)
        key = f"{self.keys.base}:runs" if name is None else f"{self.keys.base}:runs:name:{name}"
        top = f"({cursor}" if cursor is not None else "+inf"
        with self._reachable():
            ids = await self._client.zrevrangebyscore(
                key, top, "-inf", start=0, num=limit + 1, withscores=True
            )
            shown = ids[:limit]
            pipe = self._client.pipeline(transaction=False)
            for run_id, _ in shown:
                pipe.hgetall(f"{self.keys.base}:run:{run_id}")
            found = await pipe.execute()
        runs = [_run(h) for h in found if h]
        more = len(ids) > limit and shown
        return RunPage(runs, str(int(shown[-1][1])) if more else None)

    async def run(self, run_id: str) -> tuple[Run, list[TaskRecord]] | None:
        with self._reachable():
            pipe = self._client.pipeline(transaction=False)
            pipe.hgetall(f"{self.keys.base}:run:{run_id}")
            pipe.zrange(f"{self.keys.base}:runtasks:{run_id}", 0, -1)
            head, ids = await pipe.execute()
        if not head:
            return None
        records = await self.get(ids)
        return _run(head), [records[i] for i in ids if i in records]

    async def cancel_run(
        self, run_id: str, reason: str, now: float | None = None
    ) -> CancelResult | None:
        found = await self._run("cancel_run", _clock(now), run_id, _text(reason))
        if not found[0]:
            return None
        return CancelResult(cancelled=list(found[1]))

    async def parent_results(self, task_id: str) -> list[tuple[str | None, JSON]]:
        with self._reachable():
            edges = await self._client.hgetall(f"{self.keys.base}:up:{task_id}")
            ordered = sorted(edges.items(), key=lambda kv: json.loads(kv[1])[0])
            pipe = self._client.pipeline(transaction=False)
            for parent, _ in ordered:
                pipe.hmget(self.keys.task(parent), "status", "result")
            found = await pipe.execute()
        out: list[tuple[str | None, JSON]] = []
        for (_, edge), (status, result) in zip(ordered, found, strict=True):
            if status == Status.COMPLETED:
                out.append((json.loads(edge)[1], json.loads(result) if result else None))
        return out

    # -- operators ------------------------------------------------------------------------

    async def cancel(
        self,
        task_ids: Sequence[str],
        reason: str = "cancelled by request",
        now: float | None = None,
    ) -> CancelResult:
        if not task_ids:
            return CancelResult()
        cancelled, refused, unknown = await self._run(
            "cancel", _clock(now), dumps(list(task_ids)), _text(reason)
        )
        return CancelResult(list(cancelled), list(refused), list(unknown))

    async def resubmit(self, task_ids: Sequence[str], now: float | None = None) -> list[str]:
        if not task_ids:
            return []
        return list(await self._run("resubmit", _clock(now), dumps(list(dict.fromkeys(task_ids)))))

    async def delete(self, task_ids: Sequence[str], statuses: Sequence[Status]) -> list[str]:
        gone: list[str] = []
        for chunk in _chunks(list(dict.fromkeys(task_ids))):
            gone.extend(await self._delete(chunk, statuses, ""))
        return gone

    async def _delete(self, ids: Sequence[str], statuses: Sequence[Status], before: str) -> Any:
        return await self._run(
            "delete", time.time(), dumps(list(ids)), dumps([str(s) for s in statuses]), before
        )

    async def set_queue(self, config: QueueConfig) -> QueueConfig:
        if not self._checked:
            await self.check()
        with self._reachable():
            pipe = self._client.pipeline(transaction=True)
            pipe.hset(
                self.keys.queue(config.name, "conf"),
                mapping={
                    "concurrency": "" if config.concurrency is None else str(config.concurrency),
                    "rate_limit": "" if config.rate_limit is None else str(config.rate_limit),
                    "rate_period": _t(config.rate_period),
                    "paused": "1" if config.paused else "0",
                },
            )
            pipe.sadd(self.keys.queues, config.name)
            pipe.publish(self.keys.changed, "queue")
            pipe.hgetall(self.keys.queue(config.name, "conf"))
            *_, conf = await pipe.execute()
        return _queue_config(config.name, conf)

    async def queue_stats(self) -> list[QueueStats]:
        with self._reachable():
            names = sorted(await self._client.smembers(self.keys.queues))
            pipe = self._client.pipeline(transaction=False)
            for name in names:
                pipe.hgetall(self.keys.queue(name, "conf"))
                pipe.zcard(self.keys.queue(name, "ready"))
                pipe.zcard(self.keys.queue(name, "scheduled"))
                pipe.scard(self.keys.queue(name, "running"))
            found = await pipe.execute()
            waiting = await waiting_names(self._client, self.keys, names)
        workers = await self.workers()
        return [
            QueueStats(
                config=_queue_config(name, found[4 * i]),
                depth=found[4 * i + 1],
                scheduled=found[4 * i + 2],
                running=found[4 * i + 3],
                unrunnable=unrunnable(waiting.get(name, {}), name, workers),
            )
            for i, name in enumerate(names)
        ]

    async def register_worker(
        self, info: WorkerInfo, tasks: Sequence[TaskDefinition], now: float | None = None
    ) -> None:
        if not self._checked:
            await self.check()
        with self._reachable():
            pipe = self._client.pipeline(transaction=True)
            # A Redis that lost its data lost this mark too: a worker registering again puts
            # it back, as a first check() would.
            pipe.hsetnx(self.keys.meta, "schema", SCHEMA_VERSION)
            pipe.hset(
                self.keys.workers,
                info.id,
                dumps(
                    {
                        "id": info.id,
                        "hostname": info.hostname,
                        "queues": list(info.queues),
                        "started_at": info.started_at,
                        "slots": info.slots,
                        "tasks": sorted(info.tasks),
                    }
                ),
            )
            pipe.zadd(self.keys.workers_seen, {info.id: _clock(now)})
            pipe.hset(self.keys.workers_running, info.id, str(info.running))
            if tasks:
                pipe.hset(self.keys.definitions, mapping={t.name: t.to_json() for t in tasks})
            await pipe.execute()

    async def unregister_worker(self, worker_id: str) -> None:
        with self._reachable():
            await self._drop_workers([worker_id])

    async def _drop_workers(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        pipe = self._client.pipeline(transaction=True)
        pipe.hdel(self.keys.workers, *ids)
        pipe.zrem(self.keys.workers_seen, *ids)
        pipe.hdel(self.keys.workers_running, *ids)
        await pipe.execute()

    async def workers(self) -> list[WorkerInfo]:
        with self._reachable():
            pipe = self._client.pipeline(transaction=True)
            pipe.hgetall(self.keys.workers)
            pipe.zrange(self.keys.workers_seen, 0, -1, withscores=True)
            pipe.hgetall(self.keys.workers_running)
            registered, seen, running = await pipe.execute()
        last_seen = dict(seen)
        found = []
        for worker_id, raw in registered.items():
            data = json.loads(raw)
            found.append(
                WorkerInfo(
                    id=worker_id,
                    hostname=data["hostname"],
                    queues=tuple(data["queues"]),
                    started_at=float(data["started_at"]),
                    last_seen=float(last_seen.get(worker_id, data["started_at"])),
                    running=int(running.get(worker_id, 0)),
                    slots=int(data["slots"]),
                    tasks=tuple(data.get("tasks", ())),
                )
            )
        return sorted(found, key=lambda w: (w.started_at, w.id))

    async def task_definitions(self) -> dict[str, TaskDefinition]:
        with self._reachable():
            found = await self._client.hgetall(self.keys.definitions)
        return {name: TaskDefinition.from_json(raw) for name, raw in found.items()}

    # -- schedules ------------------------------------------------------------------------

    async def save_schedule(self, schedule: Schedule, create: bool) -> bool:
        with self._reachable():
            return await self._schedules.save(schedule, create)

    async def schedules(self) -> list[Schedule]:
        with self._reachable():
            return await self._schedules.read()

    async def get_schedule(self, schedule_id: str) -> Schedule | None:
        with self._reachable():
            found = await self._schedules.read([schedule_id])
        return found[0] if found else None

    async def delete_schedule(self, schedule_id: str) -> bool:
        with self._reachable():
            return await self._schedules.delete(schedule_id)

    async def advance_schedule(
        self,
        schedule_id: str,
        expected: float,
        next_fire: float | None,
        fired_at: float | None = None,
        tasks: Sequence[str] = (),
    ) -> bool:
        with self._reachable():
            return await self._schedules.advance(schedule_id, expected, next_fire, fired_at, tasks)

    # -- maintenance ----------------------------------------------------------------------

    async def promote_due(self, now: float | None = None) -> int:
        return int(await self._run("promote", _clock(now)))

    async def reap(self, now: float | None = None) -> MaintenanceReport:
        at = _clock(now)
        with self._reachable():
            expired = await self._client.zrangebyscore(self.keys.leases, "-inf", f"({_t(at)}")
            lapsed = await self._client.zrangebyscore(self.keys.beats, "-inf", f"({_t(at)}")
            stale = await self._client.zrangebyscore(
                self.keys.workers_seen, "-inf", f"({_t(at - STALE_WORKER)}"
            )
            await self._drop_workers(stale)
            pipe = self._client.pipeline(transaction=False)
            candidates = [*expired, *(t for t in lapsed if t not in set(expired))]
            for task_id in candidates:
                pipe.hmget(self.keys.task(task_id), "attempt", "worker", "hb_interval")
            rows = await pipe.execute()
        items: list[tuple[str, FailureKind, ErrorInfo]] = []
        numbers: dict[str, int] = {}
        for i, (task_id, (attempt, worker, hb)) in enumerate(zip(candidates, rows, strict=True)):
            if attempt is None:
                continue
            numbers[task_id] = int(attempt)
            if i < len(expired):
                items.append((task_id, "lease_lost", effects.lease_lost_error(worker)))
            else:
                items.append((task_id, "stalled", effects.heartbeat_error(float(hb))))
        decisions = await self._decisions(items, at)
        payload = [
            _reaped(task_id, numbers[task_id], kind, error, decisions[task_id])
            for task_id, kind, error in items
            if task_id in decisions
        ]
        if not payload:
            return MaintenanceReport()
        reaped, stalled = await self._run("reap", at, dumps(payload))
        return MaintenanceReport(reaped=int(reaped), stalled=int(stalled))

    async def prune(self, before: float) -> int:
        finished = list(effects.FINAL)
        pruned = 0
        floor = "-inf"
        while True:
            with self._reachable():
                batch = await self._client.zrangebyscore(
                    self.keys.finished, floor, f"({_t(before)}", start=0, num=CHUNK, withscores=True
                )
            if not batch:
                break
            for i in range(0, len(batch), PRUNE_BATCH):
                ids = [t for t, _ in batch[i : i + PRUNE_BATCH]]
                pruned += len(await self._delete(ids, finished, _t(before)))
            if len(batch) < CHUNK:
                break
            floor = _t(batch[-1][1])
        await self._prune_events(before)
        return pruned

    # -- what operators see -----------------------------------------------------------------

    async def counts(self, since: float, bucket: float = 60.0) -> TaskCounts:
        if not self._checked:
            await self.check()
        with self._reachable():
            return await read_counts(self._client, self.keys, since, bucket)

    async def add_notes(
        self, worker_id: str, notes: Sequence[AttemptNotes], now: float | None = None
    ) -> None:
        payload = [
            {
                "id": note.task_id,
                "n": note.attempt,
                "p": ""
                if note.progress is None
                else dumps({"f": note.progress, "m": _text(note.message)}),
                "lines": [
                    dumps({"n": note.attempt, "a": ln.at, "l": ln.level, "m": _text(ln.message)})
                    for ln in note.lines
                ],
            }
            for note in notes
            if note.progress is not None or note.lines
        ]
        if payload:
            await self._run("notes", _clock(now), worker_id, dumps(payload))

    async def notes(self, task_id: str) -> list[AttemptNotes]:
        with self._reachable():
            pipe = self._client.pipeline(transaction=True)
            pipe.hgetall(self.keys.progress(task_id))
            pipe.lrange(self.keys.log(task_id), 0, -1)
            progress, raw_lines = await pipe.execute()
        lines: dict[int, list[LogLine]] = {}
        for raw in raw_lines:
            item = json.loads(raw)
            lines.setdefault(int(item["n"]), []).append(
                LogLine(float(item["a"]), item["l"], item["m"])
            )
        marks = {int(n): json.loads(raw) for n, raw in progress.items()}
        return [
            AttemptNotes(
                task_id,
                number,
                float(marks[number]["f"]) if number in marks else None,
                marks[number]["m"] if number in marks else "",
                tuple(lines.get(number, [])),
            )
            for number in sorted(marks.keys() | lines.keys())
        ]

    async def progress(self, attempts: Sequence[tuple[str, int]]) -> dict[str, tuple[float, str]]:
        if not attempts:
            return {}
        with self._reachable():
            pipe = self._client.pipeline(transaction=False)
            for task_id, number in attempts:
                pipe.hget(self.keys.progress(task_id), str(number))
            marks = await pipe.execute()
        out: dict[str, tuple[float, str]] = {}
        for (task_id, _), raw in zip(attempts, marks, strict=True):
            if raw is not None:
                mark = json.loads(raw)
                out[task_id] = (float(mark["f"]), mark["m"])
        return out

    async def _prune_events(self, before: float) -> None:
        """Trim the feed up to its first event at or after ``before`` (events are in time order)."""
        with self._reachable():
            while True:
                entries = await self._client.xrange(self.keys.events, "-", "+", count=CHUNK)
                cut = None
                for entry_id, fields in entries:
                    if float(fields["a"]) >= before:
                        break
                    cut = entry_id
                if cut is None:
                    return
                ms, seq = cut.split("-")
                await self._client.xtrim(
                    self.keys.events, minid=f"{ms}-{int(seq) + 1}", approximate=False
                )
                if cut != entries[-1][0] or len(entries) < CHUNK:
                    return


def _line(exc: BaseException) -> str:
    return str(exc).splitlines()[0].rstrip(".") if str(exc) else type(exc).__name__


def _steps(steps: Sequence[Effect], reasons: Sequence[str]) -> dict[str, Any]:
    """Steps as a script applies them: their names, and each one's reason when it is given."""
    return {
        "e": [step.name for step in steps],
        "why": [_text(r) if step.given else "" for step, r in zip(steps, reasons, strict=True)],
    }


def _inserted(task: NewTask, at: float, fp: str | None = None) -> dict[str, Any]:
    """A new task as ``insert()`` in ``common.lua`` takes it (absent keys: none)."""
    due = task.due_at if task.due_at is not None and task.due_at > at else None
    hb = task.policy.max_heartbeat_interval
    item: dict[str, Any] = {
        "id": task.id,
        "fp": fp or fingerprint(task),
        "q": task.queue,
        "name": task.name,
        "kwargs": dumps(task.kwargs),
        "prio": task.priority,
        "policy": policy_json(task.policy),
        "hb": _t(hb) if hb is not None else "",
        "due": _t(due) if due is not None else "",
    }
    if task.trace:
        item["tr"] = task.trace
    if task.after:
        item["after"] = [{"p": e.parent, "k": e.key, "o": e.on} for e in task.after]
    if task.run is not None:
        item["run"] = task.run
    if task.inputs is not None:
        item["inputs"] = task.inputs
    return item


def _reported(report: Report, decision: Decision | None) -> dict[str, Any]:
    """A worker's report as ``finish.lua`` takes it; a failure takes the decision's steps."""
    outcome = report.outcome
    item: dict[str, Any] = {"id": report.task_id, "n": report.attempt, "kind": outcome.kind}
    step = effects.REPORTED.get(outcome.kind)
    if step is not None:
        item.update(_steps([step], [""]))
        if Field.RESULT in step.sets:
            item["result"] = dumps(outcome.result)
        item["error"] = dumps(outcome.error.to_json()) if outcome.error else ""
        if outcome.collector is not None and step is effects.COMPLETE:
            at = time.time()
            item["spawn"] = [_inserted(t, at) for t in outcome.spawn]
            item["collector"] = _inserted(outcome.collector, at)
        return item
    item["error"] = dumps(effects.failure_error(outcome.error).to_json())
    if decision is None:  # the task is gone: the script's fence refuses the report
        item.update(_steps([], []))
        return item
    item.update(_steps(decision.steps, [decision.reason] * len(decision.steps)))
    item["due_at"] = _t(decision.due_at) if decision.due_at is not None else ""
    return item


def _reaped(
    task_id: str, attempt: int, kind: FailureKind, error: ErrorInfo, decision: Decision
) -> dict[str, Any]:
    """An attempt maintenance found dead or stuck, as ``reap.lua`` takes it."""
    steps = [effects.REAPED[kind], *decision.steps]
    return {
        "id": task_id,
        "n": attempt,
        "kind": kind,
        **_steps(steps, [error.message] + [decision.reason] * len(decision.steps)),
        "error": dumps(error.to_json()),
        "due_at": _t(decision.due_at) if decision.due_at is not None else "",
    }
