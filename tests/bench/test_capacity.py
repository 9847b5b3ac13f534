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
