"""What an engine can fit in one step, as the scheduler sees it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from autellix_backend.core.process_table import CallRecord


class BatchBudget(Protocol):
    """Capacity left in the step being built; each engine supplies its own.

    ``try_add`` reserves room for ``call`` and returns True, or returns False and reserves
    nothing. ``resident`` says whether the call already holds its KV cache on the engine.
    """

    def try_add(self, call: CallRecord, *, resident: bool) -> bool: ...


class SlotBudget:
    """A budget of batch slots and, optionally, KV tokens.

    Good enough for engines that manage memory themselves; the simulator and the vLLM plugin
    pass budgets that know their real KV blocks.
    """

    def __init__(self, max_num_seqs: int, max_num_tokens: int | None = None) -> None:
        if max_num_seqs < 1:
            raise ValueError("max_num_seqs must be at least 1")
        self.max_num_seqs = max_num_seqs
        self.max_num_tokens = max_num_tokens
        self.num_seqs = 0
        self.num_tokens = 0

    def try_add(self, call: CallRecord, *, resident: bool) -> bool:
        if self.num_seqs >= self.max_num_seqs:
            return False
        need = call.num_tokens + 1
        if self.max_num_tokens is not None and self.num_tokens + need > self.max_num_tokens:
            return False
        self.num_seqs += 1
        self.num_tokens += need
        return True
