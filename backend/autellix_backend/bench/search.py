"""Capacity by search: the highest arrival rate meeting a latency target, bracketed then bisected.

A grid of rates only bounds a capacity when the curve does not cross the target inside it. Here
each curve (a workload, a system, an engine count, a balancer, a seed) is searched instead: from a
light-load rate, double (or halve) until one rate meets the target and the next does not, then
bisect (geometrically) until the two are within ``precision`` of each other. The probes are
ordinary ``RunRecord``s, each carrying the target in its metrics (``TARGET_METRIC``), so
``analysis`` reads the capacity off them like off a sweep, and always finds the crossing.

The target is fixed before any search: ``factor`` x the best system's mean latency per token at
the workload's reference rate (light load, one engine, the first seed).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from autellix_backend.bench.records import TARGET_METRIC, RunRecord, RunSpec
from autellix_backend.bench.runner import (
    BenchSettings,
    read_checkpoint,
    run_all,
    run_cost,
    run_one,
)
from autellix_backend.bench.sweeps import RATES

FULL_PRECISION = 0.05
"""Relative width of the final bracket in the full run."""
QUICK_PRECISION = 1.0
"""Relative width of the final bracket in ``--quick``: the factor-2 bracket itself, no bisection
(the capacity is interpolated between its ends, ``bench.capacity.max_rate_meeting``)."""
MAX_STEPS = 6
"""Doublings (or halvings) tried before a curve is left as a bound: 64x either way (a probe's
program count grows with its rate, so more would only try huge runs)."""


def reference_rate(workload: str) -> float:
    """Light-load arrival rate (programs/s, one engine) where the target is measured."""
    return RATES[workload][0]


def curve_of(spec: RunSpec) -> RunSpec:
    """The curve a run belongs to: its spec without the rate."""
    return dataclasses.replace(spec, rate=0.0)


def probe_spec(curve: RunSpec, rate: float, window: float) -> RunSpec:
    """The run of ``curve`` at ``rate``: its programs arrive over ``window`` seconds.

    That is ``rate * window`` programs, but never fewer than ``curve.num_programs``. With a fixed
    count instead, an overloaded engine would only ever face a finite batch, whose latency is
    bounded, and a capacity could exceed any rate tried.
    """
    rate = float(f"{rate:.6g}")
    return dataclasses.replace(
        curve, rate=rate, num_programs=max(curve.num_programs, round(rate * window))
    )


def on_curve(spec: RunSpec, curve: RunSpec) -> bool:
    """Whether ``spec`` is a probe of ``curve`` (same everything but rate and program count)."""
    return dataclasses.replace(spec, rate=0.0, num_programs=curve.num_programs) == curve


def with_target(record: RunRecord, target: float) -> RunRecord:
    """``record`` with ``target`` in its metrics."""
    return RunRecord(record.spec, {**record.metrics, TARGET_METRIC: target}, record.wall_seconds)


def search_capacity(
    curve: RunSpec,
    target: float,
    settings: BenchSettings,
    *,
    precision: float,
    start: float,
    window: float,
    known: Mapping[RunSpec, RunRecord] | None = None,
) -> list[RunRecord]:
    """Probe ``curve`` until its capacity under ``target`` is bracketed within ``precision``.

    Rates go up (or down) from ``start`` by factors of 2, then the bracket is halved in log space;
    each probe's programs arrive over ``window`` seconds. Probes already in ``known`` are not
    simulated again. Returns every probe, with the target.
    """
    if precision <= 0:
        raise ValueError("precision must be positive")
    probes: list[RunRecord] = []

    def meets(rate: float) -> bool:
        spec = probe_spec(curve, rate, window)
        record = (known or {}).get(spec) or run_one(spec, settings)
        probes.append(with_target(record, target))
        return record.mean <= target

    low: float | None = None
    high: float | None = None
    rate = start
    if meets(rate):
        low = rate
        for _ in range(MAX_STEPS):
            rate *= 2
            if not meets(rate):
                high = rate
                break
            low = rate
    else:
        high = rate
        for _ in range(MAX_STEPS):
            rate /= 2
            if meets(rate):
                low = rate
                break
            high = rate
    if low is None or high is None:
        return probes
    while high / low - 1 > precision:
        middle = math.sqrt(low * high)
        if meets(middle):
            low = middle
        else:
            high = middle
    return probes


def latency_targets(references: Sequence[RunRecord], factor: float) -> dict[str, float]:
    """Workload -> ``factor`` x the best mean latency per token among ``references``."""
    best: dict[str, float] = {}
    for r in references:
        best[r.spec.workload] = min(best.get(r.spec.workload, math.inf), r.mean)
    return {w: factor * latency for w, latency in best.items()}


def start_rate(curve: RunSpec, starts: Mapping[str, float]) -> float:
    """Where ``curve``'s search starts: its workload's ``starts`` rate (default: the top of its
    ``RATES``) times its engine count."""
    per_engine = starts.get(curve.workload, RATES[curve.workload][-1])
    return float(f"{per_engine * curve.num_engines:.6g}")


def run_searches(
    curves: Sequence[RunSpec],
    targets: Mapping[str, float],
    settings: BenchSettings,
    *,
    precision: float,
    windows: Mapping[str, float],
    workers: int,
    progress: bool = True,
    checkpoint: Path | None = None,
    known: Sequence[RunRecord] = (),
    starts: Mapping[str, float] | None = None,
) -> list[RunRecord]:
    """Search every curve (one process each, ``workers`` at a time); all probes, curve by curve.

    Each curve starts at its workload's rate in ``starts`` (default: the top of its ``RATES``)
    times its engine count, and its probes' programs arrive over its workload's ``windows``
    seconds. ``known`` runs and those in
    ``checkpoint`` are reused; new probes are appended to ``checkpoint`` as each curve finishes.
    """
    done = {r.spec: r for r in known}
    if checkpoint is not None:
        done.update(read_checkpoint(checkpoint))
    jobs = [
        (
            curve,
            targets[curve.workload],
            start_rate(curve, starts or {}),
            windows[curve.workload],
            {s: r for s, r in done.items() if on_curve(s, curve)},
        )
        for curve in curves
    ]
    results: dict[int, list[RunRecord]] = {}
    bar = tqdm(total=len(jobs), desc="capacity search", disable=not progress, unit="curve")

    def finished(i: int, probes: list[RunRecord]) -> None:
        results[i] = probes
        if checkpoint is not None:
            fresh = [p for p in probes if p.spec not in done]
            with checkpoint.open("a") as handle:
                handle.writelines(json.dumps(p.row()) + "\n" for p in fresh)
        bar.update()

    order = sorted(range(len(jobs)), key=lambda i: -run_cost(jobs[i][0]))
    if workers <= 1:
        for i in order:
            curve, target, start, window, seen = jobs[i]
            finished(
                i,
                search_capacity(
                    curve,
                    target,
                    settings,
                    precision=precision,
                    start=start,
                    window=window,
                    known=seen,
                ),
            )
    else:
        with ProcessPoolExecutor(max_workers=min(workers, os.cpu_count() or 1)) as pool:
            futures = {
                pool.submit(
                    search_capacity,
                    jobs[i][0],
                    jobs[i][1],
                    settings,
                    precision=precision,
                    start=jobs[i][2],
                    window=jobs[i][3],
                    known=jobs[i][4],
                ): i
                for i in order
            }
            for future in as_completed(futures):
                finished(futures[future], future.result())
    bar.close()
    return [p for i in range(len(jobs)) for p in results[i]]


def reference_runs(
    curves: Sequence[RunSpec],
    settings: BenchSettings,
    *,
    workers: int,
    progress: bool = True,
    checkpoint: Path | None = None,
) -> list[RunRecord]:
    """The light-load runs that fix each workload's target, before any search.

    Every system of the curves of the first seed runs its workload's one-engine program count at
    the workload's reference rate on one engine (experiment ``reference``).
    """
    if not curves:
        return []
    seed = min(c.seed for c in curves)
    specs = dict.fromkeys(
        RunSpec(
            "reference",
            c.workload,
            c.system,
            max(1, c.num_programs // c.num_engines),
            rate=reference_rate(c.workload),
            seed=seed,
        )
        for c in curves
        if c.seed == seed
    )
    return run_all(
        list(specs),
        settings,
        workers=workers,
        progress=progress,
        desc="reference",
        checkpoint=checkpoint,
    )
