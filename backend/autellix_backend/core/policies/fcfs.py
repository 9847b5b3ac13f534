"""First come, first served: vLLM's default order, no preemption for waiting calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autellix_backend.core.config import Policy
from autellix_backend.core.policies.base import PriorityPolicy

if TYPE_CHECKING:
    from autellix_backend.core.process_table import CallArrival, CallRecord
    from autellix_protocol.snapshot import ProgramSnapshot


class FCFSPolicy(PriorityPolicy):
    name = Policy.FCFS
    discretised = False
    preemptive = False
    arrival_ordered = True

    def priority(self, snapshot: ProgramSnapshot, arrival: CallArrival) -> float:
        return 0.0

    def sort_key(self, call: CallRecord) -> tuple[float, int]:
        return (call.arrival_time, call.seq)
