"""Issue 4's bar to beat: FCFS vs client-side priority vs Autellix inside vLLM, one run.

    python benchmarks/real_engine/bench.py [--runs 3] [--max-num-seqs 4] [--out results.json]

Same engine settings for every variant (the tiny CPU model with dummy weights,
``max_num_seqs`` slots, eager mode):

- ``fcfs``: stock vLLM, ``--scheduling-policy fcfs``;
- ``client_priority``: stock vLLM, ``--scheduling-policy priority``, each request's priority =
  the tokens its program has generated so far (what a client can do alone);
- ``autellix``: the Autellix plugin (PLAS; ATLAS for the map-reduce mix), the program's
  service tracked as the backend does.

Metric: mean over programs of latency / generated tokens (s/token); median of ``--runs``.
Must run under ``if __name__ == "__main__"`` (vLLM starts engine processes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autellix_backend.calibration.workloads import WORKLOADS
from autellix_backend.core import Policy, SchedulerConfig
from autellix_backend.drivers.replay import PriorityHint, ReplayResult, replay
from autellix_backend.engines.local_vllm import LocalVLLMEngine
from autellix_backend.sim.results import percentile


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    plugin: bool
    scheduling_policy: str
    hint: PriorityHint


VARIANTS = (
    Variant("fcfs", False, "fcfs", PriorityHint.NONE),
    Variant("client_priority", False, "priority", PriorityHint.TOKENS),
    Variant("autellix", True, "fcfs", PriorityHint.SERVICE),
)
POLICY = {
    "burst": Policy.PLAS,
    "poisson": Policy.PLAS,
    "poisson_high": Policy.PLAS,
    "mapreduce_chat": Policy.ATLAS,
    "mapreduce_chat_high": Policy.ATLAS,
}


def summarise(result: ReplayResult) -> dict[str, Any]:
    per_token = sorted(p.latency_per_token for p in result.programs)
    by_kind: dict[str, list[float]] = {}
    for p in result.programs:
        by_kind.setdefault(p.workload, []).append(p.latency)
    return {
        "mean_s_per_token": statistics.mean(per_token),
        "p95_s_per_token": percentile(per_token, 95),
        "mean_latency_by_kind": {k: statistics.mean(v) for k, v in by_kind.items()},
        "makespan": result.duration,
        "num_preemptions": sum(int(c.report.get("num_preemptions", 0)) for c in result.calls),
        "tokens_ok": all(c.usage is not None for c in result.calls),
    }


@dataclass(frozen=True, slots=True)
class Setup:
    """One engine of the run: a variant, with the core policy its plugin runs (if any)."""

    variant: Variant
    policy: Policy

    @property
    def name(self) -> str:
        return (
            f"{self.variant.name}-{self.policy.value}" if self.variant.plugin else self.variant.name
        )


def setups(workloads: list[str], variants: list[str]) -> list[Setup]:
    out: list[Setup] = []
    for variant in VARIANTS:
        if variant.name not in variants:
            continue
        if variant.plugin:
            out.extend(Setup(variant, p) for p in sorted({POLICY[w] for w in workloads}))
        else:
            out.append(Setup(variant, Policy.FCFS))
    return out


async def start_engines(
    chosen: list[Setup], engine_args: dict[str, Any]
) -> dict[str, LocalVLLMEngine]:
    engines = {
        s.name: LocalVLLMEngine(
            engine_id=s.name,
            plugin=s.variant.plugin,
            scheduling_policy=s.variant.scheduling_policy,
            scheduler=SchedulerConfig(policy=s.policy),
            **engine_args,
        )
        for s in chosen
    }
    started = time.monotonic()
    await asyncio.gather(*(e.start() for e in engines.values()))
    print(f"{len(engines)} engines up in {time.monotonic() - started:.0f} s", flush=True)
    return engines


async def run_all(
    workloads: list[str], variants: list[str], runs: int, engine_args: dict[str, Any], out: str
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Runs interleave the variants (run i of every variant, then run i+1) so that a change
    in the machine's background load hits them alike."""
    chosen = setups(workloads, variants)
    engines = await start_engines(chosen, engine_args)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for run in range(runs):
            for workload in workloads:
                for setup in chosen:
                    if setup.variant.plugin and POLICY[workload] is not setup.policy:
                        continue
                    result = await replay(
                        engines[setup.name],
                        WORKLOADS[workload](),
                        policy=POLICY[workload],
                        hint=setup.variant.hint,
                    )
                    summary = summarise(result)
                    results.setdefault(setup.variant.name, {}).setdefault(workload, []).append(
                        summary
                    )
                    print(
                        f"[{setup.name}] {workload} run {run}: "
                        f"{summary['mean_s_per_token']:.4f} s/token, "
                        f"p95 {summary['p95_s_per_token']:.4f}, "
                        f"preemptions {summary['num_preemptions']}",
                        flush=True,
                    )
                    if out:
                        Path(out).write_text(json.dumps(results, indent=2))
    finally:
        await asyncio.gather(*(e.aclose() for e in engines.values()))
    return results


def table(results: dict[str, dict[str, list[dict[str, Any]]]], workloads: list[str]) -> str:
    lines = [
        "| workload | FCFS | client priority | Autellix | vs FCFS | vs client priority |",
        "|---|---|---|---|---|---|",
    ]
    for workload in workloads:
        med = {
            v: statistics.median(r["mean_s_per_token"] for r in results[v][workload])
            for v in results
        }
        a = med["autellix"]
        lines.append(
            f"| {workload} | {med['fcfs']:.4f} | {med['client_priority']:.4f} | {a:.4f} "
            f"| {med['fcfs'] / a:.2f}x | {med['client_priority'] / a:.2f}x |"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    engine_args = {
        "max_num_seqs": args.max_num_seqs,
        "max_model_len": 2048,
        "block_size": 32,
        "kv_cache_memory_bytes": args.kv_cache_mib * 2**20,
    }
    workloads = args.workloads.split(",")
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        sys.exit(f"unknown workloads: {sorted(unknown)}")
    results = await run_all(workloads, args.variants.split(","), args.runs, engine_args, args.out)
    print(table(results, workloads))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-num-seqs", type=int, default=4)
    parser.add_argument("--kv-cache-mib", type=int, default=64)
    parser.add_argument("--workloads", default="burst,poisson,mapreduce_chat")
    parser.add_argument("--variants", default="fcfs,client_priority,autellix")
    parser.add_argument("--out", default="")
    asyncio.run(main(parser.parse_args()))
