"""Schedules in Redis: three hashes by schedule id (see :meth:`Keys.schedules`), changed by small
scripts so that a create, an update and a firer's compare-and-set are each atomic."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from jobbers.schedule import Schedule
from jobbers.store.redis.keys import Keys

#: KEYS: spec, next. ARGV: id, spec, next, create ("1") or update.
SAVE = """
local exists = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
if (ARGV[4] == '1') == exists then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""

#: KEYS: spec, next, last. ARGV: id, expected next, new next, last JSON or "" (skipped).
ADVANCE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) end
return 1
"""


def _t(value: float | None) -> str:
    """Exact text of a time (``repr`` round-trips), compared as text by :data:`ADVANCE`."""
    return "" if value is None else repr(float(value))


def _float(text: str | None) -> float | None:
    return float(text) if text else None


class RedisSchedules:
    def __init__(self, client: Any, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._save = client.register_script(SAVE)
        self._advance = client.register_script(ADVANCE)

    def _three(self) -> list[str]:
        return [self._keys.schedules(p) for p in ("spec", "next", "last")]

    async def save(self, schedule: Schedule, create: bool) -> bool:
        spec, nxt, _ = self._three()
        args = [schedule.id, schedule.spec_json(), _t(schedule.next_fire), "1" if create else "0"]
        return bool(await self._save(keys=[spec, nxt], args=args))

    async def read(self, ids: Sequence[str] | None = None) -> list[Schedule]:
        spec, nxt, last = self._three()
        pipe = self._client.pipeline(transaction=True)
        if ids is None:
            pipe.hgetall(spec)
            pipe.hgetall(nxt)
            pipe.hgetall(last)
            specs, nexts, lasts = await pipe.execute()
        else:
            pipe.hmget(spec, list(ids))
            pipe.hmget(nxt, list(ids))
            pipe.hmget(last, list(ids))
            got = await pipe.execute()
            specs, nexts, lasts = ({i: v for i, v in zip(ids, g, strict=True)} for g in got)
        found = []
        for schedule_id in sorted(specs):
            if specs[schedule_id] is None:
                continue
            history = json.loads(lasts.get(schedule_id) or "null") or {}
            found.append(
                Schedule.from_parts(
                    schedule_id,
                    specs[schedule_id],
                    _float(nexts.get(schedule_id)),
                    history.get("at"),
                    json.dumps(history.get("tasks", [])),
                )
            )
        return found

    async def delete(self, schedule_id: str) -> bool:
        spec, nxt, last = self._three()
        pipe = self._client.pipeline(transaction=True)
        pipe.hdel(spec, schedule_id)
        pipe.hdel(nxt, schedule_id)
        pipe.hdel(last, schedule_id)
        removed, _, _ = await pipe.execute()
        return bool(removed)

    async def advance(
        self,
        schedule_id: str,
        expected: float,
        next_fire: float | None,
        fired_at: float | None,
        tasks: Sequence[str],
    ) -> bool:
        history = "" if fired_at is None else json.dumps({"at": fired_at, "tasks": list(tasks)})
        args = [schedule_id, _t(expected), _t(next_fire), history]
        return bool(await self._advance(keys=self._three(), args=args))
