"""Submitting a workflow run (the whole graph checked first, nothing stored when a check
fails) and what a run looks like: each node's status and the run's own."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

from jobbers.errors import InvalidWorkflow, UnknownTask
from jobbers.ids import uuid7
from jobbers.intake import Catalog
from jobbers.models import Edge, NewTask, Run, Status, TaskRecord
from jobbers.params import check_kwargs
from jobbers.present import iso
from jobbers.redact import redact, secret_keys
from jobbers.store.base import Store
from jobbers.workflows.graph import Graph, cycle_node
from jobbers.workflows.graph import parse as parse_graph

RunStatus = Literal["running", "completed", "failed", "cancelled"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "completed", "failed", "cancelled")
_BAD_ENDS = frozenset({Status.FAILED, Status.DEAD, Status.CANCELLED})


async def check(graph: Graph, catalog: Catalog) -> dict[str, Any]:
    """Every rule a graph must pass, in order (shape, cycle, tasks, kwargs); the first that
    fails raises :class:`InvalidWorkflow` naming its node. Returns each node's task defaults."""
    looped = cycle_node(graph)
    if looped is not None:
        raise InvalidWorkflow(looped, "the graph has a cycle through this node")
    try:
        defaults = await catalog.resolve({n.task for n in graph.nodes})
    except UnknownTask as exc:
        node = next(n for n in graph.nodes if n.task in exc.names)
        raise InvalidWorkflow(node.id, f"unknown task {node.task!r}") from None
    for node in graph.nodes:
        schema = defaults[node.task].parameters
        if schema is None:
            continue
        if node.inputs is not None and node.inputs not in schema.get("properties", {}):
            raise InvalidWorkflow(
                node.id, f"task {node.task!r} has no parameter {node.inputs!r} for the inputs"
            )
        problems = [
            p
            for p in check_kwargs(node.task, schema, node.kwargs, defaults[node.task].validator)
            if not (p.type == "missing" and p.loc == (node.inputs,))
        ]
        if problems:
            raise InvalidWorkflow(node.id, problems[0].msg)
    return defaults


async def submit(
    store: Store,
    catalog: Catalog,
    data: Any,
    *,
    graph: Graph | None = None,
    run_id: str | None = None,
) -> tuple[Run, list[NewTask]]:
    """Checks, then stores the run and one task per node in one store call. A ``run_id`` given
    (a schedule's occurrence) also names the tasks after it, so that submitting the same
    occurrence twice raises ``DuplicateTaskConflict`` and stores nothing."""
    graph = graph if graph is not None else parse_graph(data)
    defaults = await check(graph, catalog)
    named = run_id is not None
    run_id = run_id if run_id is not None else uuid7()
    task_ids = {n.id: f"{run_id}:{n.id}" if named else uuid7() for n in graph.nodes}
    tasks = []
    for node in graph.nodes:
        after = tuple(Edge(task_ids[e.source], e.source, e.on) for e in graph.parents(node.id))
        d = defaults[node.task]
        tasks.append(
            NewTask(
                id=task_ids[node.id],
                name=node.task,
                kwargs=dict(node.kwargs),
                queue=node.queue or d.queue,
                policy=d.policy,
                after=after,
                run=run_id,
                inputs=node.inputs,
            )
        )
    stored = graph.to_json() | {"tasks": task_ids}
    run = Run(run_id, graph.name, time.time(), stored)
    await store.create_run(run, tasks)
    return run, tasks


def stored_graph(run: Run) -> Graph:
    return parse_graph({k: v for k, v in run.graph.items() if k != "tasks"})


def node_tasks(run: Run) -> dict[str, str]:
    tasks = run.graph.get("tasks", {})
    return dict(tasks) if isinstance(tasks, dict) else {}


def node_statuses(run: Run, tasks: Sequence[TaskRecord]) -> dict[str, str]:
    by_id = {t.id: t for t in tasks}
    return {
        node: by_id[task_id].status.value
        for node, task_id in node_tasks(run).items()
        if task_id in by_id
    }


def run_status(run: Run, tasks: Sequence[TaskRecord]) -> RunStatus:
    """Cancelled when someone cancelled it; running while any task of it has not ended;
    failed when any ended failed, dead or cancelled (an error handler skipped because its
    node completed does not count); completed otherwise."""
    if run.cancelled_at is not None:
        return "cancelled"
    if any(t.status not in (Status.COMPLETED, *_BAD_ENDS) for t in tasks):
        return "running"
    handlers = {node_tasks(run).get(n) for n in stored_graph(run).handlers()}
    for t in tasks:
        if t.status in _BAD_ENDS and not (t.status == Status.CANCELLED and t.id in handlers):
            return "failed"
    return "completed"


def run_json(run: Run, tasks: Sequence[TaskRecord], *, full: bool = True) -> dict[str, Any]:
    """A run for the API: secrets in kwargs and results masked as for tasks."""
    body: dict[str, Any] = {
        "id": run.id,
        "name": run.name,
        "status": run_status(run, tasks),
        "created_at": iso(run.created_at),
        "cancelled_at": iso(run.cancelled_at),
    }
    if not full:
        return body
    graph = stored_graph(run)
    by_id = {t.id: t for t in tasks}
    ids = node_tasks(run)
    nodes = []
    for node in graph.nodes:
        task = by_id.get(ids.get(node.id, ""))
        keys = secret_keys(node.task)
        nodes.append(
            {
                "id": node.id,
                "task": node.task,
                "kwargs": redact(node.kwargs, keys),
                "inputs": node.inputs,
                "queue": node.queue,
                "task_id": ids.get(node.id),
                "status": task.status.value if task else None,
                "result": redact(task.result, keys) if task else None,
            }
        )
    in_graph = set(ids.values())
    body["nodes"] = nodes
    body["edges"] = [{"from": e.source, "to": e.target, "on": e.on} for e in graph.edges]
    body["tasks"] = [
        {"id": t.id, "name": t.name, "status": t.status.value}
        for t in tasks
        if t.id not in in_graph
    ]
    return body
