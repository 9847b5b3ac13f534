"""Why ATLAS-exact does or does not beat ATLAS on a workload: how often their priorities differ.

    python benchmarks/bench_atlas_exact.py [--workload skewed] [--rates 1,2,3] [--programs 120]
    python benchmarks/bench_atlas_exact.py --capacity [--workloads skewed,lats,mixed] [--seeds 3]

For each rate, runs the workload under ATLAS and under ATLAS-exact on the bench's engine
(``autellix bench`` settings: one A100/8B engine, 32 calls per batch) and prints, per run:

- the mean latency per token (the capacity metric) and the ATLAS/ATLAS-exact ratio;
- in the ATLAS-exact run, the share of calls whose true-DAG critical path (what ATLAS-exact
  ranks by) is below the program-wide scalar ATLAS would give them, and the share for which that
  puts them in a higher-priority queue (only a different queue changes the order);
- the share of call latency spent waiting (is the engine loaded enough that order matters?)
  and the preemptions.

With ``--capacity`` it searches, like ``autellix bench`` (5% precision, per seed), the capacity
of ATLAS, ATLAS-exact and ATLAS-shape: a variant that knows the shape of each program's DAG
ahead (how many calls remain on the longest path from a call to the program's end, not how long
they are) and ranks a call by that count times the workload's mean call service, so the program
closest to its end runs first. ATLAS-exact only sees the path behind a call; ATLAS-shape sees
the path ahead. It needs the DAG before the calls run (a declared graph, the simulator here), so
it is not a policy the core offers; it measures what the DAG's shape is worth.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from autellix_backend.bench import runner, search
from autellix_backend.bench.capacity import max_rate_meeting
from autellix_backend.bench.records import RunRecord, RunSpec
from autellix_backend.bench.runner import BenchSettings, programs_for, sim_config
from autellix_backend.bench.sweeps import FULL
from autellix_backend.core import CallArrival, CallRecord, Policy, SchedulerConfig
from autellix_backend.core.policies import POLICIES, ATLASPolicy
from autellix_backend.sim import run_simulation
from autellix_backend.sim.simulator import Simulator
from autellix_backend.workloads import ProgramSpec
from autellix_protocol.snapshot import ProgramSnapshot

AHEAD: dict[str, float] = {}
"""Call id -> calls left on the longest path from it to its program's end x mean call service."""


def path_ahead(programs: Sequence[ProgramSpec], call_service: float) -> dict[str, float]:
    """Each call's count of calls on the longest path from it (inclusive) to its program's end,
    times ``call_service`` seconds."""
    out: dict[str, float] = {}
    for program in programs:
        children: dict[str, list[str]] = {c.call_id: [] for c in program.calls}
        for call in program.calls:
            for parent in call.parent_ids:
                children[parent].append(call.call_id)

        @functools.cache
        def left(call_id: str, children: dict[str, list[str]] = children) -> int:
            return 1 + max((left(k) for k in children[call_id]), default=0)

        out.update({c.call_id: left(c.call_id) * call_service for c in program.calls})
    return out


class ATLASShapePolicy(ATLASPolicy):
    """A call's priority is the path ahead of it (``AHEAD``), not the one behind it."""

    name = Policy.ATLAS_EXACT

    def priority(self, snapshot: ProgramSnapshot, arrival: CallArrival) -> float:
        # A refresh (no arrival) must never move a waiting call: 0 keeps it where it is.
        return AHEAD.get(arrival.call_id, 0.0)


def _shaped_run_one(spec: RunSpec, settings: BenchSettings, call_service: float) -> RunRecord:
    AHEAD.clear()
    AHEAD.update(path_ahead(programs_for(spec), call_service))
    return runner.run_one(spec, settings)


def _search(
    curve: RunSpec, target: float, call_service: float | None, settings: BenchSettings
) -> list[RunRecord]:
    """One curve's capacity search; with ``call_service``, ``atlas_exact`` is ATLAS-shape."""
    stock = POLICIES[Policy.ATLAS_EXACT], search.run_one  # type: ignore[attr-defined]
    if call_service is not None:
        POLICIES[Policy.ATLAS_EXACT] = ATLASShapePolicy
        search.run_one = functools.partial(_shaped_run_one, call_service=call_service)  # type: ignore[attr-defined]
    try:
        return search.search_capacity(
            curve,
            target,
            settings,
            precision=0.05,
            start=search.start_rate(curve, FULL.search_start),
            window=FULL.window_seconds[curve.workload],
        )
    finally:
        POLICIES[Policy.ATLAS_EXACT], search.run_one = stock  # type: ignore[attr-defined]


def mean_call_service(workload: str, settings: BenchSettings) -> float:
    """Mean engine time of a call under ATLAS at the workload's light-load reference rate."""
    spec = RunSpec(
        "reference",
        workload,
        "atlas",
        FULL.num_programs[workload],
        rate=search.reference_rate(workload),
    )
    calls = run_simulation(programs_for(spec), sim_config(spec, settings)).calls
    return statistics.mean(c.service for c in calls)


def _spread(values: list[float], unit: str = "") -> str:
    """Median and range."""
    return f"{statistics.median(values):.2f}{unit} ({min(values):.2f}-{max(values):.2f})"


def capacities(workloads: Sequence[str], seeds: int, workers: int, out: Path | None) -> None:
    """Print ATLAS, ATLAS-exact and ATLAS-shape capacities (median, range over seeds)."""
    settings = BenchSettings()
    systems = ("atlas", "exact", "shape")
    print(
        "| workload | call service (s) | ATLAS | ATLAS-exact | ATLAS-shape "
        "| exact / ATLAS | shape / ATLAS |"
    )
    print("|---|---|---|---|---|---|---|")
    rows: list[dict[str, object]] = []
    for workload in workloads:
        size = FULL.num_programs[workload]
        refs = [
            runner.run_one(
                RunSpec("reference", workload, s, size, rate=search.reference_rate(workload)),
                settings,
            )
            for s in ("atlas", "atlas_exact")
        ]
        target = search.latency_targets(refs, 5.0)[workload]
        service = mean_call_service(workload, settings)
        jobs = [
            (system, k, RunSpec("latency", workload, name, size, seed=k))
            for k in range(seeds)
            for system, name in zip(systems, ("atlas", "atlas_exact", "atlas_exact"), strict=True)
        ]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [
                pool.submit(
                    _search, curve, target, service if system == "shape" else None, settings
                )
                for system, _, curve in jobs
            ]
            probes = [f.result() for f in futures]
        cap: dict[str, list[float]] = {s: [] for s in systems}
        for (system, _seed, _), found in zip(jobs, probes, strict=True):
            rate = max_rate_meeting([(p.spec.rate, p.mean) for p in found], target).rate
            cap[system].append(rate)
            rows += [{**p.row(), "variant": system} for p in found]

        ratios = {s: [a / b for a, b in zip(cap[s], cap["atlas"], strict=True)] for s in systems}
        print(
            f"| {workload} | {service:.2f} | {_spread(cap['atlas'])} | {_spread(cap['exact'])} "
            f"| {_spread(cap['shape'])} | {_spread(ratios['exact'], 'x')} "
            f"| {_spread(ratios['shape'], 'x')} |",
            flush=True,
        )
    if out is not None:
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))


def queue_level(priority: float, config: SchedulerConfig) -> int:
    """The queue a discretised policy puts a call of ``priority`` in."""
    bound, level = 0.0, 0
    for k in range(config.num_queues - 1):
        bound += config.base_quantum * config.quantum_growth**k
        if priority >= bound:
            level = k + 1
    return level


def measure(workload: str, system: str, rate: float, programs: int, seed: int) -> dict[str, float]:
    """One run's latency, priority and waiting statistics."""
    spec = RunSpec("latency", workload, system, programs, rate=rate, seed=seed)
    settings = BenchSettings()
    sim = Simulator(programs_for(spec), sim_config(spec, settings))
    seen: list[tuple[float, float]] = []
    admit = sim.tracker.admit

    def spy(arrival: CallArrival, now: float, *, engine_id: str | None = None) -> CallRecord:
        record = admit(arrival, now, engine_id=engine_id)
        seen.append((record.snapshot.service, record.snapshot.critical_path))
        return record

    sim.tracker.admit = spy  # type: ignore[method-assign]
    result = sim.run()
    config = settings.scheduler
    latency = sum(c.finish_time - c.arrival_time for c in result.calls)
    return {
        "mean": result.summary()["mean_latency_per_token"],
        "path_below": sum(p < s - 1e-9 for s, p in seen) / len(seen),
        "higher_queue": sum(queue_level(p, config) < queue_level(s, config) for s, p in seen)
        / len(seen),
        "gap_s": statistics.mean(s - p for s, p in seen),
        "waiting": sum(c.wait for c in result.calls) / latency,
        "preemptions": float(sum(c.num_preemptions for c in result.calls)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="skewed")
    parser.add_argument("--rates", default="1,2,3,4")
    parser.add_argument("--programs", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--capacity", action="store_true", help="search capacities instead")
    parser.add_argument("--workloads", default="skewed,lats,mixed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="JSON lines of every probe")
    args = parser.parse_args()
    if args.capacity:
        capacities(args.workloads.split(","), args.seeds, args.workers, args.out)
        return
    print(
        "| rate | ATLAS | ATLAS-exact | ATLAS/exact | path < scalar | higher queue "
        "| mean gap (s) | waiting share | preemptions ATLAS / exact |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for rate in (float(r) for r in args.rates.split(",")):
        atlas = measure(args.workload, "atlas", rate, args.programs, args.seed)
        exact = measure(args.workload, "atlas_exact", rate, args.programs, args.seed)
        print(
            f"| {rate:g} | {atlas['mean']:.4f} | {exact['mean']:.4f} "
            f"| {atlas['mean'] / exact['mean']:.2f}x | {exact['path_below']:.1%} "
            f"| {exact['higher_queue']:.1%} | {exact['gap_s']:.2f} | {exact['waiting']:.0%} "
            f"| {atlas['preemptions']:.0f} / {exact['preemptions']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
