"""``autellix plan``: gateways, memory and network for a fleet of engines at a rate."""

from __future__ import annotations

from typing import Annotated

import typer

FLEET_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024)
"""Engine counts shown when ``--engines`` is not given."""


def plan(
    engines: Annotated[
        list[int] | None, typer.Option(help="Engines in the fleet (repeatable); default 8-1,024.")
    ] = None,
    profile: Annotated[str, typer.Option(help="Engine cost profile.")] = "a100-llama3-8b",
    workload: Annotated[str, typer.Option(help="Workload: sharegpt, bfcl, lats, mixed.")] = "mixed",
    rate: Annotated[
        float | None,
        typer.Option(help="Program arrivals per second to serve; default: the fleet's capacity."),
    ] = None,
    thin_router: Annotated[
        bool, typer.Option(help="A router sends each call to its owning gateway (no forwarding).")
    ] = False,
    utilization: Annotated[
        float, typer.Option(min=0.05, max=1.0, help="Highest CPU share of one gateway.")
    ] = 0.6,
    measure: Annotated[
        bool, typer.Option(help="Re-measure the parts on this machine first (a few minutes).")
    ] = False,
) -> None:
    """Size the gateways of a fleet from measured parts (see docs/capacity.md)."""
    from autellix_backend.plan.model import FleetSettings, plan_fleet
    from autellix_backend.plan.parts import MEASURED, measure_parts
    from autellix_backend.plan.throughput import THROUGHPUT, measure_engine

    parts = measure_parts() if measure else MEASURED
    engine = THROUGHPUT.get((profile, workload))
    if engine is None or measure:
        typer.echo(f"measuring one {profile} engine on {workload} in the simulator...", err=True)
        engine = measure_engine(profile, workload, rates=(1.0, 2.0, 4.0, 8.0, 16.0))
    settings = FleetSettings(gateway_utilization=utilization, thin_router=thin_router)
    typer.echo(
        f"profile {profile}, workload {workload}: {engine.programs_per_s:.3g} programs/s per "
        f"engine at {engine.target_s_per_token * 1000:.3g} ms/token, "
        f"{engine.calls_per_program:.3g} calls/program; gateway "
        f"{parts.gateway_cpu_s_per_call * 1e3:.3g} ms CPU/call"
    )
    header = (
        f"{'engines':>7} {'rate/s':>9} {'calls/s':>10} {'gateways':>8} {'cpu':>5} "
        f"{'live rows':>10} {'MiB/gw':>7} {'engine MB/s':>11} {'fwd MB/s':>9}"
    )
    typer.echo(header)
    for n in engines or FLEET_SIZES:
        try:
            fleet = plan_fleet(n, engine, parts, rate=rate, settings=settings)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        flag = "  OVERLOADED" if fleet.overloaded else ""
        typer.echo(
            f"{n:>7} {fleet.rate:>9.4g} {fleet.calls_per_s:>10.4g} {fleet.num_gateways:>8} "
            f"{fleet.gateway_cpu_util:>5.0%} {fleet.live_programs:>10.4g} "
            f"{fleet.memory_per_gateway_bytes / 2**20:>7.0f} "
            f"{fleet.engine_network_bytes_per_s / 1e6:>11.3g} "
            f"{fleet.forward_network_bytes_per_s / 1e6:>9.3g}{flag}"
        )
