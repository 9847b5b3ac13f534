"""What one vLLM step can hold, as the core scheduler sees it: batch slots and KV blocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vllm.v1.request import Request

    from autellix_backend.core import CallRecord


class KVBlockBudget:
    """Counts each chosen call's full KV footprint (its tokens so far plus the next one).

    Prefix sharing is ignored, so the count is an upper bound: whatever the core admits,
    vLLM can allocate, and vLLM never has to preempt behind the core's back. With async
    scheduling a running request's tokens include the ones still in flight (vLLM's output
    placeholders), which hold KV slots before they are known.
    """

    def __init__(
        self,
        *,
        max_num_seqs: int,
        num_blocks: int,
        block_size: int,
        requests: Mapping[str, Request],
        lookahead_tokens: int = 0,
    ) -> None:
        self.max_num_seqs = max_num_seqs
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.requests = requests
        self.lookahead_tokens = lookahead_tokens
        self.num_seqs = 0
        self.num_used_blocks = 0

    def blocks_for(self, call: CallRecord) -> int:
        request = self.requests.get(call.call_id)
        tokens = (
            request.num_tokens + request.num_output_placeholders
            if request is not None
            else call.num_tokens
        )
        return -(-(tokens + 1 + self.lookahead_tokens) // self.block_size)

    def try_add(self, call: CallRecord, *, resident: bool) -> bool:
        if self.num_seqs >= self.max_num_seqs:
            return False
        need = self.blocks_for(call)
        if self.num_used_blocks + need > self.num_blocks:
            return False
        self.num_seqs += 1
        self.num_used_blocks += need
        return True
