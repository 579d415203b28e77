"""Every Redis key and channel the Redis store uses, in one place.

All keys of one deployment share the hash tag ``{prefix}``, so every script touches one slot
and the layout runs unchanged on Redis Cluster (as one slot). The Lua scripts build the same
names from the prefix they are given; ``docs/internals.md`` lists the layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobbers.effects import Field

#: Bumped when the layout changes; ``check()`` upgrades :data:`PREVIOUS_VERSION` in place and
#: refuses any other version.
SCHEMA_VERSION = "3"
#: The version before: what ``check()`` upgrades in place. Schema 3 added the per-minute
#: finish sums, filled from the per-second ones.
PREVIOUS_VERSION = "2"

#: A task hash's field for each task field the effects table names (the rest are named alike).
TASK_FIELDS: dict[Field, str] = {f: f.value for f in Field} | {
    Field.LEASE: "lease",
    Field.HEARTBEAT: "hb_at",
}


@dataclass(frozen=True)
class Keys:
    #: ``{prefix}``: the hash tag every key starts with.
    base: str

    @classmethod
    def for_prefix(cls, prefix: str) -> Keys:
        return cls("{" + prefix + "}")

    @property
    def meta(self) -> str:
        """Hash: ``schema`` (the layout version)."""
        return f"{self.base}:meta"

    def task(self, task_id: str) -> str:
        """Hash: one task's fields (JSON text for kwargs, policy, result, error)."""
        return f"{self.base}:task:{task_id}"

    def attempts(self, task_id: str) -> str:
        """Hash: attempt number -> the attempt as JSON."""
        return f"{self.base}:att:{task_id}"

    @property
    def all(self) -> str:
        """Sorted set: every task id by submission sequence (listing, newest first)."""
        return f"{self.base}:all"

    def by_queue(self, queue: str) -> str:
        """Sorted set: one queue's task ids by submission sequence (listing by queue)."""
        return f"{self.base}:byq:{queue}"

    def by_name(self, name: str) -> str:
        """Sorted set: one task name's ids by submission sequence (listing by name)."""
        return f"{self.base}:byname:{name}"

    def status(self, status: str) -> str:
        """Sorted set: ids in one status by submission sequence (filtered listings, counts)."""
        return f"{self.base}:status:{status}"

    @property
    def queues(self) -> str:
        """Set: every queue name seen or configured."""
        return f"{self.base}:queues"

    def queue(self, name: str, what: str) -> str:
        """``ready`` (sorted set), ``since`` (the ready ids by when they became ready, for the
        oldest waiting), ``scheduled`` (sorted set by due time), ``running`` (set), ``starts``
        (sorted set of start times, for rate limits), ``conf`` (hash)."""
        return f"{self.base}:q:{name}:{what}"

    @property
    def counts(self) -> str:
        """Hash: JSON ``[queue, name, status]`` -> tasks kept in that group."""
        return f"{self.base}:counts"

    @property
    def retries(self) -> str:
        """Hash: JSON ``[queue, name]`` -> retries summed over the tasks kept."""
        return f"{self.base}:retries"

    @property
    def totals(self) -> str:
        """Hash: JSON ``[queue, name, total]`` -> monotonic total (never taken back)."""
        return f"{self.base}:totals"

    @property
    def finish_hours(self) -> str:
        """Sorted set: the hours (epoch seconds // 3600) that have a finish-count hash."""
        return f"{self.base}:fin:hours"

    def finishes(self, hour: str) -> str:
        """Hash: ``second|status`` -> tasks kept that finished in that second of the hour."""
        return f"{self.base}:fin:{hour}"

    def finish_minutes(self, hour: str) -> str:
        """Hash: ``minute|status`` -> the same finishes summed per minute (its first second),
        kept beside the seconds so that a window of whole minutes reads 60 fields an hour."""
        return f"{self.base}:fin:m:{hour}"

    def histogram(self, kind: str, queue: str) -> str:
        """Hash: ``wait`` or ``run`` durations of a queue's kept tasks: ``n``, ``sum`` and one
        field per bucket index (``inf`` past the last bound), not cumulative."""
        return f"{self.base}:hist:{kind}:{queue}"

    def schedules(self, part: str) -> str:
        """Hashes by schedule id: ``spec`` (the owner's JSON), ``next`` (the next fire time,
        empty while none) and ``last`` (JSON ``{"at", "tasks"}`` of the last fired occurrence)."""
        return f"{self.base}:sched:{part}"

    def progress(self, task_id: str) -> str:
        """Hash: attempt number -> that attempt's latest progress (JSON)."""
        return f"{self.base}:prog:{task_id}"

    def log(self, task_id: str) -> str:
        """List: the task's log lines (JSON with their attempt number), oldest first."""
        return f"{self.base}:log:{task_id}"

    @property
    def leases(self) -> str:
        """Sorted set: started task ids by lease expiry."""
        return f"{self.base}:leases"

    @property
    def beats(self) -> str:
        """Sorted set: started task ids with a heartbeat interval, by heartbeat deadline."""
        return f"{self.base}:beats"

    @property
    def finished(self) -> str:
        """Sorted set: finished task ids (completed, failed, cancelled, dead) by finish time."""
        return f"{self.base}:finished"

    @property
    def events(self) -> str:
        """Stream: the change feed, one entry per status transition, bounded by MAXLEN."""
        return f"{self.base}:events"

    @property
    def workers(self) -> str:
        """Hash: worker id -> its registration (JSON)."""
        return f"{self.base}:workers"

    @property
    def workers_seen(self) -> str:
        return f"{self.base}:workers:seen"

    @property
    def workers_running(self) -> str:
        return f"{self.base}:workers:running"

    @property
    def definitions(self) -> str:
        """Hash: task name -> TaskDefinition JSON."""
        return f"{self.base}:defs"

    @property
    def changed(self) -> str:
        """Channel: published after writes that may let a claimer start something."""
        return f"{self.base}:changed"

    @property
    def cancel(self) -> str:
        """Channel: JSON list of running task ids just cancelled."""
        return f"{self.base}:cancel"
