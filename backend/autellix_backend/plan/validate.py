"""Check the model's linear engine scaling against simulator runs of up to 64 engines.

Each fleet size N runs ``programs_per_engine * N`` programs at ``N * r`` for each per-engine
rate ``r`` of the sweep, so every engine sees the same load as in the one-engine sweep; the
capacity read at the latency target is compared with N times the one-engine capacity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from autellix_backend.bench.analysis import SLO_FACTOR
from autellix_backend.bench.capacity import Bound
from autellix_backend.plan.throughput import capacity_of, run_point
from autellix_backend.sim import EngineConfig


@dataclass(frozen=True, slots=True)
class ScalingCheck:
    """Predicted against simulated capacity for one fleet size."""

    num_engines: int
    predicted: float
    """N times the one-engine capacity (programs/s)."""
    simulated: float
    bound: Bound
    """Whether ``simulated`` is exact or only a bound of the sweep."""

    @property
    def error(self) -> float:
        """Relative error of the prediction, ``predicted / simulated - 1``."""
        return self.predicted / self.simulated - 1.0


def check_scaling(
    engine: EngineConfig,
    workload: str,
    *,
    engine_counts: Sequence[int] = (1, 4, 16, 64),
    rates_per_engine: Sequence[float],
    programs_per_engine: int = 40,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> list[ScalingCheck]:
    """One ``ScalingCheck`` per fleet size; the first size must be 1 (it sets the baseline)."""
    if not engine_counts or engine_counts[0] != 1:
        raise ValueError("engine_counts must start with 1")
    idle = run_point(engine, workload, num_engines=1, rate=0.02, num_programs=30, seed=seed)
    target = SLO_FACTOR * idle.mean_latency_per_token
    checks: list[ScalingCheck] = []
    base = 0.0
    for n in engine_counts:
        points = []
        for r in rates_per_engine:
            point = run_point(
                engine,
                workload,
                num_engines=n,
                rate=n * r,
                num_programs=n * programs_per_engine,
                seed=seed,
            )
            points.append(point)
            if progress is not None:
                progress(
                    f"engines={n} rate={n * r:g} latency/token={point.mean_latency_per_token:.4f}"
                )
        capacity = capacity_of(points, target)
        base = base or capacity.rate
        checks.append(ScalingCheck(n, n * base, capacity.rate, capacity.bound))
    return checks
