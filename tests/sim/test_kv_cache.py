"""The KV block manager: reference counts, prefix hits, LRU eviction of cached blocks."""

from __future__ import annotations

import pytest

from autellix_backend.sim import BlockTable, KVCache
from autellix_backend.sim.hashing import block_hashes, key_id
from autellix_backend.sim.kv_cache import OutOfBlocksError


def cached_table(kv: KVCache, hashes: list[int]) -> BlockTable:
    """A table that computed ``len(hashes)`` full blocks and published them."""
    table = BlockTable()
    kv.allocate(table, len(hashes))
    for block, h in zip(table.blocks, hashes, strict=True):
        kv.register(block, h)
    return table


def test_blocks_return_to_the_pool_when_released() -> None:
    kv = KVCache(8, 16, enable_prefix_caching=False)
    table = BlockTable()
    kv.allocate(table, 5)
    assert kv.num_free_blocks == 3
    assert all(kv.ref_count(b) == 1 for b in table.blocks)
    kv.release(table)
    assert kv.num_free_blocks == 8
    assert table.blocks == []


def test_allocating_more_than_free_fails_and_changes_nothing() -> None:
    kv = KVCache(4, 16, enable_prefix_caching=True)
    table = BlockTable()
    kv.allocate(table, 3)
    with pytest.raises(OutOfBlocksError):
        kv.allocate(BlockTable(), 2)
    assert kv.num_free_blocks == 1


def test_released_full_blocks_are_hit_by_a_later_identical_prefix() -> None:
    kv = KVCache(8, 4, enable_prefix_caching=True)
    hashes = block_hashes([(key_id("system"), 12)], 4)
    first = cached_table(kv, hashes)
    blocks = list(first.blocks)
    kv.release(first)
    assert kv.num_free_blocks == 8  # cached blocks are evictable, so they count as free
    hits = kv.match(block_hashes([(key_id("system"), 12), (key_id("user"), 5)], 4))
    assert hits == blocks
    second = BlockTable()
    kv.acquire(second, hits)
    assert [kv.ref_count(b) for b in hits] == [1, 1, 1]
    assert kv.num_free_blocks == 5


def test_a_different_prefix_misses() -> None:
    kv = KVCache(8, 4, enable_prefix_caching=True)
    kv.release(cached_table(kv, block_hashes([(key_id("system-a"), 8)], 4)))
    assert kv.match(block_hashes([(key_id("system-b"), 8)], 4)) == []


def test_shared_blocks_are_counted_per_holder() -> None:
    kv = KVCache(8, 4, enable_prefix_caching=True)
    hashes = block_hashes([(key_id("doc"), 8)], 4)
    owner = cached_table(kv, hashes)
    reader = BlockTable()
    kv.acquire(reader, kv.match(hashes))
    assert kv.num_shared_blocks == 2
    assert owner.num_shared == reader.num_shared == 2
    assert all(kv.ref_count(b) == 2 for b in owner.blocks)
    kv.release(owner)
    assert kv.num_shared_blocks == 0
    assert reader.num_shared == 0
    assert all(kv.ref_count(b) == 1 for b in reader.blocks)


def test_eviction_takes_the_least_recently_released_blocks_tail_first() -> None:
    kv = KVCache(6, 4, enable_prefix_caching=True)
    old = block_hashes([(key_id("old"), 12)], 4)
    new = block_hashes([(key_id("new"), 12)], 4)
    kv.release(cached_table(kv, old))
    kv.release(cached_table(kv, new))
    kv.allocate(BlockTable(), 2)  # evicts two blocks of "old", its tail first
    assert len(kv.match(old)) == 1
    assert len(kv.match(new)) == 3
    assert kv.num_evictions == 2


def test_prefix_caching_off_never_hits() -> None:
    kv = KVCache(8, 4, enable_prefix_caching=False)
    hashes = block_hashes([(key_id("system"), 8)], 4)
    kv.release(cached_table(kv, hashes))
    assert kv.match(hashes) == []


def test_block_hashes_depend_on_the_whole_prefix() -> None:
    a = block_hashes([(key_id("x"), 4), (key_id("y"), 4)], 4)
    b = block_hashes([(key_id("z"), 4), (key_id("y"), 4)], 4)
    assert a[1] != b[1]
    split = block_hashes([(key_id("x"), 2), (key_id("x2"), 6)], 4)
    assert len(split) == 2
    resumed = block_hashes([(key_id("x"), 2), (key_id("x2"), 6)], 4, start_block=1, parent=split[0])
    assert resumed == split[1:]
