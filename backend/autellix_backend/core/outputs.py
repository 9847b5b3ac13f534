"""Values exchanged between the scheduler and an engine on every step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autellix_backend.core.process_table import CallRecord


@dataclass(frozen=True, slots=True)
class SchedulerDecision:
    """What one ``Scheduler.schedule`` call decided."""

    scheduled: tuple[CallRecord, ...]
    """Calls that run in this step, highest priority first."""
    started: tuple[CallRecord, ...]
    """The subset of ``scheduled`` that was not running before (new or resumed)."""
    preempted: tuple[CallRecord, ...]
    """Calls that were running and must give way (the engine frees or swaps their KV)."""
    promoted_ids: tuple[str, ...] = field(default=())
    """Calls moved to the top queue by the anti-starvation rule."""

    @classmethod
    def make_empty(cls) -> SchedulerDecision:
        return cls(scheduled=(), started=(), preempted=())


@dataclass(frozen=True, slots=True)
class CallProgress:
    """Work one call did in one engine step."""

    call_id: str
    num_prefill_tokens: int = 0
    """Prompt tokens computed in the step (prefix-cache hits excluded)."""
    num_decode_tokens: int = 0
    """Output tokens generated in the step."""
