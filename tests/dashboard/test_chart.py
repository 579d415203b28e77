"""The charts: one bar per bucket with each finishing status its own series, so "failed" means
the status failed (as the overview's card does), and percentiles read from the histograms."""

from __future__ import annotations

from jobbers.dashboard.chart import RANGES, bars, percentile, svg, window
from jobbers.models import Status
from jobbers.store.base import DURATION_BUCKETS, Durations

T0 = 1_800_000_000.0


def test_bars_fill_every_bucket_with_each_status_apart() -> None:
    finished = {
        (T0, Status.COMPLETED): 4,
        (T0 + 120, Status.FAILED): 1,
        (T0 + 120, Status.DEAD): 2,
        (T0 + 120, Status.CANCELLED): 7,
    }
    data = bars(finished, T0, 60.0, 3)
    assert [(b.start, b.counts[Status.COMPLETED], b.counts[Status.FAILED]) for b in data] == [
        (T0, 4, 0),
        (T0 + 60, 0, 0),
        (T0 + 120, 0, 1),
    ]
    assert data[2].counts[Status.DEAD] == 2
    drawn = str(svg(data, RANGES["15m"]))
    assert drawn.count('class="s-completed"') == 1
    assert "<title>1 failed</title>" in drawn
    assert "<title>2 dead</title>" in drawn
    assert "<title>7 cancelled</title>" in drawn
    assert "10 / 1 min" in drawn
    assert 'data-range="15m"' in drawn


def test_each_range_starts_on_a_minute_and_ends_in_the_current_one() -> None:
    now = T0 + 59.5
    for chosen in RANGES.values():
        since = window(now, chosen)
        assert since % 60 == 0
        assert since + chosen.seconds > now >= since + chosen.seconds - chosen.bucket


def test_percentile_is_the_bound_of_the_bucket_holding_it() -> None:
    # Cumulative: 90 values <= 0.1 s, the other 10 <= 5 s.
    below = [0, 0, 90, 90, 90] + [100] * (len(DURATION_BUCKETS) - 5)
    hist = Durations(tuple(below), 100, 0.0)
    assert percentile(hist, 0.5) == 0.1
    assert percentile(hist, 0.95) == 5.0
    assert percentile(Durations(), 0.5) is None
    assert percentile(Durations(tuple([0] * len(DURATION_BUCKETS)), 3, 0.0), 0.5) == float("inf")
