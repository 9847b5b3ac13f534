"""KV retention through tool calls, and cache-aware routing, side by side on the simulator.

    python benchmarks/bench_kv_retention.py [--programs 120] [--rates 1 1.5 2] \
        [--kv-blocks 2048 4096]

One run of the ``bfcl_tools`` workload (BFCL multi-turn programs whose tool steps take their
API's time) on 4 simulated A100 engines (Llama-3-8B profile) with a small KV cache, so other
programs' prefills evict a program's prefix during its tool calls, at each arrival rate and
KV size given (a load sweep: recomputation eats engine capacity, so it only shows in latency
once the engines are busy). At each (rate, KV size), every combination of ``kv_retention``
(off, ttl, dag) and balancer (locality, prefix_aware, cache_aware) sees the same arrivals.
Reported per combination: mean and P95 program latency, the prefill tokens recomputed
(prompt tokens a program had already computed in its previous call that were not found in
the prefix cache), all prefill tokens computed, and the prefix hit rate. Writes a Markdown
table to stdout and, with ``--out DIR``, ``kv_retention.json`` and ``kv_retention.png`` (the
off/on ratios against the rate). Targets (issue 18): >= 1.3x lower mean program latency and
>= 2x fewer recomputed prefill tokens with retention than without.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from autellix_backend.core import KVRetention, RetentionRule, SchedulerConfig
from autellix_backend.sim import CallResult, EngineConfig, SimConfig, SimResult, run_simulation
from autellix_backend.workloads import ProgramSpec, make_workload

BALANCERS = ("locality", "prefix_aware", "cache_aware")


@dataclass(frozen=True, slots=True)
class Row:
    """What one combination measured."""

    rate: float
    kv_blocks: int
    retention: str
    balancer: str
    mean_latency: float
    p95_latency: float
    recomputed_tokens: int
    prefill_tokens: int
    hit_rate: float
    wall_s: float


def recomputed_tokens(calls: tuple[CallResult, ...], programs: list[ProgramSpec]) -> int:
    """Prompt tokens computed before, in the program's previous call, and missed now."""
    parent_of = {c.call_id: c.parent_ids for p in programs for c in p.calls}
    by_id = {c.call_id: c for c in calls}
    total = 0
    for call in calls:
        parents = parent_of[call.call_id]
        if not parents:
            continue
        prev = by_id[parents[-1]]
        seen = min(call.prompt_tokens, prev.prompt_tokens + prev.output_tokens)
        total += max(0, seen - call.cached_tokens)
    return total


def measure(
    programs: list[ProgramSpec],
    retention: str,
    balancer: str,
    args: argparse.Namespace,
    *,
    rate: float,
    kv_blocks: int,
) -> Row:
    config = SimConfig(
        scheduler=SchedulerConfig(
            kv_retention=KVRetention(retention),
            retention_rule=RetentionRule(
                ttl_slack=args.ttl_slack,
                max_held_fraction=args.held_fraction,
                memory_value=args.memory_value,
            ),
        ),
        engine=EngineConfig(profile="a100-llama3-8b", num_kv_blocks=kv_blocks),
        num_engines=4,
        balancer=balancer,
        seed=args.seed,
    )
    start = time.perf_counter()
    result: SimResult = run_simulation(programs, config)
    wall = time.perf_counter() - start
    latencies = sorted(p.latency for p in result.programs)
    query = sum(e.prefix_query_tokens for e in result.engines)
    hits = sum(e.prefix_hit_tokens for e in result.engines)
    return Row(
        rate=rate,
        kv_blocks=kv_blocks,
        retention=retention,
        balancer=balancer,
        mean_latency=statistics.fmean(latencies),
        p95_latency=latencies[int(0.95 * (len(latencies) - 1))],
        recomputed_tokens=recomputed_tokens(result.calls, programs),
        prefill_tokens=sum(e.num_prefill_tokens for e in result.engines),
        hit_rate=hits / query if query else 0.0,
        wall_s=wall,
    )


def table(rows: list[Row]) -> str:
    off = {(r.rate, r.kv_blocks, r.balancer): r for r in rows if r.retention == "off"}
    lines = [
        "| rate /s | KV blocks | retention | balancer | mean latency s | P95 s "
        "| recomputed prefill tokens | all prefill tokens | hit rate | latency off/on "
        "| recomputed off/on |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = off.get((r.rate, r.kv_blocks, r.balancer), r)
        ratio = base.mean_latency / r.mean_latency
        recompute = base.recomputed_tokens / r.recomputed_tokens if r.recomputed_tokens else 0.0
        lines.append(
            f"| {r.rate:g} | {r.kv_blocks:,} | {r.retention} | {r.balancer} "
            f"| {r.mean_latency:.2f} | {r.p95_latency:.2f} "
            f"| {r.recomputed_tokens:,} | {r.prefill_tokens:,} | {r.hit_rate:.1%} "
            f"| {ratio:.2f}x | {recompute:.2f}x |"
        )
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    """Latency and recomputation with retention on, relative to off, against the load."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    off = {(r.rate, r.kv_blocks, r.balancer): r for r in rows if r.retention == "off"}
    lines: dict[tuple[int, str, str], list[Row]] = defaultdict(list)
    for r in rows:
        if r.retention != "off":
            lines[(r.kv_blocks, r.retention, r.balancer)].append(r)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for (kv, retention, balancer), points in sorted(lines.items()):
        points.sort(key=lambda r: r.rate)
        bases = [off[(r.rate, r.kv_blocks, r.balancer)] for r in points]
        rates = [r.rate for r in points]
        label = f"{retention} + {balancer}, {kv:,} blocks"
        style = "-" if retention == "dag" else "--"
        axes[0].plot(
            rates,
            [b.mean_latency / r.mean_latency for r, b in zip(points, bases, strict=True)],
            style,
            marker="o",
            label=label,
        )
        axes[1].plot(
            rates,
            [
                b.recomputed_tokens / max(r.recomputed_tokens, 1)
                for r, b in zip(points, bases, strict=True)
            ],
            style,
            marker="o",
        )
    by_balancer: dict[tuple[int, str], list[Row]] = defaultdict(list)
    for r in off.values():
        by_balancer[(r.kv_blocks, r.balancer)].append(r)
    for (kv, balancer), points in sorted(by_balancer.items()):
        points.sort(key=lambda r: r.rate)
        axes[2].plot(
            [r.rate for r in points],
            [r.mean_latency for r in points],
            marker="o",
            label=f"off + {balancer}, {kv:,} blocks",
        )
    axes[0].axhline(1.3, color="grey", lw=0.8, ls=":")
    axes[1].axhline(2.0, color="grey", lw=0.8, ls=":")
    titles = (
        "mean program latency, off / on (target 1.3x)",
        "recomputed prefill tokens, off / on (target 2x)",
        "mean program latency (s), retention off",
    )
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("programs / s")
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.suptitle("bfcl_tools, 4 x A100 (Llama-3-8B profile), small KV cache, PLAS")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=120)
    parser.add_argument(
        "--rates", type=float, nargs="+", default=[1.0, 1.5, 2.0], help="programs per second"
    )
    parser.add_argument(
        "--kv-blocks", type=int, nargs="+", default=[2048], help="16-token blocks per engine"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ttl-slack", type=float, default=RetentionRule().ttl_slack)
    parser.add_argument(
        "--memory-value",
        type=float,
        default=RetentionRule().memory_value,
        help="engine-seconds lost per second the whole KV pool is held at full pressure",
    )
    parser.add_argument(
        "--held-fraction",
        type=float,
        default=RetentionRule().max_held_fraction,
        help="share of each engine's KV pool that holds may keep",
    )
    parser.add_argument("--retention", nargs="+", default=[m.value for m in KVRetention])
    parser.add_argument("--balancers", nargs="+", default=list(BALANCERS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows: list[Row] = []
    for rate in args.rates:
        programs = make_workload(
            "bfcl_tools", args.programs, seed=args.seed, arrivals="poisson", rate=rate
        )
        for kv_blocks in args.kv_blocks:
            for retention in args.retention:
                for balancer in args.balancers:
                    rows.append(
                        measure(programs, retention, balancer, args, rate=rate, kv_blocks=kv_blocks)
                    )
                    print(table(rows[-1:]).splitlines()[-1], flush=True)
    print(table(rows))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        data = {
            "args": {k: str(v) for k, v in vars(args).items()},
            "rows": [dataclasses.asdict(r) for r in rows],
        }
        (args.out / "kv_retention.json").write_text(json.dumps(data, indent=1))
        if "off" in args.retention:
            plot(rows, args.out / "kv_retention.png")


if __name__ == "__main__":
    main()
