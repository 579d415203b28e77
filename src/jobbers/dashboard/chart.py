"""The overview's throughput chart as inline SVG: no script library, nothing to download."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup, escape

from jobbers.models import Status

WIDTH, HEIGHT, PAD = 720, 160, 24
FAILED = (Status.FAILED, Status.DEAD)


@dataclass(frozen=True)
class Bar:
    start: float
    completed: int
    failed: int


def bars(
    finished: Mapping[tuple[float, Status], int], since: float, bucket: float, n: int
) -> list[Bar]:
    out = []
    for i in range(n):
        start = since + i * bucket
        out.append(
            Bar(
                start,
                finished.get((start, Status.COMPLETED), 0),
                sum(finished.get((start, s), 0) for s in FAILED),
            )
        )
    return out


def svg(data: list[Bar]) -> Markup:
    """Completed (green) and failed (red) stacked per bucket, newest on the right."""
    top = max([b.completed + b.failed for b in data] + [1])
    width = (WIDTH - 2 * PAD) / max(len(data), 1)
    scale = (HEIGHT - 2 * PAD) / top
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        ' aria-label="tasks finished per minute over the last hour">',
        f'<text x="{PAD}" y="14" class="axis">{top} / min</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"'
        ' class="base"/>',
    ]
    for i, bar in enumerate(data):
        x = PAD + i * width
        done_h = bar.completed * scale
        fail_h = bar.failed * scale
        base = HEIGHT - PAD
        if done_h:
            parts.append(
                f'<rect class="ok" x="{x:.1f}" y="{base - done_h:.1f}" width="{width - 1:.1f}"'
                f' height="{done_h:.1f}"><title>{bar.completed} completed</title></rect>'
            )
        if fail_h:
            parts.append(
                f'<rect class="bad" x="{x:.1f}" y="{base - done_h - fail_h:.1f}"'
                f' width="{width - 1:.1f}" height="{fail_h:.1f}"><title>{bar.failed} failed'
                "</title></rect>"
            )
    parts.append(
        f'<text x="{PAD}" y="{HEIGHT - 6}" class="axis">{escape("-60 min")}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" class="axis" text-anchor="end">now</text></svg>'
    )
    return Markup("".join(parts))
