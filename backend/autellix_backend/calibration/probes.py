"""Probe workloads that make an engine's step log cover the cost model's terms.

Prefill: one call at a time, prompts of growing length (1 output token). Decode: ``b`` calls
at once with prompts of ``c`` tokens, for each batch size ``b`` and context ``c``. Every
prompt is unique, so nothing is served from the prefix cache.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence

from autellix_backend.drivers.replay import prompt_token_ids
from autellix_backend.engines.base import EngineAdapter, EngineRequest, ProgramTag, RequestKind
from autellix_backend.workloads.spec import CallSpec, PromptSegment

PREFILL_LENGTHS = (16, 64, 128, 256, 512, 1024)
DECODE_BATCHES = (1, 2, 4, 8)
DECODE_CONTEXTS = (32, 256, 768)

_ids = itertools.count()


async def run_probes(
    engine: EngineAdapter,
    *,
    prefill_lengths: Sequence[int] = PREFILL_LENGTHS,
    decode_batches: Sequence[int] = DECODE_BATCHES,
    decode_contexts: Sequence[int] = DECODE_CONTEXTS,
    decode_tokens: int = 24,
    repeats: int = 2,
    vocab_size: int = 600,
) -> int:
    """Run the probes on ``engine``; returns the number of calls made."""
    made = 0
    for _ in range(repeats):
        for length in prefill_lengths:
            await _call(engine, length, 2, vocab_size)
            made += 1
    for batch in decode_batches:
        for context in decode_contexts:
            calls = [_call(engine, context, decode_tokens, vocab_size) for _ in range(batch)]
            await asyncio.gather(*calls)
            made += batch
    return made


async def _call(engine: EngineAdapter, prompt: int, output: int, vocab_size: int) -> None:
    call_id = f"probe-{next(_ids)}"
    spec = CallSpec(call_id, "main", (), (PromptSegment(call_id, prompt),), output)
    request = EngineRequest(
        request_id=call_id,
        kind=RequestKind.COMPLETION,
        body={
            "prompt": prompt_token_ids(spec, vocab_size),
            "max_tokens": output,
            "ignore_eos": True,
        },
        tag=ProgramTag(program_id=call_id, call_id=call_id),
        prompt_tokens=prompt,
    )
    async for _ in engine.generate(request):
        pass
