"""Fitted length distributions shared by the synthetic workloads.

Every synthetic count (turns, prompt and output tokens) is a clipped, rounded log-normal: it is
heavy-tailed like real chat and agent traces and needs only a mean, a spread and bounds. The
``mu`` of each distribution is solved once so that the *clipped* mean hits the paper's target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class ClippedLogNormal:
    """``clip(round(exp(N(mu, sigma))), low, high)`` with ``mu`` fitted to a target mean."""

    mean: float
    """Target mean of the clipped, rounded values."""
    sigma: float
    """Spread of the underlying normal (log space)."""
    low: int
    """Smallest value drawn."""
    high: int
    """Largest value drawn."""

    def __post_init__(self) -> None:
        if not self.low <= self.mean <= self.high:
            raise ValueError(f"mean {self.mean} is outside [{self.low}, {self.high}]")
        if self.sigma <= 0:
            raise ValueError("sigma must be positive")

    @cached_property
    def mu(self) -> float:
        """Log-space location whose clipped, rounded mean equals ``mean`` (bisection)."""
        lo, hi = math.log(max(self.low, 0.5)) - 10.0, math.log(self.high) + 10.0
        for _ in range(80):
            mid = (lo + hi) / 2
            if self._expected(mid) < self.mean:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    def _expected(self, mu: float) -> float:
        """Exact mean of the clipped, rounded distribution for location ``mu``."""
        values = np.arange(self.low, self.high + 1, dtype=float)
        edges = np.log(np.clip(values + 0.5, 1e-12, None))
        cdf_hi = _normal_cdf((edges - mu) / self.sigma)
        cdf_lo = np.concatenate(([0.0], cdf_hi[:-1]))
        cdf_hi[-1] = 1.0
        return float(np.sum(values * (cdf_hi - cdf_lo)))

    def sample(self, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
        """Draw ``size`` integers (a 1-element array when ``size`` is None)."""
        raw = rng.lognormal(self.mu, self.sigma, size=1 if size is None else size)
        return np.clip(np.rint(raw), self.low, self.high).astype(np.int64)

    def draw(self, rng: np.random.Generator) -> int:
        """Draw one integer."""
        return int(self.sample(rng)[0])


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf)
    return np.asarray(0.5 * (1.0 + erf(z / math.sqrt(2.0))), dtype=float)
