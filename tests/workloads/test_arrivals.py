"""Arrival processes: rates, offline batches, bursts."""

from __future__ import annotations

import pytest

from autellix_backend.workloads import arrival_times


def test_poisson_mean_rate() -> None:
    times = arrival_times(4000, "poisson", rate=2.0, seed=1)
    assert times == sorted(times) and times[0] == 0.0
    assert (len(times) - 1) / times[-1] == pytest.approx(2.0, rel=0.05)


def test_batch_is_all_at_zero() -> None:
    assert arrival_times(5, "batch") == [0.0] * 5


def test_bursty_groups_programs_at_the_same_mean_rate() -> None:
    times = arrival_times(4000, "bursty", rate=2.0, seed=1, burst_size=8)
    assert len(set(times)) == 500
    assert len(times) / times[-1] == pytest.approx(2.0, rel=0.15)


def test_bad_rate_is_rejected() -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        arrival_times(3, "poisson", rate=0.0)
    with pytest.raises(ValueError):
        arrival_times(3, "sometimes")
