"""The bench end to end: the CLI on a tiny sweep, the files it writes, and the policy ordering."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from autellix_backend.bench.records import RunSpec
from autellix_backend.bench.runner import BenchSettings, run_all, run_one, sim_config
from autellix_backend.cli import app
from autellix_backend.core import Policy
from autellix_backend.sim import EngineConfig

runner = CliRunner()


def test_bench_cli_searches_capacities_and_writes_results(tmp_path: Path) -> None:
    args = [
        "bench",
        "--quick",
        "--workloads", "sharegpt,bfcl-paper",
        "--systems", "vllm-opt,plas",
        "--programs-scale", "0.5",
        "--workers", "1",
        "--no-progress",
        "--out", str(tmp_path),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "runs.json").read_text())
    assert {r["system"] for r in rows} == {"vllm-opt", "plas"}
    assert all(r["mean_latency_per_token"] > 0 and r["makespan"] > 0 for r in rows)
    for name in ("runs.csv", "ratios.csv", "fig12_mean_latency.png", "fig13_tail_latency.png"):
        assert (tmp_path / name).stat().st_size > 0
    ratios = (tmp_path / "ratios.csv").read_text().splitlines()[1:]
    assert ratios and all(line.split(",")[4] == "" for line in ratios), ratios
    summary = (tmp_path / "summary.md").read_text()
    assert "Throughput at equal latency" in summary and "| bfcl-paper |" in summary
    cells = [
        cell.strip()
        for line in summary.splitlines()
        if line.startswith(("| sharegpt |", "| bfcl-paper |"))
        for cell in line.split("|")
    ]
    assert cells and not [c for c in cells if c.startswith((">=", "<", "n/a"))], cells

    redo = runner.invoke(
        app, ["bench", "report", str(tmp_path / "runs.json"), "--out", str(tmp_path / "again")]
    )
    assert redo.exit_code == 0, redo.output
    assert (tmp_path / "again" / "summary.md").read_text() == summary


def test_bench_rejects_unknown_names(tmp_path: Path) -> None:
    result = runner.invoke(app, ["bench", "--workloads", "nope", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "unknown workload" in result.output
    result = runner.invoke(app, ["bench", "--systems", "fifo", "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "unknown system" in result.output
    assert not (tmp_path / "runs.json").exists()


def test_systems_differ_only_where_the_paper_says() -> None:
    settings = BenchSettings()
    vllm = sim_config(RunSpec("latency", "sharegpt", "vllm", 1), settings)
    opt = sim_config(RunSpec("latency", "sharegpt", "vllm-opt", 1), settings)
    plas = sim_config(RunSpec("latency", "sharegpt", "plas", 1), settings)
    assert not vllm.engine.enable_prefix_caching and not vllm.engine.enable_chunked_prefill
    assert opt.engine.enable_prefix_caching and opt.engine.enable_chunked_prefill
    assert vllm.scheduler.policy is opt.scheduler.policy is Policy.FCFS
    assert plas.engine == opt.engine and plas.scheduler.policy is Policy.PLAS


def test_loaded_chat_orders_fcfs_above_mlfq_above_plas() -> None:
    settings = BenchSettings(engine=EngineConfig(max_num_seqs=8))
    means = {
        system: run_one(RunSpec("latency", "sharegpt", system, 80, rate=2.0), settings).mean
        for system in ("vllm-opt", "mlfq", "plas")
    }
    assert means["vllm-opt"] > means["mlfq"] > means["plas"], means


def test_interrupted_sweep_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    checkpoint = tmp_path / "runs.partial.jsonl"
    specs = [RunSpec("latency", "sharegpt", s, 4, rate=1.0) for s in ("vllm-opt", "plas")]
    first = run_all(specs[:1], BenchSettings(), workers=1, progress=False, checkpoint=checkpoint)
    both = run_all(specs, BenchSettings(), workers=1, progress=False, checkpoint=checkpoint)
    assert len(checkpoint.read_text().splitlines()) == 2
    assert both[0] == first[0]
    assert [r.spec for r in both] == specs
