"""The dashboard's charts as inline SVG: no script library, nothing to download.

Throughput is stacked bars per time bucket, one colour per finishing status; the other charts
are horizontal bars (queue depth now, wait and run-time percentiles per queue)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from jobbers.models import Status
from jobbers.store.base import DURATION_BUCKETS, Durations

WIDTH, HEIGHT, PAD = 720, 160, 24
#: Finishing statuses, in stacking order (bottom first); each is its own series, so the chart's
#: "failed" counts exactly the tasks the overview's "failed" card counts, and dead ones apart.
SERIES = (Status.COMPLETED, Status.FAILED, Status.DEAD, Status.CANCELLED)


@dataclass(frozen=True)
class Range:
    """A chart's time window: ``buckets`` bars of ``bucket`` seconds, ending now."""

    key: str
    label: str
    bucket: float
    buckets: int

    @property
    def seconds(self) -> float:
        return self.bucket * self.buckets


RANGES: dict[str, Range] = {
    r.key: r
    for r in (
        Range("15m", "15 min", 60.0, 15),
        Range("1h", "1 h", 60.0, 60),
        Range("24h", "24 h", 900.0, 96),
        Range("7d", "7 d", 7200.0, 84),
    )
}
DEFAULT_RANGE = "1h"


def window(now: float, chosen: Range) -> float:
    """The start of the first bucket: whole minutes, so the store reads its per-minute sums."""
    return now - now % 60.0 - chosen.seconds + 60.0


@dataclass(frozen=True)
class Bar:
    start: float
    counts: dict[Status, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def bars(
    finished: Mapping[tuple[float, Status], int], since: float, bucket: float, n: int
) -> list[Bar]:
    out = []
    for i in range(n):
        start = since + i * bucket
        out.append(Bar(start, {s: finished.get((start, s), 0) for s in SERIES}))
    return out


def svg(data: Sequence[Bar], chosen: Range) -> Markup:
    """Finishes per bucket stacked by status, newest on the right."""
    top = max([b.total for b in data] + [1])
    width = (WIDTH - 2 * PAD) / max(len(data), 1)
    scale = (HEIGHT - 2 * PAD) / top
    per = _duration(chosen.bucket)
    parts = [
        f'<svg class="chart" id="throughput" data-range="{chosen.key}" viewBox="0 0 {WIDTH}'
        f' {HEIGHT}" role="img" aria-label="tasks finished per {per} over the last'
        f' {escape(chosen.label)}">',
        f'<text x="{PAD}" y="14" class="axis">{top} / {per}</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"'
        ' class="base"/>',
    ]
    base = HEIGHT - PAD
    for i, bar in enumerate(data):
        x = PAD + i * width
        y = float(base)
        for status in SERIES:
            n = bar.counts[status]
            if not n:
                continue
            h = n * scale
            y -= h
            parts.append(
                f'<rect class="s-{status.value}" x="{x:.1f}" y="{y:.1f}"'
                f' width="{max(width - 1, 0.5):.1f}" height="{h:.1f}"><title>{n} {status.value}'
                "</title></rect>"
            )
    parts.append(
        f'<text x="{PAD}" y="{HEIGHT - 6}" class="axis">-{escape(chosen.label)}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" class="axis" text-anchor="end">now</text></svg>'
    )
    return Markup("".join(parts))


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def percentile(hist: Durations, q: float) -> float | None:
    """The upper bound of the histogram bucket holding the ``q`` quantile (None: no values;
    ``inf`` when it lies past the last bound)."""
    if hist.count == 0:
        return None
    rank = q * hist.count
    for bound, below in zip(DURATION_BUCKETS, hist.buckets, strict=True):
        if below >= rank:
            return bound
    return float("inf")


def hbars(rows: Sequence[tuple[str, float]], unit: str, label: str) -> Markup:
    """One horizontal bar per row, scaled to the largest."""
    line = 22
    height = max(len(rows), 1) * line + 8
    top = max([v for _, v in rows if v != float("inf")] + [1e-9])
    span = WIDTH - 260
    parts = [
        f'<svg class="chart hbars" viewBox="0 0 {WIDTH} {height}" role="img"'
        f' aria-label="{escape(label)}">'
    ]
    for i, (name, value) in enumerate(rows):
        y = 4 + i * line
        w = span if value == float("inf") else span * value / top
        shown = "over 1 h" if value == float("inf") else f"{value:g} {unit}"
        parts.append(
            f'<text x="0" y="{y + 14}" class="axis">{escape(name[:28])}</text>'
            f'<rect class="s-started" x="180" y="{y + 3}" width="{max(w, 1):.1f}"'
            f' height="{line - 8}"><title>{escape(name)}: {escape(shown)}</title></rect>'
            f'<text x="{186 + w:.1f}" y="{y + 14}" class="axis">{escape(shown)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
