"""``autellix plan``: the fleet model's answers and the parts it is built from."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from autellix_backend.cli import app
from autellix_backend.plan import MEASURED, FleetSettings, plan_fleet
from autellix_backend.plan.parts import measure_table, measure_wire
from autellix_backend.plan.throughput import THROUGHPUT

ENGINE = THROUGHPUT[("a100-llama3-8b", "mixed")]


def test_gateways_cover_the_cpu_the_calls_need() -> None:
    for n in (8, 64, 1024):
        fleet = plan_fleet(n, ENGINE, MEASURED)
        cpu = fleet.calls_per_s * MEASURED.gateway_cpu_s_per_call
        assert fleet.num_gateways >= cpu / 0.6
        assert fleet.num_gateways - 1 < cpu / 0.6 or fleet.num_gateways == 1
        assert fleet.rate == pytest.approx(n * ENGINE.programs_per_s)
        assert not fleet.overloaded


def test_a_rate_past_capacity_is_flagged_and_a_router_saves_the_forwarding() -> None:
    fleet = plan_fleet(8, ENGINE, MEASURED, rate=10 * 8 * ENGINE.programs_per_s)
    assert fleet.overloaded
    routed = plan_fleet(64, ENGINE, MEASURED, settings=FleetSettings(thin_router=True))
    sprayed = plan_fleet(64, ENGINE, MEASURED)
    assert routed.forward_network_bytes_per_s == 0 < sprayed.forward_network_bytes_per_s
    assert routed.engine_network_bytes_per_s == sprayed.engine_network_bytes_per_s


def test_bad_fleet_sizes_and_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="num_engines"):
        plan_fleet(0, ENGINE, MEASURED)
    with pytest.raises(ValueError, match="rate"):
        plan_fleet(8, ENGINE, MEASURED, rate=-1.0)
    result = CliRunner().invoke(app, ["plan", "--engines", "0"])
    assert result.exit_code == 2 and "num_engines" in result.output


def test_table_and_wire_parts_are_measured_from_the_real_codecs() -> None:
    per_program, per_node = measure_table(num_programs=200, calls_per_program=4)
    assert 500 < per_program < 50_000 and 100 < per_node < 20_000
    snapshot_bytes, report_bytes = measure_wire()
    assert 100 < snapshot_bytes < 2_000 and 50 < report_bytes < 2_000


def test_the_command_prints_one_row_per_fleet_size() -> None:
    result = CliRunner().invoke(
        app, ["plan", "--engines", "8", "--engines", "1024", "--workload", "mixed"]
    )
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["8", "1024"]
    assert int(rows[1][3]) > int(rows[0][3]), "more engines need more gateways"
