"""Preemption by recompute and by swap: their costs, and no call lost or run twice."""

from __future__ import annotations

import math

import pytest

from autellix_backend.core import SchedulerConfig
from autellix_backend.sim import EngineConfig, LinearCostModel, SimConfig, SimResult, Simulator
from tests.sim.conftest import chain_program

SWAP_BLOCK_S, SWAP_TRANSFER_S = 0.5, 2.0


def run(mode: str, *, batched: bool = True) -> SimResult:
    """A long call is running when a short program arrives; one slot, so PLAS preempts it."""
    model = LinearCostModel(
        "steps", step_base_s=1.0, swap_per_block_s=SWAP_BLOCK_S, swap_per_transfer_s=SWAP_TRANSFER_S
    )
    config = SimConfig(
        scheduler=SchedulerConfig(
            policy="plas", service_unit="tokens", base_quantum=2.0, starvation_beta=None
        ),
        engine=EngineConfig(
            max_num_seqs=1,
            block_size=4,
            num_kv_blocks=64,
            enable_prefix_caching=False,
            preemption_mode=mode,
            swap_batched=batched,
        ),
    )
    programs = [
        chain_program("long", [50], prompt_tokens=10),
        chain_program("short", [5], prompt_tokens=10, arrival=6.0),
    ]
    sim = Simulator(programs, config)
    sim.model = model
    for engine in sim.engines:
        engine.model = model
    return sim.run()


def finished_once(result: SimResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in result.calls:
        counts[call.call_id] = counts.get(call.call_id, 0) + 1
    assert all(n == 1 for n in counts.values())
    return {c.call_id: c.output_tokens for c in result.calls}


@pytest.mark.parametrize("mode", ["recompute", "swap"])
def test_the_short_program_preempts_the_long_call_and_both_finish_once(mode: str) -> None:
    result = run(mode)
    assert finished_once(result) == {"long/0": 50, "short/0": 5}
    finish = {p.program_id: p.finish_time for p in result.programs}
    assert finish["short"] < finish["long"]
    assert result.engines[0].num_preemptions == 1
    long_call = next(c for c in result.calls if c.call_id == "long/0")
    assert long_call.num_preemptions == 1


# What the model implies. Every step takes 1 s; the long call's first step prefills its
# 10-token prompt and samples token 1, so when the short program arrives at t=6 it has sampled
# 6 tokens, the KV of all but the last one computed: 10 + 6 - 1 = 15 tokens in 4 blocks of 4.
PROMPT, SAMPLED_BEFORE_PREEMPTION, BLOCK = 10, 6, 4
KV_TOKENS = PROMPT + SAMPLED_BEFORE_PREEMPTION - 1
KV_BLOCKS = math.ceil(KV_TOKENS / BLOCK)
REMAINING = 50 - SAMPLED_BEFORE_PREEMPTION


def test_recompute_drops_the_kv_and_prefills_it_again() -> None:
    result = run("recompute")
    stats = result.engines[0]
    assert stats.num_swap_outs == stats.num_swap_ins == 0
    assert stats.swap_time == 0
    assert stats.num_recomputed_tokens == KV_TOKENS
    # Both prompts, the lost KV again, and the last sampled token (its KV was never computed).
    assert stats.num_prefill_tokens == PROMPT + PROMPT + KV_TOKENS + 1


def test_swap_pays_the_transfer_both_ways_and_recomputes_nothing() -> None:
    result = run("swap")
    stats = result.engines[0]
    assert stats.num_swap_outs == stats.num_swap_ins == 1
    assert stats.num_recomputed_tokens == 0
    assert stats.num_prefill_tokens == PROMPT + PROMPT
    # Batched: one transfer each way, carrying every block.
    assert stats.swap_time == pytest.approx(2 * (SWAP_TRANSFER_S + KV_BLOCKS * SWAP_BLOCK_S))
    per_block = run("swap", batched=False).engines[0]
    assert per_block.swap_time == pytest.approx(2 * KV_BLOCKS * (SWAP_BLOCK_S + SWAP_TRANSFER_S))


def test_swap_time_is_part_of_the_step_time() -> None:
    """Swapping stalls the engine: each program finishes later by exactly the swap time."""
    recomputed = {p.program_id: p.finish_time for p in run("recompute").programs}
    swapped_run = run("swap")
    swapped = {p.program_id: p.finish_time for p in swapped_run.programs}
    swap_out = swap_in = SWAP_TRANSFER_S + KV_BLOCKS * SWAP_BLOCK_S
    # The short program runs 5 steps from t=6; the long call resumes after it with its
    # remaining tokens, one per step (recompute folds the lost KV into its first step).
    assert recomputed == {"short": 6 + 5, "long": 6 + 5 + REMAINING}
    assert swapped == {"short": 6 + swap_out + 5, "long": 6 + swap_out + 5 + swap_in + REMAINING}
    stats = swapped_run.engines[0]
    assert stats.busy_time == pytest.approx(stats.num_steps * 1.0 + stats.swap_time)
