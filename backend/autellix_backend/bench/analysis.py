"""Read the paper's comparisons off a sweep: capacities, ratios, gap to SRPT, scaling, makespan."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from autellix_backend.bench.capacity import (
    Capacity,
    Ratio,
    capacity_ratio,
    max_rate_meeting,
    over_seeds,
)
from autellix_backend.bench.records import TARGET_METRIC, RunRecord

SLO_FACTOR = 5.0
"""Latency target = this factor times the best mean latency per token at the lowest rate."""
BEST_POLICIES = ("plas", "atlas", "atlas_exact")
"""Autellix's policies; the best of them is compared with SRPT."""
RATIO_PAIRS = (
    *(
        (ours, theirs)
        for ours in ("plas", "atlas")
        for theirs in ("vllm", "vllm-opt", "mlfq", "srpt")
    ),
    ("atlas_exact", "atlas"),
)
"""``(ours, theirs)`` capacity ratios of the throughput table (SRPT is the oracle bound)."""


def select(records: Sequence[RunRecord], experiment: str, **match: object) -> list[RunRecord]:
    """Records of ``experiment`` whose spec fields equal ``match``."""
    return [
        r
        for r in records
        if r.spec.experiment == experiment
        and all(getattr(r.spec, k) == v for k, v in match.items())
    ]


def latency_target(
    records: Sequence[RunRecord],
    workload: str,
    factor: float = SLO_FACTOR,
    experiment: str = "latency",
) -> float:
    """The workload's mean-latency-per-token target: ``factor`` x the best unloaded latency.

    Capacity-search probes carry the target they were searched against, which wins; for older
    grid sweeps the latency sweep sets it, and without one the runs of ``experiment`` do.
    """
    for r in records:
        if r.spec.workload == workload and TARGET_METRIC in r.metrics:
            return r.metrics[TARGET_METRIC]
    runs = select(records, "latency", workload=workload) or select(
        records, experiment, workload=workload
    )
    if not runs:
        raise ValueError(f"no runs for {workload!r}")
    lowest = min(r.spec.rate for r in runs)
    return factor * min(r.mean for r in runs if r.spec.rate == lowest)


def capacity(
    runs: Sequence[RunRecord], target: float, metric: str = "mean_latency_per_token"
) -> Capacity:
    """Highest rate of ``runs`` (one curve, any seeds) meeting ``target`` on ``metric``.

    Each seed's capacity is read off its own runs, against the target its probes were
    searched with when they carry one (seeds searched in separate benches may have derived
    different targets, and their probes bracket only their own); several seeds give their
    median and range.
    """
    seeds = sorted({r.spec.seed for r in runs})
    capacities = []
    for seed in seeds:
        own = [r for r in runs if r.spec.seed == seed]
        searched = next((r.metrics[TARGET_METRIC] for r in own if TARGET_METRIC in r.metrics), None)
        if metric != "mean_latency_per_token":  # searches target the mean only
            searched = None
        points = [(r.spec.rate, r.metrics[metric]) for r in own]
        capacities.append(max_rate_meeting(points, target if searched is None else searched))
    return over_seeds(capacities)


def first_seed(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """The runs of the lowest seed (what the figures draw: one curve per system)."""
    seed = min((r.spec.seed for r in runs), default=0)
    return [r for r in runs if r.spec.seed == seed]


@dataclass(frozen=True, slots=True)
class WorkloadComparison:
    """One workload's row of the throughput-at-equal-latency table."""

    workload: str
    target: float
    """Mean latency per token target (s/token)."""
    capacities: dict[str, Capacity]
    """Highest rate meeting the target, per system."""
    ratios: dict[tuple[str, str], Ratio]
    """``(ours, theirs)`` -> capacity ratio."""
    srpt_gap: float
    """Worst ratio, over the rates every system ran (first seed), of the best Autellix policy's
    mean latency to SRPT's."""
    srpt_gap_at_target: float
    """Same ratio at the highest such rate where the best policy meets the target (else the
    lowest)."""


def compare_workload(
    records: Sequence[RunRecord], workload: str, factor: float = SLO_FACTOR
) -> WorkloadComparison:
    """Capacities, capacity ratios and the SRPT gap of one workload's latency sweep."""
    target = latency_target(records, workload, factor)
    runs = select(records, "latency", workload=workload)
    systems = list(dict.fromkeys(r.spec.system for r in runs))
    capacities = {s: capacity([r for r in runs if r.spec.system == s], target) for s in systems}
    ratios = {
        (a, b): capacity_ratio(capacities[a], capacities[b])
        for a, b in RATIO_PAIRS
        if a in capacities and b in capacities
    }
    gaps: list[tuple[float, float, float]] = []
    shown = first_seed(runs)
    for rate in sorted({r.spec.rate for r in shown}):
        at = {r.spec.system: r.mean for r in shown if r.spec.rate == rate}
        best = min((at[s] for s in BEST_POLICIES if s in at), default=None)
        if best is not None and "srpt" in at and at["srpt"] > 0:
            gaps.append((rate, best, best / at["srpt"]))
    worst = max((g for _, _, g in gaps), default=float("nan"))
    meeting = [g for _, best, g in gaps if best <= target]
    at_target = meeting[-1] if meeting else (gaps[0][2] if gaps else float("nan"))
    return WorkloadComparison(workload, target, capacities, ratios, worst, at_target)


@dataclass(frozen=True, slots=True)
class CurveCapacity:
    """Capacity of one curve of a multi-engine experiment."""

    label: str
    """The balancer or the engine count."""
    capacity: Capacity


def balancer_capacities(
    records: Sequence[RunRecord], workload: str, target: float, num_engines: int | None = None
) -> list[CurveCapacity]:
    """Figure 14: capacity per balancer (on ``num_engines`` engines, if given)."""
    runs = [
        r
        for r in select(records, "balancer", workload=workload)
        if num_engines is None or r.spec.num_engines == num_engines
    ]
    balancers = list(dict.fromkeys(r.spec.balancer for r in runs))
    return [
        CurveCapacity(b, capacity([r for r in runs if r.spec.balancer == b], target))
        for b in balancers
    ]


def scaling_capacities(
    records: Sequence[RunRecord], workload: str, target: float
) -> list[CurveCapacity]:
    """Figure 15: capacity per engine count."""
    runs = select(records, "scaling", workload=workload)
    counts = sorted({r.spec.num_engines for r in runs})
    return [
        CurveCapacity(str(n), capacity([r for r in runs if r.spec.num_engines == n], target))
        for n in counts
    ]


def makespans(records: Sequence[RunRecord]) -> dict[int, dict[str, float]]:
    """Figure 16: batch size -> system -> makespan (s), the mean over seeds."""
    runs: dict[int, dict[str, list[float]]] = {}
    for r in select(records, "makespan"):
        runs.setdefault(r.spec.num_programs, {}).setdefault(r.spec.system, []).append(
            r.metrics["makespan"]
        )
    return {n: {s: statistics.fmean(v) for s, v in row.items()} for n, row in sorted(runs.items())}
