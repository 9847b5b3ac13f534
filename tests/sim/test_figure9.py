"""A Figure 9-style critical-path example on the simulated engine (``unit`` profile: every
step lasts 1.0, prefill is free). The DAG is ours: PAPER.md gives the makespans (11 with the
critical path first, 14 otherwise), not the graph."""

from __future__ import annotations

from autellix_backend.core import Policy, SchedulerConfig, ServiceUnit
from autellix_backend.sim import EngineConfig, SimConfig, run_simulation
from autellix_backend.workloads import CallSpec, ProgramSpec, PromptSegment


def _unit_engine(max_num_seqs: int) -> EngineConfig:
    return EngineConfig(
        profile="unit",
        max_num_seqs=max_num_seqs,
        enable_prefix_caching=False,
        enable_chunked_prefill=False,
    )


def _figure9_program() -> ProgramSpec:
    """Two threads. t1: R (2 steps) then X (3). t2: Q (1) then Y (1), a 6-step tool call, Z (1).

    The critical path is t2 (1 + 1 + 6 + 1 = 9 steps). With one batch slot, when Q finishes
    at t=3 both X and Y are ready: Y first gives makespan 11, X first gives 14.
    """

    def seg(key: str) -> tuple[PromptSegment, ...]:
        return (PromptSegment(key, 1),)

    return ProgramSpec(
        "fig9",
        0.0,
        (
            CallSpec("R", "t1", (), seg("R"), 2),
            CallSpec("Q", "t2", (), seg("Q"), 1),
            CallSpec("X", "t1", ("R",), seg("X"), 3),
            CallSpec("Y", "t2", ("Q",), seg("Y"), 1),
            CallSpec("Z", "t2", ("Y",), seg("Z"), 1, delay_before=6.0),
        ),
    )


def _makespan(policy: Policy) -> float:
    scheduler = SchedulerConfig(
        policy=policy,
        service_unit=ServiceUnit.TOKENS,
        base_quantum=1.0,
        quantum_growth=1.0,
        num_queues=16,
        starvation_beta=None,
        preemption=False,
    )
    config = SimConfig(scheduler=scheduler, engine=_unit_engine(1))
    return float(run_simulation([_figure9_program()], config).makespan)


def test_figure9_atlas_exact_runs_the_critical_path_first() -> None:
    assert _makespan(Policy.ATLAS_EXACT) == 11.0
    for policy in (Policy.FCFS, Policy.PLAS, Policy.ATLAS):
        assert _makespan(policy) == 14.0, policy
