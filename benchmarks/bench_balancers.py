"""Balancers at equal arrival rates (Figure 14 without the capacity search), as bench records.

    python benchmarks/bench_balancers.py --engines 8 --rates 32,40 --out bal8
    autellix bench report docs/benchmarks/figures/runs.json bal8/runs.json --out <dir>

Runs every balancer of ``autellix bench`` (round-robin, least-used, locality, prefix-aware,
cache-aware) on ``--engines`` simulated engines at each total rate, ShareGPT under PLAS (LATS under
ATLAS with ``--workload lats``), with the full run's program count (200 per engine for ShareGPT),
and writes ``runs.json`` for ``autellix bench report``. A capacity search needs 5-7 probes per
balancer; on a loaded machine one 8-engine probe takes minutes, so this reads the separation at
equal load instead: latency per token and prefix-cache hit rate side by side, from a rate every
balancer meets to one where round-robin fails the latency target. Each record carries the target
(``--target``, default the bench's ShareGPT target: 5x PLAS's latency at 0.5 programs/s on one
engine), so the report still reads capacities (as bounds where no crossing was run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from autellix_backend.bench.records import RunSpec, write_records
from autellix_backend.bench.runner import BenchSettings, run_all
from autellix_backend.bench.search import with_target
from autellix_backend.bench.sweeps import AUTELLIX_SYSTEM, BALANCERS, FULL

SHAREGPT_TARGET = 0.09652059577140656
"""The bench's ShareGPT target (5x PLAS's mean latency per token at 0.5 programs/s, one engine)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=8)
    parser.add_argument("--rates", default="32,40", help="Total programs/s, comma-separated.")
    parser.add_argument("--workload", default="sharegpt")
    parser.add_argument("--balancers", default=",".join(BALANCERS))
    parser.add_argument("--programs", type=int, default=0, help="0: the full run's count.")
    parser.add_argument("--target", type=float, default=SHAREGPT_TARGET)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("results/balancers"))
    args = parser.parse_args()
    programs = args.programs or FULL.num_programs[args.workload] * args.engines
    specs = [
        RunSpec(
            "balancer",
            args.workload,
            AUTELLIX_SYSTEM[args.workload],
            programs,
            rate=float(rate),
            num_engines=args.engines,
            balancer=balancer,
        )
        for rate in args.rates.split(",")
        for balancer in args.balancers.split(",")
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    records = run_all(
        specs, BenchSettings(), workers=args.workers, checkpoint=args.out / "runs.partial.jsonl"
    )
    write_records([with_target(r, args.target) for r in records], args.out)
    print("| rate | balancer | mean s/token | P95 | prefix hit | preemptions |")
    print("|---|---|---|---|---|---|")
    for r in records:
        m = r.metrics
        print(
            f"| {r.spec.rate:g} | {r.spec.balancer} | {m['mean_latency_per_token']:.4f} "
            f"| {m['p95_latency_per_token']:.4f} | {m['prefix_hit_rate']:.2f} "
            f"| {m['num_preemptions']:.0f} |"
        )


if __name__ == "__main__":
    main()
