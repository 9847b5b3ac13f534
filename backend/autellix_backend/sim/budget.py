"""The simulated engine's ``BatchBudget``: batch slots, a per-step token budget, KV blocks.

The core scheduler offers calls in priority order; the budget grants each the tokens it may
compute this step and the KV blocks it will hold after it. KV accounting counts every block
not shared between calls as available, since preempting a running call that the scheduler
does not pick frees its own blocks; a call reserves the blocks it will hold that no other
call already shares. Chunked prefill takes what is left of the token budget after one token
for every running decode; a call that gets no tokens still takes its slot (it waits on the
device for the next step) instead of ending the scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from autellix_backend.sim.sequence import SeqState, SimSequence

if TYPE_CHECKING:
    from autellix_backend.core import CallRecord
    from autellix_backend.sim.config import EngineConfig
    from autellix_backend.sim.kv_cache import KVCache


@dataclass(slots=True)
class Grant:
    """What one call may do in the step being built."""

    seq: SimSequence
    num_tokens: int
    """Stream tokens to compute (0: admitted but waiting for token budget)."""
    hit_blocks: list[int]
    """Cached blocks to take on admission (uncomputed calls only)."""


class KVBatchBudget:
    """Capacity of one step of a simulated engine (implements the core's ``BatchBudget``)."""

    def __init__(
        self,
        config: EngineConfig,
        kv: KVCache,
        seqs: dict[str, SimSequence],
        *,
        num_running_decodes: int,
    ) -> None:
        self.config = config
        self.kv = kv
        self.seqs = seqs
        self.block_size = kv.block_size
        self.seqs_left = config.max_num_seqs
        self.tokens_left = config.max_num_batched_tokens
        self.decode_reserve = num_running_decodes
        self.blocks_left = kv.num_blocks - kv.num_shared_blocks
        self.num_prefills = 0
        self.grants: dict[str, Grant] = {}

    def try_add(self, call: CallRecord, *, resident: bool) -> bool:
        if self.seqs_left <= 0:
            return False
        seq = self.seqs[call.call_id]
        hits: list[int] = []
        if resident or seq.state is SeqState.RESIDENT:
            start, shared = seq.num_computed, seq.table.num_shared
        elif seq.state is SeqState.SWAPPED:
            start, shared = seq.num_computed, 0
        else:
            hits = self._prefix_hits(seq)
            start, shared = len(hits) * self.block_size, self.kv.count_shared(hits)
        pending = seq.stream_len - start
        is_reserved_decode = resident and seq.is_decoding
        num_tokens = self._tokens_for(pending, is_reserved_decode)
        if num_tokens is None:
            return False
        need = -(-(start + num_tokens) // self.block_size) - shared
        if need > self.blocks_left:
            return False
        self.blocks_left -= need
        self.seqs_left -= 1
        self.tokens_left -= num_tokens
        if is_reserved_decode:
            self.decode_reserve -= 1
        elif num_tokens:
            self.num_prefills += 1
        self.grants[call.call_id] = Grant(seq, num_tokens, hits)
        return True

    def _tokens_for(self, pending: int, is_reserved_decode: bool) -> int | None:
        """Tokens a call computes this step; None when it cannot run at all."""
        if is_reserved_decode:
            return 1
        available = self.tokens_left - self.decode_reserve
        if pending <= available:
            return pending
        if self.config.enable_chunked_prefill:
            return max(available, 0)
        if pending > self.config.max_num_batched_tokens and self.num_prefills == 0:
            return pending  # an oversized prompt runs alone, as unchunked engines allow
        return 0

    def _prefix_hits(self, seq: SimSequence) -> list[int]:
        if not self.kv.enable_prefix_caching:
            return []
        length = seq.stream_len
        hits = self.kv.match(seq.ensure_hashes(length, self.block_size))
        if len(hits) * self.block_size >= length:
            hits = hits[: (length - 1) // self.block_size]  # compute at least one token
        return hits
