"""Sweep the scheduler settings the paper leaves open, on the simulator.

    python benchmarks/sweep_scheduler_defaults.py [--programs 150] [--jobs 2]

For each workload at a load where calls queue (A100/Llama-3-8B profile, 32 batch slots), runs
PLAS (ATLAS for LATS) over a grid of Q1 quantum, number of queues and anti-starvation beta,
and prints mean and P95 seconds per generated token. The defaults in SchedulerConfig are the
best row of this sweep (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from autellix_backend.core import Policy, SchedulerConfig
from autellix_backend.sim import EngineConfig, SimConfig, run_simulation
from autellix_backend.workloads import make_workload

WORKLOADS = {"sharegpt": (Policy.PLAS, 4.0), "bfcl": (Policy.PLAS, 2.0)}
QUANTA = (0.01, 0.05, 0.25)
NUM_QUEUES = (4, 8)
BETAS: tuple[float | None, ...] = (2.0, 8.0, None)


def run_one(job: tuple[str, float, int, float | None, int]) -> dict[str, object]:
    workload, quantum, num_queues, beta, num_programs = job
    policy, rate = WORKLOADS[workload]
    programs = make_workload(workload, num_programs, seed=0, rate=rate)
    config = SimConfig(
        scheduler=SchedulerConfig(
            policy=policy, base_quantum=quantum, num_queues=num_queues, starvation_beta=beta
        ),
        engine=EngineConfig(max_num_seqs=32),
    )
    result = run_simulation(programs, config)
    per_token = [p.latency / max(1, p.output_tokens) for p in result.programs]
    return {
        "workload": workload,
        "base_quantum": quantum,
        "num_queues": num_queues,
        "beta": "off" if beta is None else beta,
        "mean_s_per_token": statistics.fmean(per_token),
        "p95_s_per_token": statistics.quantiles(per_token, n=20)[18],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=150)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/sweep_scheduler_defaults.csv"))
    args = parser.parse_args()
    jobs = [
        (w, q, k, b, args.programs)
        for w, q, k, b in itertools.product(WORKLOADS, QUANTA, NUM_QUEUES, BETAS)
    ]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(run_one, jobs))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for workload in WORKLOADS:
        best = min(
            (r for r in rows if r["workload"] == workload),
            key=lambda r: float(r["mean_s_per_token"]),  # type: ignore[arg-type]
        )
        print(f"best for {workload}: {best}")
    print(
        f"{'workload':<9} {'quantum':>8} {'K':>3} {'beta':>5} {'mean s/tok':>11} {'p95 s/tok':>10}"
    )
    for r in rows:
        print(
            f"{r['workload']:<9} {r['base_quantum']:>8} {r['num_queues']:>3} {r['beta']!s:>5} "
            f"{float(r['mean_s_per_token']):>11.4f} {float(r['p95_s_per_token']):>10.4f}"  # type: ignore[arg-type]
        )


if __name__ == "__main__":
    main()
