"""Throughput at equal latency: the highest arrival rate a system sustains under a target.

The paper compares systems by how many programs per second each serves before its mean latency
per token passes a target. Here that rate is read off a curve's runs (a capacity search's probes,
``bench.search``) by linear interpolation between the last rate that meets the target and the
first that does not; over several seeds, the median is reported with its spread.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Bound(StrEnum):
    """How exact a capacity read off a finite sweep is."""

    EXACT = "exact"
    """The target is crossed inside the swept range."""
    BELOW = "below"
    """The target is missed even at the lowest rate: capacity is below it."""
    ABOVE = "above"
    """The target is met even at the highest rate: capacity is at least that."""


@dataclass(frozen=True, slots=True)
class Capacity:
    """Highest arrival rate (programs/s) meeting a latency target."""

    rate: float
    bound: Bound
    low: float | None = None
    """Lowest capacity over seeds (``None`` for one seed)."""
    high: float | None = None
    """Highest capacity over seeds (``None`` for one seed)."""

    def __str__(self) -> str:
        prefix = {Bound.EXACT: "", Bound.BELOW: "<", Bound.ABOVE: ">="}[self.bound]
        spread = (
            "" if self.low is None or self.high is None else f" ({self.low:.3g}-{self.high:.3g})"
        )
        return f"{prefix}{self.rate:.3g}{spread}"


@dataclass(frozen=True, slots=True)
class Ratio:
    """A capacity ratio ``ours / theirs``, possibly only a bound."""

    value: float
    qualifier: str
    """``""`` (exact), ``">="``, ``"<="``, or ``"?"`` when the bounds do not determine it."""

    def __str__(self) -> str:
        return "n/a" if self.qualifier == "?" else f"{self.qualifier}{self.value:.2f}x"


def max_rate_meeting(points: Sequence[tuple[float, float]], target: float) -> Capacity:
    """Highest rate whose latency is at most ``target``, from ``(rate, latency)`` points.

    Raises:
        ValueError: ``points`` is empty.
    """
    if not points:
        raise ValueError("no points to read a capacity from")
    ordered = sorted(points)
    if ordered[0][1] > target:
        return Capacity(ordered[0][0], Bound.BELOW)
    for (r0, l0), (r1, l1) in itertools.pairwise(ordered):
        if l1 > target:
            return Capacity(r0 + (r1 - r0) * (target - l0) / (l1 - l0), Bound.EXACT)
    return Capacity(ordered[-1][0], Bound.ABOVE)


def over_seeds(capacities: Sequence[Capacity]) -> Capacity:
    """The median of one curve's capacities over seeds, with their range.

    The result is exact only when every seed's is; otherwise it carries the first bound found.

    Raises:
        ValueError: ``capacities`` is empty.
    """
    if not capacities:
        raise ValueError("no capacities to combine")
    if len(capacities) == 1:
        return capacities[0]
    bounds = {c.bound for c in capacities}
    bound = (
        Bound.EXACT
        if bounds == {Bound.EXACT}
        else next(b for b in Bound if b in bounds - {Bound.EXACT})
    )
    rates = [c.rate for c in capacities]
    return Capacity(statistics.median(rates), bound, min(rates), max(rates))


def capacity_ratio(ours: Capacity, theirs: Capacity) -> Ratio:
    """``ours / theirs``, marked as a bound when either capacity is one."""
    value = ours.rate / theirs.rate
    lower = ours.bound is not Bound.BELOW and theirs.bound is not Bound.ABOVE
    upper = ours.bound is not Bound.ABOVE and theirs.bound is not Bound.BELOW
    if lower and upper:
        return Ratio(value, "")
    if lower:
        return Ratio(value, ">=")
    if upper:
        return Ratio(value, "<=")
    return Ratio(value, "?")
