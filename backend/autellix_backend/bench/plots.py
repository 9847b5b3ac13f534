"""Matplotlib figures that mirror the paper's Figures 12 to 16.

Figures are built with the object API (``Figure``), not pyplot, so no global backend state
changes and the functions are safe in worker processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from autellix_backend.bench.analysis import (
    CurveCapacity,
    first_seed,
    latency_target,
    makespans,
    select,
)
from autellix_backend.bench.records import RunRecord
from autellix_backend.bench.systems import get_system

STYLE = {
    "vllm": ("tab:gray", "x"),
    "vllm-opt": ("tab:brown", "+"),
    "mlfq": ("tab:orange", "s"),
    "plas": ("tab:blue", "o"),
    "atlas": ("tab:green", "^"),
    "atlas_exact": ("tab:olive", "v"),
    "srpt": ("black", "*"),
    "mlfq-nostarve": ("navajowhite", "s"),
    "plas-nostarve": ("lightsteelblue", "o"),
}


def _workloads(runs: Sequence[RunRecord]) -> list[str]:
    return list(dict.fromkeys(r.spec.workload for r in runs))


def _system_curves(ax: Axes, runs: Sequence[RunRecord], metric: str) -> None:
    for system in dict.fromkeys(r.spec.system for r in runs):
        curve = sorted((r.spec.rate, r.metrics[metric]) for r in runs if r.spec.system == system)
        color, marker = STYLE.get(system, (None, "."))
        ax.plot(
            *zip(*curve, strict=True), color=color, marker=marker, label=get_system(system).label
        )
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


def latency_figure(
    records: Sequence[RunRecord], path: Path, metrics: Sequence[str], slo_factor: float
) -> Path:
    """Figures 12/13: ``metrics`` (rows) against arrival rate, one column per workload.

    The mean-latency panels show the latency target (``slo_factor``) as a dotted red line.
    """
    runs = first_seed(select(records, "latency"))
    workloads = _workloads(runs)
    fig, axes = _subplots(
        len(metrics),
        len(workloads),
        figsize=(4 * len(workloads), 3.2 * len(metrics)),
        squeeze=False,
    )
    for col, workload in enumerate(workloads):
        mine = [r for r in runs if r.spec.workload == workload]
        for row, metric in enumerate(metrics):
            ax = axes[row][col]
            _system_curves(ax, mine, metric)
            if metric == "mean_latency_per_token":
                ax.axhline(latency_target(records, workload, slo_factor), ls=":", color="red", lw=1)
            ax.set_title(f"{workload}" if row == 0 else "")
            ax.set_xlabel("arrival rate (programs/s)")
            ax.set_ylabel(metric.replace("_", " ") + " (s)")
    axes[0][-1].legend(fontsize=7)
    return _save(fig, path)


def balancer_figure(records: Sequence[RunRecord], path: Path) -> Path:
    """Figure 14: mean latency per token against rate, one curve per balancer (most engines)."""
    runs = first_seed(select(records, "balancer"))
    workloads = _workloads(runs)
    fig, axes = _subplots(1, len(workloads), figsize=(4.5 * len(workloads), 3.4), squeeze=False)
    for ax, workload in zip(axes[0], workloads, strict=True):
        mine = [r for r in runs if r.spec.workload == workload]
        most = max(r.spec.num_engines for r in mine)
        mine = [r for r in mine if r.spec.num_engines == most]
        for balancer in dict.fromkeys(r.spec.balancer for r in mine):
            curve = sorted((r.spec.rate, r.mean) for r in mine if r.spec.balancer == balancer)
            ax.plot(*zip(*curve, strict=True), marker="o", label=balancer)
        engines = mine[0].spec.num_engines
        ax.set_title(f"{workload}, {engines} engines, {mine[0].spec.system}")
        ax.set_xlabel("arrival rate (programs/s)")
        ax.set_ylabel("mean latency per token (s)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def scaling_figure(capacities: dict[str, list[CurveCapacity]], path: Path) -> Path:
    """Figure 15: highest rate meeting the latency target against the number of engines."""
    fig, ax = _single()
    for workload, curve in capacities.items():
        engines = [int(c.label) for c in curve]
        rates = [c.capacity.rate for c in curve]
        ax.plot(engines, rates, marker="o", label=workload)
        if rates and engines:
            ideal = [rates[0] * n / engines[0] for n in engines]
            ax.plot(engines, ideal, ls=":", color="gray", label=f"{workload} linear")
    ax.set_xlabel("engines")
    ax.set_ylabel("max rate under latency target (programs/s)")
    ax.set_xscale("log", base=2)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def makespan_figure(records: Sequence[RunRecord], path: Path) -> Path:
    """Figure 16: makespan of offline batches per system."""
    table = makespans(records)
    fig, ax = _single()
    sizes = list(table)
    systems = list(dict.fromkeys(s for row in table.values() for s in row))
    width = 0.8 / max(len(systems), 1)
    for i, system in enumerate(systems):
        xs = [j + i * width for j in range(len(sizes))]
        color, _ = STYLE.get(system, (None, "."))
        ax.bar(
            xs,
            [table[n].get(system, 0.0) for n in sizes],
            width,
            color=color,
            label=get_system(system).label,
        )
    ax.set_xticks(
        [j + width * (len(systems) - 1) / 2 for j in range(len(sizes))], [str(n) for n in sizes]
    )
    ax.set_xlabel("programs in the offline batch (ShareGPT)")
    ax.set_ylabel("makespan (s)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _subplots(
    rows: int, cols: int, *, figsize: tuple[float, float], squeeze: bool = False
) -> tuple[Figure, list[list[Axes]]]:
    fig = Figure(figsize=figsize)
    grid = fig.subplots(rows, cols, squeeze=False)
    return fig, [list(row) for row in grid]


def _single() -> tuple[Figure, Axes]:
    fig, axes = _subplots(1, 1, figsize=(4.5, 3.4))
    return fig, axes[0][0]
