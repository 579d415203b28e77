"""Composing a workflow in Python: ``a >> b``, ``a >> [b, c] >> d``, ``a.then(b)``,
``a.on_error(h)``; a :class:`Workflow` gathers every step connected to the ones it is given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, overload

from jobbers.models import JSON, EdgeOn
from jobbers.registry import TaskSpec
from jobbers.workflows.graph import Graph, Link, Node


class Step:
    """One call of a task in a workflow (or a fan-out's child or collector)."""

    def __init__(self, task: TaskSpec[..., Any] | str, kwargs: dict[str, JSON]) -> None:
        self.task = task if isinstance(task, str) else task.name
        self.kwargs = kwargs
        self.id: str | None = None
        self.inputs_param: str | None = None
        self.queue: str | None = None
        self._out: list[tuple[Step, EdgeOn]] = []
        self._in: list[tuple[Step, EdgeOn]] = []

    def named(self, node_id: str) -> Step:
        """The node's id in the graph (default: the task's last dotted part, numbered)."""
        self.id = node_id
        return self

    def inputs(self, param: str) -> Step:
        """``param`` receives the parents' results when the step starts: by parent node id in
        a workflow, a list in the children's order for a fan-out's collector."""
        self.inputs_param = param
        return self

    def on_queue(self, queue: str) -> Step:
        self.queue = queue
        return self

    def _link(self, other: Step, on: EdgeOn) -> None:
        self._out.append((other, on))
        other._in.append((self, on))

    @overload
    def then(self, other: Step, /) -> Step: ...
    @overload
    def then(self, *others: Step) -> list[Step]: ...
    def then(self, *others: Step) -> Step | list[Step]:
        for other in others:
            self._link(other, "completed")
        return others[0] if len(others) == 1 else list(others)

    def on_error(self, handler: Step) -> Step:
        """``handler`` runs when this step ends failed, dead or cancelled; returns this step."""
        self._link(handler, "failed")
        return self

    def __rshift__(self, other: Step | Sequence[Step]) -> Any:
        if isinstance(other, Step):
            return self.then(other)
        self.then(*other)
        return list(other)

    def __rrshift__(self, others: Sequence[Step]) -> Step:
        for other in others:
            other.then(self)
        return self


def step(task: TaskSpec[..., Any] | str, /, **kwargs: JSON) -> Step:
    """A call of ``task`` with ``kwargs``, to place in a workflow or a fan-out."""
    return Step(task, kwargs)


class Workflow:
    def __init__(self, name: str, *steps: Step) -> None:
        self.name = name
        self.steps = self._gather(steps)

    @staticmethod
    def _gather(start: Sequence[Step]) -> list[Step]:
        found: dict[int, Step] = {}
        stack = list(start)
        while stack:
            s = stack.pop()
            if id(s) in found:
                continue
            found[id(s)] = s
            stack += [o for o, _ in s._out] + [i for i, _ in s._in]
        return sorted(found.values(), key=lambda s: _order(s, start))

    def graph(self) -> Graph:
        ids: dict[int, str] = {}
        used: set[str] = {s.id for s in self.steps if s.id is not None}
        for s in self.steps:
            if s.id is not None:
                ids[id(s)] = s.id
                continue
            base = s.task.rsplit(".", 1)[-1] or "step"
            candidate, n = base, 1
            while candidate in used:
                n += 1
                candidate = f"{base}_{n}"
            used.add(candidate)
            ids[id(s)] = candidate
        nodes = tuple(
            Node(ids[id(s)], s.task, dict(s.kwargs), s.inputs_param, s.queue) for s in self.steps
        )
        edges = tuple(Link(ids[id(s)], ids[id(o)], on) for s in self.steps for o, on in s._out)
        return Graph(self.name, nodes, edges)

    def to_json(self) -> dict[str, JSON]:
        return self.graph().to_json()


def _order(s: Step, start: Sequence[Step]) -> int:
    """Roots first, then by depth from them: a stable, readable node order."""
    depth, current = 0, s
    while current._in:
        current = current._in[0][0]
        depth += 1
        if depth > 10_000:
            break
    return depth
