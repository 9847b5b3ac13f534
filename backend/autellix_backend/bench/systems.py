"""The serving systems the paper compares, as scheduler + engine settings of the simulator.

``vllm`` is stock vLLM (FCFS, no prefix caching, no chunked prefill); ``vllm-opt`` adds prefix
caching, chunked prefill and multi-step scheduling; every other system runs on the vllm-opt
engine and differs only in the scheduling policy, so a difference between them is the policy's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from autellix_backend.core import Policy, SchedulerConfig
from autellix_backend.sim import EngineConfig

SCHEDULE_EVERY_N_STEPS = 4
"""Multi-step scheduling of the optimised engine: the scheduler runs once every N steps."""


@dataclass(frozen=True, slots=True)
class System:
    """One compared system."""

    name: str
    """Key used on the command line and in result files."""
    label: str
    """Name in plots and tables (the paper's)."""
    policy: Policy
    optimised_engine: bool
    """Prefix caching, chunked prefill and multi-step scheduling on."""
    anti_starvation: bool = True
    """Keep the scheduler's anti-starvation promotion (``starvation_beta``); off only in the
    offline-batch variants of ``OFFLINE_VARIANTS``."""

    def scheduler(self, base: SchedulerConfig) -> SchedulerConfig:
        """``base`` with this system's policy (and without promotion when it has none)."""
        config = dataclasses.replace(base, policy=self.policy)
        if not self.anti_starvation:
            config = dataclasses.replace(config, starvation_beta=None)
        return config

    def engine(self, base: EngineConfig) -> EngineConfig:
        """``base`` with this system's engine optimisations on or off."""
        return dataclasses.replace(
            base,
            enable_prefix_caching=self.optimised_engine,
            enable_chunked_prefill=self.optimised_engine,
            schedule_every_n_steps=SCHEDULE_EVERY_N_STEPS if self.optimised_engine else 1,
        )


SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System("vllm", "vLLM", Policy.FCFS, optimised_engine=False),
        System("vllm-opt", "vLLM-opt", Policy.FCFS, optimised_engine=True),
        System("mlfq", "MLFQ", Policy.MLFQ, optimised_engine=True),
        System("plas", "PLAS", Policy.PLAS, optimised_engine=True),
        System("atlas", "ATLAS", Policy.ATLAS, optimised_engine=True),
        System("atlas_exact", "ATLAS-exact", Policy.ATLAS_EXACT, optimised_engine=True),
        System("srpt", "SRPT (oracle)", Policy.SRPT, optimised_engine=True),
    )
}
"""Every compared system, in the paper's order."""

OFFLINE_VARIANTS: dict[str, System] = {
    s.name: s
    for s in (
        System("mlfq-nostarve", "MLFQ, no promotion", Policy.MLFQ, True, anti_starvation=False),
        System("plas-nostarve", "PLAS, no promotion", Policy.PLAS, True, anti_starvation=False),
    )
}
"""Systems of the offline-batch makespan runs only (Figure 16), not of the latency sweeps.

In a batch where every program arrives at t=0, every waiting call passes the anti-starvation
ratio (its wait grows with the whole batch, its service by one quantum), so promotion turns the
queues into round robin with a KV swap per quantum: at 500 ShareGPT programs, 94,703 promotions,
99.5% of the 94,127 preemptions made room for a promoted call, and 1,497 s of swap doubled the
makespan. Starvation cannot matter to a makespan, so these variants show the policy without it."""

AUTELLIX = ("plas", "atlas")
"""Autellix's own policies (PLAS for single-threaded programs, ATLAS for multi-threaded)."""
BASELINES = ("vllm", "vllm-opt", "mlfq")
"""The paper's baselines."""
QUICK_SKIPS = ("srpt",)
"""Systems ``autellix bench --quick`` leaves out unless asked: the SRPT oracle is a bound, not a
competitor, and its capacity is 3-4x the others', so its probes were a third of the quick run."""


class UnknownSystemError(ValueError):
    """A system name that is not in ``SYSTEMS``."""


def get_system(name: str) -> System:
    """The system called ``name`` (``_`` and ``-`` are interchangeable)."""
    for key in (name, name.replace("_", "-"), name.replace("-", "_")):
        if key in SYSTEMS:
            return SYSTEMS[key]
        if key in OFFLINE_VARIANTS:
            return OFFLINE_VARIANTS[key]
    raise UnknownSystemError(f"unknown system {name!r}; known systems: {', '.join(SYSTEMS)}")
