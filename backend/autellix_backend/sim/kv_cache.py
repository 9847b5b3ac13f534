"""KV-cache block manager with a prefix cache (hash-chained blocks, LRU eviction).

Blocks are shared by reference count. A full block whose content hash is registered stays
cached after its last holder releases it, and is reused by any later call whose prompt
starts with the same blocks, until free space runs out and the least recently released
cached block is evicted. A ``listener`` hears which hashes become findable and which are
evicted, as vLLM's KV events tell routers (``BlockStored`` / ``BlockRemoved``). Each
holder's ``BlockTable`` counts how many of its blocks are shared with another holder, so the
engine knows what preempting it would free.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


class OutOfBlocksError(RuntimeError):
    """An allocation asked for more blocks than are free (an accounting bug, not user input)."""


@dataclass(slots=True, eq=False)
class BlockTable:
    """The blocks one call holds on the device, in stream order."""

    blocks: list[int] = field(default_factory=list)
    num_shared: int = 0
    """How many of ``blocks`` another table also holds."""


KVEventListener = Callable[[Sequence[int], Sequence[int]], None]
"""Called with (hashes stored, hashes removed) whenever the prefix cache changes."""


class KVCache:
    """Fixed pool of KV blocks with reference counts and an LRU prefix cache.

    Args:
        num_blocks: blocks in the pool.
        block_size: tokens per block.
        enable_prefix_caching: keep released full blocks for reuse by hash.
    """

    def __init__(self, num_blocks: int, block_size: int, *, enable_prefix_caching: bool) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError("num_blocks and block_size must be at least 1")
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.enable_prefix_caching = enable_prefix_caching
        self._refs = [0] * num_blocks
        self._owner: list[BlockTable | None] = [None] * num_blocks
        self._holders: dict[int, list[BlockTable]] = {}
        self._hash_of: list[int | None] = [None] * num_blocks
        self._by_hash: dict[int, int] = {}
        self._free: list[int] = list(range(num_blocks - 1, -1, -1))
        self._evictable: OrderedDict[int, None] = OrderedDict()
        self.num_shared_blocks = 0
        """Blocks held by two or more tables."""
        self.num_evictions = 0
        self.num_query_tokens = 0
        self.num_hit_tokens = 0
        self.listener: KVEventListener | None = None
        """Hears prefix-cache changes (for cache-aware routing); None when nobody listens."""

    # Views --------------------------------------------------------------------

    @property
    def num_free_blocks(self) -> int:
        """Blocks no table holds (empty or cached-and-evictable)."""
        return len(self._free) + len(self._evictable)

    @property
    def num_cached_blocks(self) -> int:
        return len(self._by_hash)

    def ref_count(self, block: int) -> int:
        return self._refs[block]

    def match(self, hashes: Sequence[int]) -> list[int]:
        """Cached blocks holding the longest prefix of ``hashes`` (no state change)."""
        if not self.enable_prefix_caching:
            return []
        found: list[int] = []
        by_hash = self._by_hash
        for h in hashes:
            block = by_hash.get(h)
            if block is None:
                break
            found.append(block)
        return found

    def count_shared(self, blocks: Sequence[int]) -> int:
        """How many of ``blocks`` are already held by two or more tables."""
        refs = self._refs
        return sum(1 for b in blocks if refs[b] >= 2)

    def record_query(self, num_tokens: int, num_hit_tokens: int) -> None:
        """Count a prefix-cache lookup for the hit rate."""
        self.num_query_tokens += num_tokens
        self.num_hit_tokens += num_hit_tokens

    # Changes ------------------------------------------------------------------

    def acquire(self, table: BlockTable, blocks: Sequence[int]) -> None:
        """Append cached ``blocks`` (from ``match``) to ``table``, taking a reference."""
        for block in blocks:
            refs = self._refs[block]
            if refs == 0:
                self._evictable.pop(block, None)
                self._owner[block] = table
            elif refs == 1:
                owner = self._owner[block]
                assert owner is not None
                owner.num_shared += 1
                table.num_shared += 1
                self._holders[block] = [owner, table]
                self._owner[block] = None
                self.num_shared_blocks += 1
            else:
                self._holders[block].append(table)
                table.num_shared += 1
            self._refs[block] = refs + 1
            table.blocks.append(block)

    def allocate(self, table: BlockTable, num_blocks: int) -> None:
        """Append ``num_blocks`` empty blocks to ``table``, evicting cached ones if needed."""
        if num_blocks <= 0:
            return
        if num_blocks > self.num_free_blocks:
            raise OutOfBlocksError(f"need {num_blocks} blocks, {self.num_free_blocks} free")
        free = self._free
        take = min(num_blocks, len(free))
        new = free[len(free) - take :]
        del free[len(free) - take :]
        for _ in range(num_blocks - take):
            block, _ = self._evictable.popitem(last=False)
            old = self._hash_of[block]
            if old is not None:
                del self._by_hash[old]
                self._hash_of[block] = None
                if self.listener is not None:
                    self.listener((), (old,))
            self.num_evictions += 1
            new.append(block)
        refs, owner = self._refs, self._owner
        for block in new:
            refs[block] = 1
            owner[block] = table
        table.blocks += new

    def register(self, block: int, block_hash: int) -> None:
        """Make a computed full block findable by its hash (first writer wins)."""
        if not self.enable_prefix_caching or self._hash_of[block] is not None:
            return
        if block_hash in self._by_hash:
            return
        self._hash_of[block] = block_hash
        self._by_hash[block_hash] = block
        if self.listener is not None:
            self.listener((block_hash,), ())

    def register_many(self, blocks: Sequence[int], hashes: Sequence[int]) -> None:
        """``register`` for pairs of blocks and hashes."""
        if not self.enable_prefix_caching:
            return
        hash_of, by_hash = self._hash_of, self._by_hash
        stored: list[int] = []
        for block, block_hash in zip(blocks, hashes, strict=True):
            if hash_of[block] is None and block_hash not in by_hash:
                hash_of[block] = block_hash
                by_hash[block_hash] = block
                stored.append(block_hash)
        if stored and self.listener is not None:
            self.listener(stored, ())

    def release(self, table: BlockTable) -> None:
        """Drop all of ``table``'s references, last block first (so tails are evicted first)."""
        refs, owner, hash_of = self._refs, self._owner, self._hash_of
        evictable, free = self._evictable, self._free
        for block in reversed(table.blocks):
            left = refs[block] - 1
            refs[block] = left
            if left == 0:
                owner[block] = None
                if hash_of[block] is not None:
                    evictable[block] = None
                else:
                    free.append(block)
            else:
                self._drop_holder(block, table, left)
        table.blocks.clear()
        table.num_shared = 0

    def _drop_holder(self, block: int, table: BlockTable, refs: int) -> None:
        holders = self._holders[block]
        holders.remove(table)
        if refs == 1:
            last = holders[0]
            last.num_shared -= 1
            self._owner[block] = last
            del self._holders[block]
            self.num_shared_blocks -= 1
