"""Turn a sweep's records into result files: CSV/JSON, the figures and a Markdown summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from autellix_backend.bench import plots
from autellix_backend.bench.analysis import (
    RATIO_PAIRS,
    SLO_FACTOR,
    CurveCapacity,
    WorkloadComparison,
    balancer_capacities,
    compare_workload,
    latency_target,
    makespans,
    scaling_capacities,
    select,
)
from autellix_backend.bench.capacity import Bound
from autellix_backend.bench.records import RunRecord, write_records
from autellix_backend.bench.systems import get_system

PAPER_RATIOS = {
    "sharegpt": "up to 8x vLLM, 2x vLLM-opt, 1.5x MLFQ",
    "bfcl": "up to 8x vLLM, 2x vLLM-opt, 1.5x MLFQ",
    "bfcl-paper": "up to 8x vLLM, 2x vLLM-opt, 1.5x MLFQ",
    "lats": "5x vLLM, 2.5x MLFQ",
    "mixed": "15x vLLM, 4-5x vLLM-opt, 5.5x MLFQ",
    "skewed": "not in the paper (ours: ATLAS-exact >= 1.2x ATLAS)",
}
"""The paper's throughput-at-equal-latency claims for the 8B model."""


def write_report(
    records: Sequence[RunRecord], out_dir: Path, *, slo_factor: float = SLO_FACTOR
) -> list[Path]:
    """Write ``runs.csv``/``runs.json``, ``ratios.csv``, the figures and ``summary.md``."""
    paths = write_records(records, out_dir)
    sections: list[str] = ["# Autellix bench results\n"]
    latency_workloads = list(dict.fromkeys(r.spec.workload for r in select(records, "latency")))
    if latency_workloads:
        comparisons = [compare_workload(records, w, slo_factor) for w in latency_workloads]
        sections.append(_ratio_table(comparisons, slo_factor))
        sections.append(_capacity_table(comparisons))
        paths.append(_ratio_csv(comparisons, out_dir / "ratios.csv"))
        paths.append(
            plots.latency_figure(
                records, out_dir / "fig12_mean_latency.png", ["mean_latency_per_token"], slo_factor
            )
        )
        paths.append(
            plots.latency_figure(
                records,
                out_dir / "fig13_tail_latency.png",
                ["p95_latency_per_token", "p99_latency_per_token"],
                slo_factor,
            )
        )
    balancer_workloads = list(dict.fromkeys(r.spec.workload for r in select(records, "balancer")))
    if balancer_workloads:
        curves = {
            f"{w}, {n} engines": balancer_capacities(
                records, w, latency_target(records, w, slo_factor, "balancer"), n
            )
            for w in balancer_workloads
            for n in sorted({r.spec.num_engines for r in select(records, "balancer", workload=w)})
        }
        sections.append(_curve_table("Balancers (Figure 14)", "balancer", curves, "round_robin"))
        paths.append(plots.balancer_figure(records, out_dir / "fig14_balancers.png"))
    scaling_workloads = list(dict.fromkeys(r.spec.workload for r in select(records, "scaling")))
    if scaling_workloads:
        curves = {
            w: scaling_capacities(records, w, latency_target(records, w, slo_factor, "scaling"))
            for w in scaling_workloads
        }
        sections.append(_curve_table("Scaling (Figure 15)", "engines", curves, "1"))
        paths.append(plots.scaling_figure(curves, out_dir / "fig15_scaling.png"))
    if select(records, "makespan"):
        sections.append(_makespan_table(records))
        paths.append(plots.makespan_figure(records, out_dir / "fig16_makespan.png"))
    summary = out_dir / "summary.md"
    summary.write_text("\n".join(sections))
    paths.append(summary)
    return paths


def _ratio_table(comparisons: Sequence[WorkloadComparison], slo_factor: float) -> str:
    pairs = [p for p in RATIO_PAIRS if any(p in c.ratios for c in comparisons)]
    head = ["workload", "target (s/token)"]
    head += [f"{get_system(a).label}/{get_system(b).label}" for a, b in pairs]
    with_srpt = any(math.isfinite(c.srpt_gap) for c in comparisons)
    if with_srpt:
        head += ["best/SRPT latency (worst rate)", "best/SRPT at target"]
    head.append("paper")
    lines = [
        "## Throughput at equal latency (Figure 12)\n",
        "Capacity = highest arrival rate whose mean latency per token stays under the target "
        "(the target column: the factor given to `autellix bench` times the best system's "
        "latency at the workload's light-load reference rate), found per system by bracketing "
        "and bisection (`bench.search`); with several seeds, the median. A `>=`/`<=` would mark "
        "a search that hit its limits.\n",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for c in comparisons:
        cells = [c.workload, f"{c.target:.4f}"]
        cells += [str(c.ratios[p]) if p in c.ratios else "" for p in pairs]
        if with_srpt:
            cells += [_times(c.srpt_gap), _times(c.srpt_gap_at_target)]
        cells.append(PAPER_RATIOS.get(c.workload, ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _times(ratio: float) -> str:
    """A ratio cell; empty when it could not be computed (SRPT not run)."""
    return f"{ratio:.2f}x" if math.isfinite(ratio) else ""


def _capacity_table(comparisons: Sequence[WorkloadComparison]) -> str:
    systems = list(dict.fromkeys(s for c in comparisons for s in c.capacities))
    head = ["workload", *(get_system(s).label for s in systems)]
    lines = [
        "## Capacity per system (programs/s under the target)\n",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for c in comparisons:
        cells = [c.workload, *(str(c.capacities.get(s, "")) for s in systems)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _curve_table(
    title: str, column: str, curves: dict[str, list[CurveCapacity]], reference: str
) -> str:
    lines = [
        f"## {title}\n",
        f"| workload | {column} | capacity (programs/s) | vs {reference} |",
        "|---|---|---|---|",
    ]
    for workload, curve in curves.items():
        base = next((c.capacity for c in curve if c.label == reference), None)
        for c in curve:
            ratio = f"{c.capacity.rate / base.rate:.2f}x" if base and base.rate > 0 else ""
            exact = base and c.capacity.bound is Bound.EXACT and base.bound is Bound.EXACT
            if base and c.capacity is not base and not exact:
                ratio = "n/a (bounds)"
            lines.append(f"| {workload} | {c.label} | {c.capacity} | {ratio} |")
    return "\n".join(lines) + "\n"


def _makespan_table(records: Sequence[RunRecord]) -> str:
    table = makespans(records)
    systems = list(dict.fromkeys(s for row in table.values() for s in row))
    head = ["programs", *(get_system(s).label for s in systems)]
    lines = ["## Offline makespan (Figure 16), seconds\n", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for n, row in table.items():
        cells = (f"{row[s]:.1f}" if s in row else "not run" for s in systems)
        lines.append("| " + " | ".join([str(n), *cells]) + " |")
    return "\n".join(lines) + "\n"


def _ratio_csv(comparisons: Sequence[WorkloadComparison], path: Path) -> Path:
    rows = ["workload,ours,theirs,ratio,qualifier,target_s_per_token"]
    for c in comparisons:
        for (a, b), ratio in c.ratios.items():
            rows.append(f"{c.workload},{a},{b},{ratio.value:.4f},{ratio.qualifier},{c.target:.6f}")
    path.write_text("\n".join(rows) + "\n")
    return path
