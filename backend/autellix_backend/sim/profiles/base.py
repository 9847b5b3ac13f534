"""The cost-model interface: one method per cost term of an engine step.

A step's duration is assembled by ``step_time`` (a template method) from the terms:

``linear_time(tokens) + sum(prefill_attention_time(n_i, ctx_i)) + decode_attention_time(b, ctx)
+ sampling_time(seqs) + schedule_overhead(seqs) [+ swap_time(blocks, transfers)]``
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from autellix_backend.core import AutellixError


class InvalidProfileError(AutellixError, ValueError):
    """A profile file or its values are malformed (unknown keys, negative costs)."""


class CostModel(ABC):
    """Step-time model of one engine (a model on a device), in seconds."""

    name: str
    """Registry name of the profile."""
    kv_capacity_tokens: int
    """Tokens of KV cache the device holds (sets the default number of KV blocks)."""

    @abstractmethod
    def linear_time(self, num_tokens: int) -> float:
        """Non-attention layers (projections, MLP, norms, embeddings) over a batch of tokens."""

    @abstractmethod
    def prefill_attention_time(self, num_tokens: int, num_context_tokens: int) -> float:
        """Attention of ``num_tokens`` new tokens after ``num_context_tokens`` cached ones."""

    @abstractmethod
    def decode_attention_time(self, num_seqs: int, num_context_tokens: int) -> float:
        """Attention of ``num_seqs`` decoding calls reading ``num_context_tokens`` KV in total."""

    @abstractmethod
    def sampling_time(self, num_seqs: int) -> float:
        """Output head and sampling for ``num_seqs`` calls that produce a token."""

    @abstractmethod
    def schedule_overhead(self, num_seqs: int) -> float:
        """CPU time of one scheduler invocation and batch preparation."""

    @abstractmethod
    def swap_block_time(self) -> float:
        """Copy time of one KV block between device and host memory (bandwidth term)."""

    @abstractmethod
    def swap_transfer_time(self) -> float:
        """Fixed cost of one transfer (copy launches for every layer)."""

    def swap_time(self, num_blocks: int, num_transfers: int) -> float:
        """Time to move ``num_blocks`` blocks in ``num_transfers`` transfers."""
        if num_blocks <= 0:
            return 0.0
        return num_blocks * self.swap_block_time() + num_transfers * self.swap_transfer_time()

    def step_time(
        self,
        *,
        prefill_chunks: Iterable[tuple[int, int]] = (),
        num_decode_seqs: int = 0,
        num_decode_context_tokens: int = 0,
        num_sampled: int = 0,
        scheduled: bool = True,
    ) -> float:
        """Duration of one step.

        Args:
            prefill_chunks: ``(new tokens, cached context tokens)`` of each prefilling call.
            num_decode_seqs: calls that decode one token.
            num_decode_context_tokens: KV tokens those calls attend to, summed.
            num_sampled: calls that produce a token in the step.
            scheduled: whether the scheduler ran before this step (multi-step skips it).
        """
        num_tokens = num_decode_seqs
        total = 0.0
        num_prefills = 0
        for new, context in prefill_chunks:
            num_tokens += new
            num_prefills += 1
            total += self.prefill_attention_time(new, context)
        if num_tokens == 0:
            return 0.0
        total += self.linear_time(num_tokens)
        if num_decode_seqs:
            total += self.decode_attention_time(num_decode_seqs, num_decode_context_tokens)
        total += self.sampling_time(num_sampled)
        if scheduled:
            total += self.schedule_overhead(num_decode_seqs + num_prefills)
        return total

    def prefill_time(self, num_tokens: int, num_context_tokens: int = 0) -> float:
        """A step that prefills one call's ``num_tokens`` and samples its first token."""
        return self.step_time(prefill_chunks=((num_tokens, num_context_tokens),), num_sampled=1)

    def decode_time(self, num_seqs: int, num_context_tokens: int) -> float:
        """A decode step of ``num_seqs`` calls attending to ``num_context_tokens`` in total."""
        return self.step_time(
            num_decode_seqs=num_seqs,
            num_decode_context_tokens=num_context_tokens,
            num_sampled=num_seqs,
        )
