"""Workflow graphs as Mermaid flowchart text, both ways.

The dialect: ``id["task.name:queue(k=v, ...)"]`` declares a node (``:queue`` and the arguments
are optional; a node named only in an edge runs the task its id names); ``a --> b`` runs ``b``
after ``a`` completes, ``a -.-> h`` makes ``h`` the error handler of ``a``, and edges chain on
one line (``a --> b --> c``). Values are ``null``, ``true``/``false``, numbers, quoted or bare
strings, or ``~`` and base64 of their JSON (how anything else is written); ``k=$parents``
makes ``k`` the kwarg that receives the parents' results. A ``{status}`` suffix in a label is
ignored on reading, so an exported diagram with statuses can be submitted again. Lines of
other Mermaid statements (``classDef``, ``style``, ``%%`` comments ...) are skipped.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping

from jobbers.errors import InvalidWorkflow
from jobbers.models import JSON, EdgeOn
from jobbers.workflows.graph import Graph, Link, Node

PARENTS = "$parents"
#: First words of the Mermaid statements that are not nodes or edges.
_SKIP = frozenset(
    {"flowchart", "graph", "subgraph", "end", "classDef", "class", "style", "linkStyle", "click"}
)
_ARROWS = re.compile(r"\s*(-->|-\.->)\s*")
_NODE = re.compile(
    r"""^(?P<id>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\["(?P<dq>[^"]*)"\]|\['(?P<sq>[^']*)'\]|\[(?P<bare>[^\]]*)\])?(?::::[\w-]+)?$"""
)
_LABEL = re.compile(
    r"^(?P<task>[^\s(:{]+)(?::(?P<queue>[^\s({]+))?(?:\((?P<args>.*)\))?\s*(?:\{[\w ]*\})?$"
)
_SAFE = re.compile(r"^[A-Za-z0-9 _./@-]*$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")
#: Node colours by status in an exported diagram (no CDN: any Mermaid renderer applies them).
STATUS_CLASSES = {
    "completed": "fill:#d1f2d9,stroke:#1b7a3a",
    "started": "fill:#dbe9ff,stroke:#1f5fbf",
    "submitted": "fill:#f3f3f3,stroke:#777",
    "waiting": "fill:#ffffff,stroke:#999,stroke-dasharray:3 3",
    "scheduled": "fill:#fff5d6,stroke:#a07a00",
    "failed": "fill:#ffd9d9,stroke:#b3261e",
    "dead": "fill:#ffd9d9,stroke:#b3261e",
    "stalled": "fill:#ffe7cc,stroke:#b35c00",
    "cancelled": "fill:#eeeeee,stroke:#555,stroke-dasharray:2 2",
}


def parse(text: str, name: str = "mermaid") -> Graph:
    labels: dict[str, str | None] = {}
    edges: list[Link] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip().rstrip(";")
        if not line or line.startswith("%%") or line.split()[0] in _SKIP:
            continue
        parts = _ARROWS.split(line)
        ids = []
        for token in parts[::2]:
            found = _NODE.match(token.strip())
            if found is None:
                raise InvalidWorkflow(None, f"line {number}: cannot read {token.strip()!r}")
            node = found["id"]
            label = found["dq"] if found["dq"] is not None else found["sq"] or found["bare"]
            if label is not None or node not in labels:
                if labels.get(node) is not None and label is not None and labels[node] != label:
                    raise InvalidWorkflow(node, f"line {number}: the node is declared twice")
                labels[node] = label if label is not None else labels.get(node)
            ids.append(node)
        for source, arrow, target in zip(ids, parts[1::2], ids[1:], strict=False):
            on: EdgeOn = "failed" if arrow == "-.->" else "completed"
            edges.append(Link(source, target, on))
    if not labels:
        raise InvalidWorkflow(None, "the diagram has no nodes")
    nodes = tuple(_node(node, label) for node, label in labels.items())
    return Graph(name, nodes, tuple(dict.fromkeys(edges)))


def _node(node: str, label: str | None) -> Node:
    found = _LABEL.match((label or node).strip())
    if found is None:
        raise InvalidWorkflow(node, f"cannot read the label {label!r}: write task.name(k=v, ...)")
    kwargs: dict[str, JSON] = {}
    inputs = None
    for item in _split(found["args"] or ""):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise InvalidWorkflow(node, f"cannot read the argument {item.strip()!r}: write k=v")
        if value.strip() == PARENTS:
            inputs = key
        else:
            kwargs[key] = _value(node, value.strip())
    return Node(node, found["task"], kwargs, inputs, found["queue"])


def _split(args: str) -> list[str]:
    """Arguments split on commas outside quotes."""
    out, current, quote = [], "", ""
    for ch in args:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ",":
            out.append(current)
            current = ""
            continue
        current += ch
    if current.strip():
        out.append(current)
    return out


def _value(node: str, text: str) -> JSON:
    if text.startswith("~"):
        try:
            return json.loads(base64.b64decode(text[1:], validate=True))
        except ValueError as exc:
            raise InvalidWorkflow(node, f"cannot decode {text[:20]!r}: {exc}") from None
    if text in ("null", "true", "false"):
        return json.loads(text)
    if _NUMBER.match(text):
        return json.loads(text)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _show(value: JSON) -> str:
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, str) and _SAFE.match(value) and not _NUMBER.match(value):
        return f"'{value}'"
    encoded = json.dumps(value, separators=(",", ":")).encode()
    return "~" + base64.b64encode(encoded).decode()


def label(node: Node) -> str:
    queue = f":{node.queue}" if node.queue else ""
    args = [f"{k}={_show(v)}" for k, v in node.kwargs.items()]
    if node.inputs is not None:
        args.append(f"{node.inputs}={PARENTS}")
    return f"{node.task}{queue}({', '.join(args)})" if args else f"{node.task}{queue}"


def render(graph: Graph, statuses: Mapping[str, str] | None = None) -> str:
    """The diagram; with ``statuses`` (by node id) each label ends in ``{status}`` and the node
    takes the status's colour class."""
    lines = ["flowchart TD"]
    for node in graph.nodes:
        status = (statuses or {}).get(node.id)
        suffix = f"{{{status}}}" if status else ""
        css = f":::{status}" if status else ""
        lines.append(f'    {node.id}["{label(node)}{suffix}"]{css}')
    for e in graph.edges:
        arrow = "-.->" if e.on == "failed" else "-->"
        lines.append(f"    {e.source} {arrow} {e.target}")
    if statuses:
        lines += [f"    classDef {s} {style}" for s, style in STATUS_CLASSES.items()]
    return "\n".join(lines) + "\n"
