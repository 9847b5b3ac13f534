"""The sweeps behind each of the paper's figures, as lists of ``RunSpec``.

Rates are programs per second on one A100/Llama-3-8B engine (the simulator's default profile)
with ``MAX_NUM_SEQS`` calls per batch, spanning light load to past saturation of each workload on
that engine. The paper's ranges for 8B are ShareGPT 0-4, BFCL 0.2-0.8, LATS 0.1-0.3 and Mixed
0.2-0.8; our BFCL programs saturate the engine later (their prompts are cached tool docs and their
outputs short), so its range is shifted up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from autellix_backend.bench.records import RunSpec
from autellix_backend.bench.systems import OFFLINE_VARIANTS, SYSTEMS

WORKLOAD_NAMES = ("sharegpt", "bfcl", "bfcl-paper", "lats", "mixed", "skewed")
RATES: dict[str, tuple[float, ...]] = {
    "sharegpt": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
    "bfcl": (0.5, 1.0, 1.5, 2.0, 2.5, 3.0),
    "bfcl-paper": (0.2, 0.4, 0.6, 0.8, 1.2, 1.6),
    "lats": (0.05, 0.1, 0.15, 0.2, 0.25, 0.3),
    "mixed": (0.2, 0.3, 0.4, 0.5, 0.6, 0.8),
    "skewed": (0.5, 1.0, 1.5, 2.0, 3.0, 4.0),
}
"""Arrival rates of the latency sweep (programs/s per engine)."""
MAX_NUM_SEQS = 32
"""Batch limit of every bench engine. The paper gives all systems one max batch size but not its
value; with vLLM's 256 and an A100's KV cache nearly every call is admitted at once, nothing
waits, and no scheduling policy can matter."""
AUTELLIX_SYSTEM = {
    "sharegpt": "plas",
    "bfcl": "plas",
    "bfcl-paper": "plas",
    "lats": "atlas",
    "mixed": "atlas",
    "skewed": "atlas",
}
"""The Autellix policy the multi-engine runs use per workload (ATLAS for multi-threaded ones)."""
BALANCERS = ("round_robin", "least_used", "locality", "prefix_aware", "cache_aware")
ENGINE_COUNTS = (1, 2, 4, 8)


@dataclass(frozen=True, slots=True)
class SweepSize:
    """How big each run of a sweep is."""

    num_programs: dict[str, int]
    """Programs per run, per workload (per engine); in a capacity search, the fewest a probe
    runs (and what the light-load reference runs use)."""
    num_rates: int = 6
    """How many of ``RATES`` to use (evenly picked, always the lowest and highest)."""
    balancer_engines: tuple[int, ...] = (4, 8)
    """Engine counts of the balancer experiment (the paper's 4, and 8)."""
    makespan_batches: tuple[int, ...] = (1000, 2000, 4000)
    """Offline batch sizes of the makespan experiment (ShareGPT programs)."""
    engine_counts: tuple[int, ...] = ENGINE_COUNTS
    window_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds over which a capacity search's probe programs arrive, per workload: a probe at
    rate r runs ``max(num_programs, r * window)`` programs (``bench.search.probe_spec``)."""
    search_start: dict[str, float] = field(default_factory=dict)
    """Rate (programs/s per engine) where a capacity search starts, per workload; unset: the top
    of ``RATES``. A start near the capacity saves the bracketing probes."""


FULL = SweepSize(
    num_programs={
        "sharegpt": 200,
        "bfcl": 120,
        "bfcl-paper": 120,
        "lats": 30,
        "mixed": 60,
        "skewed": 120,
    },
    window_seconds={
        "sharegpt": 75.0,
        "bfcl": 100.0,
        "bfcl-paper": 100.0,
        "lats": 120.0,
        "mixed": 60.0,
        "skewed": 75.0,
    },
)
QUICK = SweepSize(
    num_programs={
        "sharegpt": 30,
        "bfcl": 20,
        "bfcl-paper": 20,
        "lats": 4,
        "mixed": 12,
        "skewed": 20,
    },
    window_seconds={
        "sharegpt": 15.0,
        "bfcl": 20.0,
        "bfcl-paper": 20.0,
        "lats": 6.0,
        "mixed": 5.0,
        "skewed": 15.0,
    },
    search_start={
        "sharegpt": 8.0,
        "bfcl": 3.0,
        "bfcl-paper": 6.4,
        "lats": 9.6,
        "mixed": 6.4,
        "skewed": 4.0,
    },
    num_rates=3,
    balancer_engines=(2,),
    makespan_batches=(30, 60),
    engine_counts=(1, 2),
)


def rates_for(workload: str, num_rates: int) -> tuple[float, ...]:
    """``num_rates`` of the workload's rates, evenly spread, ends included."""
    rates = RATES[workload]
    if num_rates >= len(rates):
        return rates
    if num_rates == 1:
        return (rates[-1],)
    step = (len(rates) - 1) / (num_rates - 1)
    return tuple(rates[round(i * step)] for i in range(num_rates))


def latency_specs(
    size: SweepSize,
    workloads: Sequence[str] = WORKLOAD_NAMES,
    systems: Iterable[str] = tuple(SYSTEMS),
    seed: int = 0,
) -> list[RunSpec]:
    """Figures 12 and 13: every system at every rate, one engine."""
    systems = tuple(systems)
    return [
        RunSpec("latency", w, s, size.num_programs[w], rate=r, seed=seed)
        for w in workloads
        for r in rates_for(w, size.num_rates)
        for s in systems
    ]


def balancer_specs(
    size: SweepSize, workloads: Sequence[str] = ("sharegpt", "lats"), seed: int = 0
) -> list[RunSpec]:
    """Figure 14: the balancers on each of ``balancer_engines`` engines, rates scaled by it."""
    return [
        RunSpec(
            "balancer",
            w,
            AUTELLIX_SYSTEM[w],
            size.num_programs[w] * n,
            rate=r * n,
            num_engines=n,
            balancer=b,
            seed=seed,
        )
        for w in workloads
        for n in size.balancer_engines
        for r in rates_for(w, size.num_rates)
        for b in BALANCERS
    ]


def scaling_specs(
    size: SweepSize, workloads: Sequence[str] = ("sharegpt",), seed: int = 0
) -> list[RunSpec]:
    """Figure 15: 1, 2, 4, 8 engines (locality balancer), per-engine rates scaled by the count."""
    return [
        RunSpec(
            "scaling",
            w,
            AUTELLIX_SYSTEM[w],
            size.num_programs[w] * n,
            rate=r * n,
            num_engines=n,
            balancer="locality",
            seed=seed,
        )
        for w in workloads
        for n in size.engine_counts
        for r in rates_for(w, size.num_rates)
    ]


MAKESPAN_SYSTEMS = ("vllm-opt", "mlfq", "plas", "mlfq-nostarve", "plas-nostarve")
"""Systems of the makespan experiment: the paper's three, and MLFQ and PLAS without the
anti-starvation promotion that turns an offline batch into round robin (``OFFLINE_VARIANTS``)."""


def makespan_specs(
    size: SweepSize, systems: Sequence[str] = MAKESPAN_SYSTEMS, seed: int = 0
) -> list[RunSpec]:
    """Figure 16: offline batches of ShareGPT programs, all arriving at t=0."""
    return [
        RunSpec("makespan", "sharegpt", s, n, arrivals="batch", seed=seed)
        for n in size.makespan_batches
        for s in systems
    ]


def makespan_systems(systems: Sequence[str]) -> tuple[str, ...]:
    """The makespan systems among ``systems``; an offline variant comes with its base system
    (``plas`` brings ``plas-nostarve``) or when named itself."""
    chosen = set(systems)
    bases = {name: name.removesuffix("-nostarve") for name in OFFLINE_VARIANTS}
    return tuple(s for s in MAKESPAN_SYSTEMS if s in chosen or (s in bases and bases[s] in chosen))


EXPERIMENTS = ("latency", "balancer", "scaling", "makespan")
DEFAULT_EXPERIMENTS = ("latency",)
"""What ``autellix bench`` runs unless told: the policy comparison (Figures 12 and 13)."""


def plan(
    size: SweepSize,
    experiments: Sequence[str] = EXPERIMENTS,
    workloads: Sequence[str] = WORKLOAD_NAMES,
    systems: Sequence[str] = tuple(SYSTEMS),
    seed: int = 0,
) -> list[RunSpec]:
    """Every run of the chosen experiments."""
    unknown = set(experiments) - set(EXPERIMENTS)
    if unknown:
        raise ValueError(f"unknown experiments {sorted(unknown)}; known: {', '.join(EXPERIMENTS)}")
    specs: list[RunSpec] = []
    if "latency" in experiments:
        specs += latency_specs(size, workloads, systems, seed)
    if "balancer" in experiments:
        specs += balancer_specs(size, [w for w in ("sharegpt", "lats") if w in workloads], seed)
    if "scaling" in experiments:
        specs += scaling_specs(size, [w for w in ("sharegpt",) if w in workloads], seed)
    if "makespan" in experiments and "sharegpt" in workloads:
        specs += makespan_specs(size, makespan_systems(systems), seed=seed)
    return specs
