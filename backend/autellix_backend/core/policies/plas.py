"""PLAS: a call's priority is the total service its program has attained so far."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autellix_backend.core.config import Policy
from autellix_backend.core.policies.base import PriorityPolicy

if TYPE_CHECKING:
    from autellix_backend.core.process_table import CallArrival
    from autellix_protocol.snapshot import ProgramSnapshot


class PLASPolicy(PriorityPolicy):
    """Program-level least attained service for single-threaded programs."""

    name = Policy.PLAS

    def priority(self, snapshot: ProgramSnapshot, arrival: CallArrival) -> float:
        return snapshot.service
