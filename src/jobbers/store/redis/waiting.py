"""Which task names wait in each queue, for telling operators what no worker can run.

Redis keeps no count per name, so the first :data:`LOOKED_AT` ready and scheduled tasks of each
queue are read (two ranges and one ``HGET`` each, in one pipeline): the counts are exact up to
that many and a lower bound past it, which is what a rolling deploy needs to be seen."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobbers.store.redis.keys import Keys

#: Ready and scheduled tasks looked at per queue.
LOOKED_AT = 1000
#: A ready member is ``<seq, 15 digits>|<id>``.
READY_ID_AT = 16


async def waiting_names(
    client: Any, keys: Keys, queues: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Queue -> task name -> waiting tasks (ready or scheduled) among those looked at."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zrange(keys.queue(queue, "ready"), 0, LOOKED_AT - 1)
        pipe.zrange(keys.queue(queue, "scheduled"), 0, LOOKED_AT - 1)
    ranges = await pipe.execute()
    ids: list[tuple[str, str]] = []
    for i, queue in enumerate(queues):
        ids.extend((queue, member[READY_ID_AT:]) for member in ranges[2 * i])
        ids.extend((queue, task_id) for task_id in ranges[2 * i + 1])
    if not ids:
        return {}
    pipe = client.pipeline(transaction=False)
    for _, task_id in ids:
        pipe.hget(keys.task(task_id), "name")
    out: dict[str, dict[str, int]] = {}
    for (queue, _), name in zip(ids, await pipe.execute(), strict=True):
        if name is not None:
            names = out.setdefault(queue, {})
            names[name] = names.get(name, 0) + 1
    return out
