"""Wall time of simulating one hour of a one-engine ShareGPT-shaped workload at 80% load.

    python benchmarks/bench_simulator_speed.py [--hours 1] [--load 0.8] [--policy plas]

Load is relative to the engine's capacity, measured first: the output-token rate of an offline
batch of programs (all at t=0) on the same engine while it is saturated, in programs/s. The
timed run is a Poisson stream at ``load * capacity`` programs per second for ``hours``
simulated hours.
Prints both runs' wall times and what the engine did.
Target (issue 2): under 60 s for one hour at 80%.
"""

from __future__ import annotations

import argparse
import time

from autellix_backend.core import SchedulerConfig
from autellix_backend.sim import EngineConfig, SimConfig, SimResult, run_simulation
from autellix_backend.workloads import make_workload


def capacity(config: SimConfig, *, num_programs: int, seed: int) -> tuple[float, float]:
    """Programs per second the engine sustains when saturated; and the wall seconds taken.

    An offline batch (all programs at t=0) keeps the engine full during the first part of
    its makespan; the output tokens of calls finished between 10% and 50% of the makespan,
    per second, divided by the mean output tokens of a program, is the capacity. (Counting
    finished programs instead would favour the short ones, which finish first.)
    """
    programs = make_workload("sharegpt", num_programs, seed=seed + 1, arrivals="batch")
    start = time.perf_counter()
    result = run_simulation(programs, config)
    lo, hi = 0.1 * result.makespan, 0.5 * result.makespan
    tokens = sum(c.output_tokens for c in result.calls if lo <= c.finish_time < hi)
    per_program = sum(p.output_tokens for p in programs) / len(programs)
    return tokens / (hi - lo) / per_program, time.perf_counter() - start


def describe(result: SimResult) -> str:
    s = result.summary()
    e = result.engines[0]
    return (
        f"programs {len(result.programs)}, calls {len(result.calls)}, "
        f"makespan {result.makespan:.0f} s, engine steps {e.num_steps}, "
        f"busy {e.busy_time / result.makespan:.0%}, preemptions {e.num_preemptions}, "
        f"prefix hit rate {e.prefix_hit_rate:.0%}, "
        f"mean latency/token {s['mean_latency_per_token'] * 1000:.1f} ms, "
        f"p99 {s['p99_latency_per_token'] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--load", type=float, default=0.8)
    parser.add_argument("--policy", default="plas")
    parser.add_argument("--profile", default="a100-llama3-8b")
    parser.add_argument("--calibration-programs", type=int, default=300)
    parser.add_argument(
        "--capacity", type=float, help="programs/s at saturation; skips the calibration run"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()

    config = SimConfig(
        scheduler=SchedulerConfig(policy=args.policy),
        engine=EngineConfig(profile=args.profile),
    )
    if args.capacity is None:
        rate_max, calibration_wall = capacity(
            config, num_programs=args.calibration_programs, seed=args.seed
        )
        print(f"capacity {rate_max:.3f} programs/s (offline batch, {calibration_wall:.1f} s wall)")
    else:
        rate_max = args.capacity
    rate = args.load * rate_max
    num_programs = max(1, round(rate * args.hours * 3600))
    programs = make_workload("sharegpt", num_programs, seed=args.seed, rate=rate)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = run_simulation(programs, config, progress=args.progress)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"load {args.load:.0%}: {rate:.3f} programs/s over {args.hours:g} simulated hour(s)")
    print(describe(result))
    print(
        f"simulated {result.makespan:.0f} s in {wall:.1f} s wall, {cpu:.1f} s CPU "
        f"({result.makespan / wall:.0f}x real time)"
    )


if __name__ == "__main__":
    main()
