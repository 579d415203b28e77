"""A workflow graph as plain data: nodes (a task call each) and edges between them.

This is the one form every way in arrives at (the Python builder, JSON, Mermaid text) and the
one stored with a run, so what was submitted can always be shown and submitted again. An edge
``on: "completed"`` runs its target after the source completes; ``on: "failed"`` makes the
target the source's error handler, which runs when the source ends failed, dead or cancelled.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from jobbers.errors import InvalidWorkflow
from jobbers.models import JSON, EdgeOn

#: Node ids as Mermaid writes them, so that every graph can be exported and read back.
NODE_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_NODES = 10_000


@dataclass(frozen=True)
class Node:
    id: str
    task: str
    kwargs: dict[str, JSON] = field(default_factory=dict)
    #: The kwarg that receives the parents' results, by parent node id.
    inputs: str | None = None
    queue: str | None = None


@dataclass(frozen=True)
class Link:
    source: str
    target: str
    on: EdgeOn = "completed"


@dataclass(frozen=True)
class Graph:
    name: str
    nodes: tuple[Node, ...]
    edges: tuple[Link, ...] = ()

    def to_json(self) -> dict[str, JSON]:
        nodes: list[dict[str, JSON]] = []
        for n in self.nodes:
            item: dict[str, JSON] = {"id": n.id, "task": n.task, "kwargs": n.kwargs}
            if n.inputs is not None:
                item["inputs"] = n.inputs
            if n.queue is not None:
                item["queue"] = n.queue
            nodes.append(item)
        edges: list[JSON] = [{"from": e.source, "to": e.target, "on": e.on} for e in self.edges]
        return {"name": self.name, "nodes": nodes, "edges": edges}

    def parents(self, node: str) -> list[Link]:
        return [e for e in self.edges if e.target == node]

    def handlers(self) -> set[str]:
        """Nodes that only handle errors: every edge into them waits for a failure."""
        into: dict[str, set[str]] = {}
        for e in self.edges:
            into.setdefault(e.target, set()).add(e.on)
        return {node for node, ons in into.items() if ons == {"failed"}}


def _text(
    data: Mapping[str, Any], key: str, where: str | None, required: bool = True
) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidWorkflow(where, f"{key!r} must be a non-empty string")
    return value


def parse(data: Any) -> Graph:
    """A graph from its JSON form; the shape only (tasks are checked on submission)."""
    if not isinstance(data, Mapping):
        raise InvalidWorkflow(None, "a workflow is a JSON object with name, nodes and edges")
    name = _text(data, "name", None)
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise InvalidWorkflow(None, "'nodes' must be a non-empty list")
    if len(raw_nodes) > MAX_NODES:
        raise InvalidWorkflow(None, f"at most {MAX_NODES} nodes")
    nodes: list[Node] = []
    for raw in raw_nodes:
        nodes.append(_node(raw))
    ids = [n.id for n in nodes]
    seen: set[str] = set()
    for node_id in ids:
        if node_id in seen:
            raise InvalidWorkflow(node_id, "the id is used by more than one node")
        seen.add(node_id)
    raw_edges = data.get("edges", [])
    if not isinstance(raw_edges, list):
        raise InvalidWorkflow(None, "'edges' must be a list")
    edges = [_edge(raw, seen) for raw in raw_edges]
    return Graph(cast(str, name), tuple(nodes), tuple(dict.fromkeys(edges)))


def _node(raw: Any) -> Node:
    if not isinstance(raw, Mapping):
        raise InvalidWorkflow(None, "each node is a JSON object with id, task and kwargs")
    node_id = _text(raw, "id", None)
    assert node_id is not None
    if not NODE_ID.match(node_id):
        raise InvalidWorkflow(node_id, "ids are letters, digits and _ (not first), at most 64")
    task = _text(raw, "task", node_id)
    kwargs = raw.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise InvalidWorkflow(node_id, "'kwargs' must be a JSON object")
    inputs = _text(raw, "inputs", node_id, required=False)
    queue = _text(raw, "queue", node_id, required=False)
    if inputs is not None and inputs in kwargs:
        raise InvalidWorkflow(node_id, f"kwarg {inputs!r} receives the parents' results")
    return Node(node_id, cast(str, task), kwargs, inputs, queue)


def _edge(raw: Any, nodes: set[str]) -> Link:
    if not isinstance(raw, Mapping):
        raise InvalidWorkflow(None, 'each edge is {"from": id, "to": id, "on"?: ...}')
    source, target = raw.get("from"), raw.get("to")
    for end in (source, target):
        if not isinstance(end, str) or end not in nodes:
            raise InvalidWorkflow(
                end if isinstance(end, str) else None, "an edge names a node that is not in nodes"
            )
    on = raw.get("on", "completed")
    if on not in ("completed", "failed"):
        raise InvalidWorkflow(cast(str, target), "an edge's 'on' is 'completed' or 'failed'")
    if source == target:
        raise InvalidWorkflow(cast(str, source), "the graph has a cycle through this node")
    return Link(cast(str, source), cast(str, target), on)


def cycle_node(graph: Graph) -> str | None:
    """A node on a cycle, or None: Kahn's order leaves exactly the cycles' nodes unplaced."""
    indegree = {n.id: 0 for n in graph.nodes}
    children: dict[str, list[str]] = {n.id: [] for n in graph.nodes}
    for e in graph.edges:
        indegree[e.target] += 1
        children[e.source].append(e.target)
    ready = [n for n, d in indegree.items() if d == 0]
    while ready:
        node = ready.pop()
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    left = [n.id for n in graph.nodes if indegree[n.id] > 0]
    if not left:
        return None
    # Walk parents from a leftover node until one repeats: that one is on a cycle.
    parents = {n: [e.source for e in graph.edges if e.target == n] for n in left}
    node, seen = left[0], set()
    while node not in seen:
        seen.add(node)
        node = next(p for p in parents[node] if p in parents)
    return node
