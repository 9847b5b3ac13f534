"""The discretised priority queues Q1..QK, FCFS inside each, and the sorted waiting calls."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autellix_backend.core.config import SchedulerConfig
    from autellix_backend.core.process_table import CallRecord


class MultiLevelQueue:
    """K FIFO queues with contiguous service ranges [lo, hi); Q1 starts at 0.

    Each queue is an insertion-ordered dict, so removal is O(1) and a call that stays in its
    queue keeps its place (a preempted call resumes first). ``tickets`` numbers each entry
    into a queue, so ``(level, ticket)`` sorts calls in the queues' own order.
    """

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.lower_bounds = config.lower_bounds()
        self.levels: list[dict[str, CallRecord]] = [{} for _ in range(config.num_queues)]
        self.tickets: dict[str, int] = {}
        self._next_ticket = 0

    def __len__(self) -> int:
        return sum(len(level) for level in self.levels)

    def level_for(self, priority: float) -> int:
        """The queue whose range holds ``priority``."""
        return max(0, bisect.bisect_right(self.lower_bounds, priority) - 1)

    def push(self, call: CallRecord, level: int) -> None:
        call.level = level
        call.quantum_used = 0.0
        self.levels[level][call.call_id] = call
        self._ticket(call)

    def remove(self, call: CallRecord) -> None:
        self.levels[call.level].pop(call.call_id, None)
        self.tickets.pop(call.call_id, None)

    def requeue(self, call: CallRecord) -> None:
        """Send ``call`` to the tail of its own queue, keeping the quantum it has used."""
        level = self.levels[call.level]
        level.pop(call.call_id, None)
        level[call.call_id] = call
        self._ticket(call)

    def _ticket(self, call: CallRecord) -> None:
        self._next_ticket += 1
        self.tickets[call.call_id] = self._next_ticket

    def move(self, call: CallRecord, level: int) -> None:
        self.remove(call)
        self.push(call, level)

    def lengths(self) -> list[int]:
        return [len(level) for level in self.levels]

    def __iter__(self) -> Iterator[CallRecord]:
        for level in self.levels:
            yield from level.values()


Key = tuple[Any, ...]
"""A sort key; the scheduler makes every key unique (it ends in a per-call number)."""


class SortedCalls:
    """Calls kept in ``key`` order as they come, go and change, so no step sorts them all.

    Each change costs a binary search and a list insert or delete (a memory move, cheap up to
    hundreds of thousands of calls); reading the order costs nothing. A call's key is read when
    it is added or ``update``-d, so the owner calls ``update`` whenever a key input changes.
    Keys must be unique: entries then compare by key alone, in C, never reaching the call.
    """

    def __init__(self, key: Callable[[CallRecord], Key]) -> None:
        self.key = key
        self.entries: list[tuple[Key, CallRecord]] = []
        """``(key, call)`` in ascending key order."""
        self._entry_of: dict[str, tuple[Key, CallRecord]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._entry_of

    def add(self, call: CallRecord) -> None:
        entry = (self.key(call), call)
        self._entry_of[call.call_id] = entry
        bisect.insort(self.entries, entry)

    def discard(self, call: CallRecord) -> None:
        entry = self._entry_of.pop(call.call_id, None)
        if entry is not None:
            del self.entries[bisect.bisect_left(self.entries, entry)]

    def update(self, call: CallRecord) -> None:
        """Re-read ``call``'s key (it is added if absent)."""
        self.discard(call)
        self.add(call)

    def calls(self) -> list[CallRecord]:
        return [call for _, call in self.entries]
