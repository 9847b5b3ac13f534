"""KV retention on vLLM's own block pool: a finished call's blocks kept for its program.

No second cache: a hold is one extra reference (``BlockPool.touch``) on the blocks vLLM's
prefix cache already has, so they stay out of the free queue, and therefore out of eviction,
while the request that computed them is freed as usual. Releasing the hold hands the blocks
back (``BlockPool.free_blocks``, tail first, as vLLM frees a request), where they are the
most recently freed cached blocks: the program's next call finds them as prefix hits. The
rule (when, for how long, who yields) is the core's ``RetentionRule`` and
``RetentionLedger``, the same as the simulator's.

Not wired into ``AutellixScheduler`` yet: the scheduler must call ``hold`` from its
request-finished path (before ``kv_cache_manager.free``), ``release`` when a program's next
call is admitted, ends, is aborted or disconnects, ``expire`` each step, and ``make_room``
before admitting a call the free blocks cannot hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from autellix_backend.core import Hold, RetentionLedger, RetentionRule

if TYPE_CHECKING:
    from vllm.v1.core.block_pool import BlockPool
    from vllm.v1.core.kv_cache_utils import KVCacheBlock


class BlockPoolRetention:
    """Holds on one vLLM ``BlockPool``, one per program.

    Args:
        pool: the engine's block pool (``scheduler.kv_cache_manager.block_pool``).
        rule: the TTL rule.
    """

    def __init__(self, pool: BlockPool, rule: RetentionRule | None = None) -> None:
        self.pool = pool
        self.rule = rule or RetentionRule()
        self.ledger: RetentionLedger[list[KVCacheBlock]] = RetentionLedger()

    @property
    def num_held_blocks(self) -> int:
        """Blocks only holds keep (no running request shares them)."""
        return sum(sum(1 for b in h.payload if b.ref_cnt == 1) for h in self.ledger)

    def hold(
        self,
        program_id: str,
        blocks: Sequence[KVCacheBlock],
        *,
        now: float,
        expected_tool_seconds: float,
        recompute_seconds: float,
        priority: float,
    ) -> float:
        """Keep ``blocks`` (a finishing request's, before vLLM frees it) if the rule says so.

        Returns the TTL given (0: nothing held). A previous hold of the program is released.
        """
        blocks = [b for b in blocks if not b.is_null]
        exclusive = sum(1 for b in blocks if b.ref_cnt == 1)
        pool = self.pool
        ttl = self.rule.ttl(
            expected_tool_seconds=expected_tool_seconds,
            recompute_seconds=recompute_seconds,
            num_blocks=exclusive,
            num_used_blocks=pool.num_gpu_blocks - pool.get_num_free_blocks(),
            num_total_blocks=pool.num_gpu_blocks,
        )
        if ttl <= 0:
            return 0.0
        pool.touch(blocks)
        old = self.ledger.hold(
            Hold(program_id, blocks, num_blocks=exclusive, expires_at=now + ttl, priority=priority)
        )
        if old is not None:
            self._free(old)
        return ttl

    def release(self, program_id: str) -> int:
        """End the program's hold (next call admitted, program ended, aborted, disconnected)."""
        hold = self.ledger.take(program_id)
        return 0 if hold is None else self._free(hold)

    def expire(self, now: float) -> int:
        """End the holds whose TTL ran out; returns the blocks freed."""
        return sum(self._free(h) for h in self.ledger.expired(now))

    def make_room(self, num_blocks: int, *, priority: float, force: bool = False) -> int:
        """Free holds until ``num_blocks`` blocks are free for a call of rank ``priority``.

        Holds ranked better than the call stay unless ``force`` (nothing else can run).
        """
        short = num_blocks - self.pool.get_num_free_blocks()
        if short <= 0:
            return 0
        return self.ledger.yield_to(short, priority=priority, release=self._free, force=force)

    def _free(self, hold: Hold[list[KVCacheBlock]]) -> int:
        before = self.pool.get_num_free_blocks()
        self.pool.free_blocks(reversed(hold.payload))
        return self.pool.get_num_free_blocks() - before
