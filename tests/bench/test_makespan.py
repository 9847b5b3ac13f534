"""The offline-batch makespan experiment: promotion's round robin, and the variants without it."""

from __future__ import annotations

from autellix_backend.bench.records import RunSpec
from autellix_backend.bench.runner import BenchSettings, run_one, sim_config
from autellix_backend.bench.sweeps import FULL, makespan_systems, plan
from autellix_backend.sim import EngineConfig


def test_offline_variants_drop_only_the_promotion() -> None:
    settings = BenchSettings()
    plas = sim_config(RunSpec("makespan", "sharegpt", "plas", 1), settings)
    plain = sim_config(RunSpec("makespan", "sharegpt", "plas-nostarve", 1), settings)
    assert plas.scheduler.starvation_beta is not None
    assert plain.scheduler.starvation_beta is None
    assert plain.engine == plas.engine and plain.scheduler.policy is plas.scheduler.policy


def test_makespan_runs_each_policy_with_and_without_promotion() -> None:
    assert makespan_systems(["vllm", "vllm-opt", "mlfq", "plas", "atlas"]) == (
        "vllm-opt",
        "mlfq",
        "plas",
        "mlfq-nostarve",
        "plas-nostarve",
    )
    assert makespan_systems(["vllm-opt", "plas-nostarve"]) == ("vllm-opt", "plas-nostarve")
    specs = plan(FULL, ["makespan"], ["sharegpt"], ["vllm-opt", "plas"])
    assert {(s.system, s.num_programs) for s in specs} == {
        (s, n) for s in ("vllm-opt", "plas", "plas-nostarve") for n in FULL.makespan_batches
    }
    assert all(s.arrivals == "batch" for s in specs)


def test_promotion_in_an_offline_batch_swaps_calls_round_robin() -> None:
    """Every call of a t=0 batch starves, so promotion rotates them through Q1, swapping on each
    quantum; without it PLAS preempts a few times per call and the batch ends sooner."""
    settings = BenchSettings(engine=EngineConfig(max_num_seqs=4))
    runs = {
        system: run_one(RunSpec("makespan", "sharegpt", system, 100, arrivals="batch"), settings)
        for system in ("plas", "plas-nostarve")
    }
    promoted, plain = runs["plas"].metrics, runs["plas-nostarve"].metrics
    assert plain["num_preemptions"] < plain["num_calls"]
    assert promoted["num_preemptions"] > 5 * promoted["num_calls"]
    assert plain["makespan"] < 0.9 * promoted["makespan"]
