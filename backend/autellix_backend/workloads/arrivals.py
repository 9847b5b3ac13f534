"""Arrival processes: when each program of a workload starts.

Three modes, all deterministic for a seed: ``poisson`` (exponential gaps at ``rate`` programs per
second, the paper's setting), ``batch`` (everything at t=0, the offline makespan experiment) and
``bursty`` (Poisson-arriving bursts of ``burst_size`` programs, same mean rate).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from autellix_backend.workloads.spec import ProgramSpec


class ArrivalMode(StrEnum):
    """How programs arrive."""

    POISSON = "poisson"
    BATCH = "batch"
    BURSTY = "bursty"


def arrival_times(
    num_programs: int,
    mode: ArrivalMode | str,
    *,
    rate: float = 1.0,
    seed: int = 0,
    burst_size: int = 8,
) -> list[float]:
    """Start times (seconds, non-decreasing) of ``num_programs`` programs.

    Args:
        num_programs: How many times to draw.
        mode: The arrival process.
        rate: Mean programs per second (ignored by ``batch``).
        seed: Seed of the generator; equal seeds give equal times.
        burst_size: Programs per burst in ``bursty`` mode.
    """
    mode = ArrivalMode(mode)
    if num_programs < 0:
        raise ValueError("num_programs must be non-negative")
    if mode is ArrivalMode.BATCH:
        return [0.0] * num_programs
    if not rate > 0:
        raise ValueError(f"rate must be positive for {mode.value} arrivals, got {rate}")
    rng = np.random.default_rng([seed, 0xA771])
    if mode is ArrivalMode.POISSON:
        gaps = rng.exponential(1.0 / rate, size=num_programs)
        return [float(t) for t in np.cumsum(gaps) - gaps[0]]
    if burst_size < 1:
        raise ValueError("burst_size must be at least 1")
    num_bursts = -(-num_programs // burst_size)
    gaps = rng.exponential(burst_size / rate, size=num_bursts)
    starts = np.cumsum(gaps) - gaps[0]
    return [float(starts[i // burst_size]) for i in range(num_programs)]


def with_arrivals(programs: Sequence[ProgramSpec], times: Sequence[float]) -> list[ProgramSpec]:
    """Copies of ``programs`` whose ``arrival_time`` is the matching entry of ``times``."""
    if len(programs) != len(times):
        raise ValueError(f"{len(programs)} programs but {len(times)} arrival times")
    return [dataclasses.replace(p, arrival_time=t) for p, t in zip(programs, times, strict=True)]
