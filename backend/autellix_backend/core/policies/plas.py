"""PLAS: a call's priority is the total service its program has attained so far."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autellix_backend.core.config import Policy
from autellix_backend.core.policies.base import PriorityPolicy

if TYPE_CHECKING:
    from autellix_backend.core.process_table import CallArrival, ProgramRecord


class PLASPolicy(PriorityPolicy):
    """Program-level least attained service for single-threaded programs."""

    name = Policy.PLAS

    def arrival_priority(self, program: ProgramRecord, arrival: CallArrival) -> float:
        if arrival.service_at_arrival is not None:
            return arrival.service_at_arrival
        return program.service
