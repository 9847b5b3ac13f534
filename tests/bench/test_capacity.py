"""Reading the highest rate under a latency target off a sweep, and the ratios between systems."""

from __future__ import annotations

import pytest

from autellix_backend.bench.capacity import Bound, Capacity, capacity_ratio, max_rate_meeting


def test_capacity_interpolates_where_the_curve_crosses_the_target() -> None:
    points = [(1.0, 0.1), (2.0, 0.2), (3.0, 0.6)]
    cap = max_rate_meeting(points, target=0.4)
    assert cap.bound is Bound.EXACT
    assert cap.rate == pytest.approx(2.5)


def test_capacity_reports_bounds_outside_the_swept_rates() -> None:
    assert max_rate_meeting([(1.0, 0.5), (2.0, 0.9)], 0.4) == Capacity(1.0, Bound.BELOW)
    assert max_rate_meeting([(2.0, 0.2), (1.0, 0.1)], 0.4) == Capacity(2.0, Bound.ABOVE)
    with pytest.raises(ValueError):
        max_rate_meeting([], 0.4)


def test_ratio_is_a_bound_when_a_capacity_is() -> None:
    exact = Capacity(2.0, Bound.EXACT)
    assert str(capacity_ratio(exact, Capacity(1.0, Bound.EXACT))) == "2.00x"
    assert str(capacity_ratio(exact, Capacity(0.5, Bound.BELOW))) == ">=4.00x"
    assert str(capacity_ratio(Capacity(0.5, Bound.BELOW), exact)) == "<=0.25x"
    assert str(capacity_ratio(Capacity(3.0, Bound.ABOVE), Capacity(3.0, Bound.ABOVE))) == "n/a"


def test_each_seed_is_read_against_the_target_it_was_searched_with() -> None:
    # Seeds searched in separate benches derive their own targets; a merged report must not
    # read one seed's probes against another's target (its probes bracket only their own).
    from autellix_backend.bench.analysis import capacity
    from autellix_backend.bench.records import TARGET_METRIC, RunRecord, RunSpec

    def probe(seed: int, rate: float, mean: float, target: float) -> RunRecord:
        spec = RunSpec("latency", "sharegpt", "plas", 10, rate=rate, seed=seed)
        return RunRecord(spec, {"mean_latency_per_token": mean, TARGET_METRIC: target})

    seed0 = [probe(0, 1.0, 0.05, 0.10), probe(0, 2.0, 0.15, 0.10)]
    seed1 = [probe(1, 1.0, 0.15, 0.20), probe(1, 2.0, 0.25, 0.20)]
    # Against seed 0's 0.10, seed 1 would fail at every rate it ran: a bound, not a capacity.
    alone = capacity(seed1, target=0.10)
    assert alone.bound is Bound.EXACT and 1.0 < alone.rate < 2.0
    merged = capacity(seed0 + seed1, target=0.10)
    assert merged.bound is Bound.EXACT
    assert merged.low is not None and merged.high is not None
    assert 1.0 < merged.low <= merged.high < 2.0
