"""A workflow run's graph as inline SVG: nodes in layers by their longest path from a root,
edges as lines (dashed to an error handler), each node coloured by its task's status. No script
library and nothing to download."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from markupsafe import Markup, escape

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 170, 46, 40, 26, 12
FILL = {
    "completed": "#d1f2d9",
    "started": "#dbe9ff",
    "submitted": "#f3f3f3",
    "waiting": "#ffffff",
    "scheduled": "#fff5d6",
    "failed": "#ffd9d9",
    "dead": "#ffd9d9",
    "stalled": "#ffe7cc",
    "cancelled": "#e6e6e6",
}


def layers(nodes: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the longest path to it from a root (the graph has no cycle)."""
    depth = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):
        moved = False
        for source, target in edges:
            if depth[target] < depth[source] + 1:
                depth[target] = depth[source] + 1
                moved = True
        if not moved:
            break
    return depth


def svg(nodes: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, str]]) -> Markup:
    """``nodes``: ``{"id", "task", "status"}``; ``edges``: ``{"from", "to", "on"}``."""
    ids = [str(n["id"]) for n in nodes]
    depth = layers(ids, [(e["from"], e["to"]) for e in edges])
    rows: dict[int, list[str]] = {}
    for node in ids:
        rows.setdefault(depth[node], []).append(node)
    at: dict[str, tuple[int, int]] = {}
    for layer, members in rows.items():
        for i, node in enumerate(members):
            at[node] = (PAD + i * (BOX_W + GAP_X), PAD + layer * (BOX_H + GAP_Y))
    width = PAD * 2 + max(len(m) for m in rows.values()) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + len(rows) * (BOX_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg class="flow" role="img" aria-label="workflow graph" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for e in edges:
        (x1, y1), (x2, y2) = at[e["from"]], at[e["to"]]
        dash = ' stroke-dasharray="5 4"' if e.get("on") == "failed" else ""
        parts.append(
            f'<line x1="{x1 + BOX_W // 2}" y1="{y1 + BOX_H}" x2="{x2 + BOX_W // 2}" y2="{y2}"'
            f' stroke="#777" stroke-width="1.5"{dash}/>'
        )
    for n in nodes:
        x, y = at[str(n["id"])]
        status = str(n.get("status") or "")
        fill = FILL.get(status, "#ffffff")
        parts.append(
            f'<g class="node status-{escape(status)}" data-node="{escape(n["id"])}"'
            f' data-status="{escape(status)}">'
            f"<title>{escape(n['id'])}: {escape(n['task'])} ({escape(status)})</title>"
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}"'
            ' stroke="#555"/>'
            f'<text x="{x + 8}" y="{y + 18}" font-size="13" font-weight="600">'
            f"{escape(_short(str(n['id'])))}</text>"
            f'<text x="{x + 8}" y="{y + 36}" font-size="11">{escape(_short(status))}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(text: str, most: int = 24) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"
