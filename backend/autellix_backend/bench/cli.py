"""``autellix bench``: reproduce the paper's evaluation on the simulated engine.

Heavy imports (the simulator, matplotlib) happen inside the commands, so ``autellix --help``
stays fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

bench_app = typer.Typer(
    help="Reproduce the paper's evaluation (Figures 12-16) on the simulated engine."
)

DEFAULT_OUT = Path("results/bench")


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@bench_app.callback(invoke_without_command=True)
def bench(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            help="Few programs, one seed, capacities to a factor-2 bracket: a coarse read."
        ),
    ] = False,
    out: Annotated[
        Path, typer.Option(help="Directory for CSV/JSON, PNGs and summary.md.")
    ] = DEFAULT_OUT,
    experiments: Annotated[
        str, typer.Option(help="Comma-separated: latency, balancer, scaling, makespan.")
    ] = "latency",
    workloads: Annotated[
        str, typer.Option(help="Comma-separated: sharegpt, bfcl, bfcl-paper, lats, mixed, skewed.")
    ] = "sharegpt,bfcl,bfcl-paper,lats,mixed,skewed",
    systems: Annotated[
        str,
        typer.Option(
            help="Comma-separated systems of the latency experiment (default: all; with "
            "--quick, all but the SRPT oracle, whose probes are the largest)."
        ),
    ] = "",
    programs_scale: Annotated[
        float,
        typer.Option(help="Multiply every run's program count and batch size (more = less noise)."),
    ] = 1.0,
    precision: Annotated[
        float,
        typer.Option(help="Relative precision of each capacity (0: 0.05, or 1.0 with --quick)."),
    ] = 0.0,
    seeds: Annotated[
        int, typer.Option(help="Seeds per capacity, reported as median and range (0: 3, or 1).")
    ] = 0,
    profile: Annotated[str, typer.Option(help="Simulator cost profile.")] = "a100-llama3-8b",
    max_num_seqs: Annotated[int, typer.Option(help="Batch limit of every engine.")] = 32,
    slo_factor: Annotated[
        float,
        typer.Option(help="Latency target = factor x best latency at the workload's lowest rate."),
    ] = 5.0,
    balancer_engines: Annotated[
        str, typer.Option(help="Comma-separated engine counts of the balancer runs (default: 4,8).")
    ] = "",
    makespan_programs: Annotated[
        str,
        typer.Option(help="Comma-separated offline batch sizes (default: 1000,2000,4000)."),
    ] = "",
    workers: Annotated[int, typer.Option(help="Parallel simulation processes.")] = 2,
    seed: Annotated[int, typer.Option(help="First seed of workloads, arrivals and simulator.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Search each curve's capacity, run the offline batches, and write results under OUT.

    Every capacity (highest arrival rate whose mean latency per token meets the target) is found
    by bracketing and bisection, so no table cell is a bound. Finished runs are kept in
    OUT/runs.partial.jsonl; running the same command again skips them.
    """
    if ctx.invoked_subcommand is not None:
        return
    import dataclasses

    from autellix_backend.bench import search, sweeps
    from autellix_backend.bench.report import write_report
    from autellix_backend.bench.runner import BenchSettings, run_all
    from autellix_backend.bench.systems import QUICK_SKIPS, SYSTEMS, get_system
    from autellix_backend.sim import EngineConfig

    chosen_workloads = _names(workloads)
    for name in chosen_workloads:
        if name not in sweeps.RATES:
            raise typer.BadParameter(f"unknown workload {name!r}", param_hint="--workloads")
    try:
        default_systems = [s for s in SYSTEMS if not (quick and s in QUICK_SKIPS)]
        chosen_systems = [get_system(s).name for s in _names(systems) or default_systems]
        size = sweeps.QUICK if quick else sweeps.FULL
        size = dataclasses.replace(
            size,
            num_programs={
                w: max(1, round(n * programs_scale)) for w, n in size.num_programs.items()
            },
            num_rates=1,
            makespan_batches=tuple(
                max(1, round(n * programs_scale))
                for n in (
                    [int(v) for v in _names(makespan_programs)]
                    if makespan_programs
                    else size.makespan_batches
                )
            ),
        )
        if balancer_engines:
            size = dataclasses.replace(
                size, balancer_engines=tuple(int(v) for v in _names(balancer_engines))
            )
        seed_list = range(seed, seed + (seeds or (1 if quick else 3)))
        specs = [
            s
            for k in seed_list
            for s in sweeps.plan(size, _names(experiments), chosen_workloads, chosen_systems, k)
        ]
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    settings = BenchSettings(engine=EngineConfig(profile=profile, max_num_seqs=max_num_seqs))
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "runs.partial.jsonl"
    curves = list(dict.fromkeys(search.curve_of(s) for s in specs if s.experiment != "makespan"))
    references = search.reference_runs(
        curves, settings, workers=workers, progress=progress, checkpoint=checkpoint
    )
    targets = search.latency_targets(references, slo_factor)
    probes = search.run_searches(
        curves,
        targets,
        settings,
        precision=precision or (search.QUICK_PRECISION if quick else search.FULL_PRECISION),
        windows=size.window_seconds,
        starts=size.search_start,
        workers=workers,
        progress=progress,
        checkpoint=checkpoint,
    )
    batches = run_all(
        [s for s in specs if s.experiment == "makespan"],
        settings,
        workers=workers,
        progress=progress,
        checkpoint=checkpoint,
    )
    records = [search.with_target(r, targets[r.spec.workload]) for r in references]
    records += probes + batches
    paths = write_report(records, out, slo_factor=slo_factor)
    typer.echo(f"{len(records)} runs in {time.perf_counter() - started:.0f} s; wrote:")
    for path in paths:
        typer.echo(f"  {path}")
    typer.echo((out / "summary.md").read_text())


@bench_app.command("report")
def report(
    runs: Annotated[list[Path], typer.Argument(help="runs.json files of earlier benches.")],
    out: Annotated[
        Path, typer.Option(help="Where to write the figures and summary.")
    ] = DEFAULT_OUT,
    slo_factor: Annotated[float, typer.Option(help="Latency target factor.")] = 5.0,
) -> None:
    """Redraw the figures and tables from earlier runs' ``runs.json`` files, merged."""
    from autellix_backend.bench.records import read_records
    from autellix_backend.bench.report import write_report

    missing = [str(p) for p in runs if not p.is_file()]
    if missing:
        raise typer.BadParameter(f"{', '.join(missing)} does not exist", param_hint="RUNS")
    records = [r for path in runs for r in read_records(path)]
    write_report(records, out, slo_factor=slo_factor)
    typer.echo((out / "summary.md").read_text())


@bench_app.command("workloads")
def workloads_table(
    num_programs: Annotated[int, typer.Option(help="Programs drawn per workload.")] = 1000,
    seed: Annotated[int, typer.Option(help="Workload seed.")] = 0,
) -> None:
    """Print each workload's statistics beside the paper's table."""
    from autellix_backend.workloads import PAPER_STATS, WORKLOADS, workload_stats

    typer.echo(
        "| workload | source | calls mean | calls max | prefill mean (whole prompt) "
        "| new prompt tokens / call | decode mean |"
    )
    typer.echo("|---|---|---|---|---|---|---|")
    for name, generate in WORKLOADS.items():
        stats = workload_stats(generate(num_programs, seed=seed))
        typer.echo(
            f"| {name} | ours | {stats.calls_mean:.2f} | {stats.calls_max} "
            f"| {stats.prefill_mean:.1f} | {stats.new_prefill_mean:.1f} | {stats.decode_mean:.2f} |"
        )
        paper = PAPER_STATS.get(name)
        if paper is not None:
            typer.echo(
                f"| {name} | paper | {paper.calls_mean:.2f} | {paper.calls_max} "
                f"| {paper.prefill_mean:.2f} (column not split) | | {paper.decode_mean:.2f} |"
            )


@bench_app.command("bfcl-data")
def bfcl_data(
    wheel: Annotated[
        Path, typer.Option(help="bfcl_eval-*.whl from `pip download --no-deps bfcl-eval`.")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Output JSON (default: the packaged file).")
    ] = None,
) -> None:
    """Regenerate the packaged BFCL token counts from the bfcl-eval wheel."""
    from autellix_backend.workloads import bfcl, bfcl_extract

    if not wheel.is_file():
        raise typer.BadParameter(f"{wheel} does not exist", param_hint="--wheel")
    target = out or Path(bfcl.__file__).parent / "data" / bfcl.DATA_FILE
    data = bfcl_extract.write(wheel, target)
    typer.echo(f"wrote {len(data['tasks'])} tasks to {target}")
