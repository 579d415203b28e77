"""Dynamic fan-out: a running task returns :class:`FanOut` (children and a collector); the
worker reports it as the attempt's outcome, and the store keeps the children, the collector
and the hand-over of this task's dependants to the collector in the step that completes it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobbers.ids import uuid7
from jobbers.models import Edge, NewTask, TaskRecord
from jobbers.registry import get_task
from jobbers.workflows.builder import Step


@dataclass(frozen=True)
class FanOut:
    children: Sequence[Step]
    collector: Step


def fan_out(children: Sequence[Step], collector: Step) -> FanOut:
    """Return this from a task: ``children`` run, then ``collector`` once every child and
    each child's own fan-out, to any depth, has finished; the collector stands in for the
    task, so whatever waited on the task waits on it."""
    return FanOut(list(children), collector)


def _new(s: Step, parent: TaskRecord, after: tuple[Edge, ...] = ()) -> NewTask:
    """Defaults from the task's registration in this worker (the one running the parent)."""
    spec = get_task(s.task)
    return NewTask(
        id=uuid7(),
        name=spec.name,
        kwargs=dict(s.kwargs),
        queue=s.queue or spec.queue,
        policy=spec.policy,
        after=after,
        run=parent.run,
        inputs=s.inputs_param,
    )


def spawned(result: FanOut, parent: TaskRecord) -> tuple[tuple[NewTask, ...], NewTask]:
    """The children and the collector as the store takes them (raises ``UnknownTask`` for a
    task this worker has not registered)."""
    children = tuple(_new(c, parent) for c in result.children)
    collector = _new(result.collector, parent, tuple(Edge(c.id) for c in children))
    return children, collector
