"""The same workload on the real engine and on the simulator: how far apart are they?"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from autellix_backend.core import SchedulerConfig
from autellix_backend.drivers.replay import PriorityHint, replay
from autellix_backend.engines.base import EngineAdapter
from autellix_backend.sim.config import EngineConfig, PreemptionMode, SimConfig
from autellix_backend.sim.results import percentile
from autellix_backend.sim.simulator import run_simulation
from autellix_backend.workloads.spec import ProgramSpec


@dataclass(frozen=True, slots=True)
class LatencyStats:
    mean_s: float
    p95_s: float

    @classmethod
    def of(cls, latencies: Sequence[float]) -> LatencyStats:
        ordered = sorted(latencies)
        return cls(mean_s=statistics.mean(ordered), p95_s=percentile(ordered, 95))


@dataclass(frozen=True, slots=True)
class Fidelity:
    """Program latency measured on the engine and predicted by the simulator."""

    real: LatencyStats
    simulated: LatencyStats

    @property
    def mean_error(self) -> float:
        """Relative error of the simulated mean program latency."""
        return (self.simulated.mean_s - self.real.mean_s) / self.real.mean_s

    @property
    def p95_error(self) -> float:
        return (self.simulated.p95_s - self.real.p95_s) / self.real.p95_s


def simulate(
    programs: Sequence[ProgramSpec],
    *,
    profile: str,
    scheduler: SchedulerConfig,
    max_num_seqs: int,
    block_size: int,
    num_kv_blocks: int,
    max_num_batched_tokens: int,
) -> LatencyStats:
    """Program latency of ``programs`` on the simulator set up like the calibrated engine."""
    config = SimConfig(
        scheduler=scheduler,
        engine=EngineConfig(
            profile=profile,
            max_num_seqs=max_num_seqs,
            block_size=block_size,
            num_kv_blocks=num_kv_blocks,
            max_num_batched_tokens=max_num_batched_tokens,
            preemption_mode=PreemptionMode.RECOMPUTE,
        ),
    )
    return LatencyStats.of([p.latency for p in run_simulation(programs, config).programs])


async def compare(
    engine: EngineAdapter,
    programs: Sequence[ProgramSpec],
    *,
    profile: str,
    scheduler: SchedulerConfig,
    max_num_seqs: int,
    block_size: int,
    num_kv_blocks: int,
    max_num_batched_tokens: int,
) -> Fidelity:
    """Replay ``programs`` on ``engine`` (running the plugin) and simulate them with ``profile``."""
    real = await replay(engine, programs, policy=scheduler.policy, hint=PriorityHint.SERVICE)
    return Fidelity(
        real=LatencyStats.of([p.latency for p in real.programs]),
        simulated=simulate(
            programs,
            profile=profile,
            scheduler=scheduler,
            max_num_seqs=max_num_seqs,
            block_size=block_size,
            num_kv_blocks=num_kv_blocks,
            max_num_batched_tokens=max_num_batched_tokens,
        ),
    )
