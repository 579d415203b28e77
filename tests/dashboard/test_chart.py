"""The overview chart: one bar per minute, failures (failed and dead) stacked on completions."""

from __future__ import annotations

from jobbers.dashboard.chart import bars, svg
from jobbers.models import Status

T0 = 1_800_000_000.0


def test_bars_fill_every_bucket_and_count_dead_as_failed() -> None:
    finished = {
        (T0, Status.COMPLETED): 4,
        (T0 + 120, Status.FAILED): 1,
        (T0 + 120, Status.DEAD): 2,
        (T0 + 120, Status.CANCELLED): 7,
    }
    data = bars(finished, T0, 60.0, 3)
    assert [(b.start, b.completed, b.failed) for b in data] == [
        (T0, 4, 0),
        (T0 + 60, 0, 0),
        (T0 + 120, 0, 3),
    ]
    drawn = str(svg(data))
    assert drawn.count('class="ok"') == 1
    assert drawn.count('class="bad"') == 1
    assert "<title>3 failed</title>" in drawn
    assert "4 / min" in drawn
