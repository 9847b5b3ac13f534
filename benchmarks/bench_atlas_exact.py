"""Why ATLAS-exact does or does not beat ATLAS on a workload: how often their priorities differ.

    python benchmarks/bench_atlas_exact.py [--workload skewed] [--rates 1,2,3] [--programs 120]

For each rate, runs the workload under ATLAS and under ATLAS-exact on the bench's engine
(``autellix bench`` settings: one A100/8B engine, 32 calls per batch) and prints, per run:

- the mean latency per token (the capacity metric) and the ATLAS/ATLAS-exact ratio;
- in the ATLAS-exact run, the share of calls whose true-DAG critical path (what ATLAS-exact
  ranks by) is below the program-wide scalar ATLAS would give them, and the share for which that
  puts them in a higher-priority queue (only a different queue changes the order);
- the share of call latency spent waiting (is the engine loaded enough that order matters?)
  and the preemptions.
"""

from __future__ import annotations

import argparse
import statistics

from autellix_backend.bench.records import RunSpec
from autellix_backend.bench.runner import BenchSettings, programs_for, sim_config
from autellix_backend.core import CallArrival, CallRecord, SchedulerConfig
from autellix_backend.sim.simulator import Simulator


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
    args = parser.parse_args()
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
