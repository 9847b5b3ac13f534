"""Engine throughput per profile and workload, read from the simulator.

One engine's capacity is the highest program arrival rate whose mean latency per token stays
within ``SLO_FACTOR`` times the unloaded one (the rule ``autellix bench`` uses). The same sweep
on N engines measures how capacity scales, which is what the fleet model assumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autellix_backend.bench.analysis import SLO_FACTOR
from autellix_backend.bench.capacity import Capacity, max_rate_meeting
from autellix_backend.sim import EngineConfig, SimConfig, SimResult, run_simulation
from autellix_backend.workloads.registry import make_workload


@dataclass(frozen=True, slots=True)
class EngineThroughput:
    """What one simulated engine sustains on a workload at the latency target."""

    profile: str
    workload: str
    programs_per_s: float
    """Highest program arrival rate meeting the target, per engine."""
    calls_per_program: float
    prompt_tokens_per_call: float
    output_tokens_per_call: float
    program_latency_s: float
    """Mean program latency (arrival to last call) near capacity: how long a row lives."""
    target_s_per_token: float
    """The latency target: mean latency per token."""


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One simulator run of a sweep."""

    rate: float
    mean_latency_per_token: float
    mean_latency: float
    result: SimResult


def run_point(
    engine: EngineConfig,
    workload: str,
    *,
    num_engines: int,
    rate: float,
    num_programs: int,
    seed: int = 0,
) -> SweepPoint:
    """Simulate ``num_programs`` programs of ``workload`` at ``rate``/s on ``num_engines``."""
    programs = make_workload(workload, num_programs, rate=rate, seed=seed)
    config = SimConfig(engine=engine, num_engines=num_engines, seed=seed)
    result = run_simulation(programs, config)
    summary = result.summary()
    return SweepPoint(rate, summary["mean_latency_per_token"], summary["mean_latency"], result)


def capacity_of(points: Sequence[SweepPoint], target: float) -> Capacity:
    """Highest rate of ``points`` meeting ``target`` (interpolated between runs)."""
    return max_rate_meeting([(p.rate, p.mean_latency_per_token) for p in points], target)


def measure_engine(
    profile: str,
    workload: str,
    *,
    rates: Sequence[float],
    num_programs: int = 120,
    idle_rate: float = 0.02,
    seed: int = 0,
) -> EngineThroughput:
    """Sweep one engine over ``rates`` and read its capacity at the latency target.

    ``idle_rate`` sets the unloaded latency the target is a multiple of.
    """
    engine = EngineConfig(profile=profile)
    idle = run_point(engine, workload, num_engines=1, rate=idle_rate, num_programs=30, seed=seed)
    target = SLO_FACTOR * idle.mean_latency_per_token
    points = [
        run_point(engine, workload, num_engines=1, rate=r, num_programs=num_programs, seed=seed)
        for r in rates
    ]
    capacity = capacity_of(points, target)
    near = min(points, key=lambda p: abs(p.rate - capacity.rate))
    calls = [c for c in near.result.calls]
    return EngineThroughput(
        profile=profile,
        workload=workload,
        programs_per_s=capacity.rate,
        calls_per_program=len(calls) / len(near.result.programs),
        prompt_tokens_per_call=sum(c.prompt_tokens for c in calls) / len(calls),
        output_tokens_per_call=sum(c.output_tokens for c in calls) / len(calls),
        program_latency_s=near.mean_latency,
        target_s_per_token=target,
    )


THROUGHPUT: dict[tuple[str, str], EngineThroughput] = {
    ("a100-llama3-8b", "mixed"): EngineThroughput(
        profile="a100-llama3-8b",
        workload="mixed",
        programs_per_s=3.30,
        calls_per_program=54.5,
        prompt_tokens_per_call=863.0,
        output_tokens_per_call=76.1,
        program_latency_s=107.7,
        target_s_per_token=0.0523,
    ),
}
"""Recorded ``measure_engine`` results (docs/capacity.md has the command); others are measured
when asked for."""
