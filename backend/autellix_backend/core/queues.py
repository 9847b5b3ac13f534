"""The discretised priority queues Q1..QK, FCFS inside each."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autellix_backend.core.config import SchedulerConfig
    from autellix_backend.core.process_table import CallRecord


class MultiLevelQueue:
    """K FIFO queues with contiguous service ranges [lo, hi); Q1 starts at 0.

    Each queue is an insertion-ordered dict, so removal is O(1) and a call that stays in its
    queue keeps its place (a preempted call resumes first).
    """

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.lower_bounds = config.lower_bounds()
        self.levels: list[dict[str, CallRecord]] = [{} for _ in range(config.num_queues)]

    def __len__(self) -> int:
        return sum(len(level) for level in self.levels)

    def level_for(self, priority: float) -> int:
        """The queue whose range holds ``priority``."""
        return max(0, bisect.bisect_right(self.lower_bounds, priority) - 1)

    def push(self, call: CallRecord, level: int) -> None:
        call.level = level
        call.quantum_used = 0.0
        self.levels[level][call.call_id] = call

    def remove(self, call: CallRecord) -> None:
        self.levels[call.level].pop(call.call_id, None)

    def requeue(self, call: CallRecord) -> None:
        """Send ``call`` to the tail of its own queue, keeping the quantum it has used."""
        level = self.levels[call.level]
        level.pop(call.call_id, None)
        level[call.call_id] = call

    def move(self, call: CallRecord, level: int) -> None:
        self.remove(call)
        self.push(call, level)

    def lengths(self) -> list[int]:
        return [len(level) for level in self.levels]

    def __iter__(self) -> Iterator[CallRecord]:
        for level in self.levels:
            yield from level.values()
