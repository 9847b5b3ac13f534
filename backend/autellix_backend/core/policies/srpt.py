"""SRPT oracle: shortest remaining program work first. Needs future knowledge: simulation only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autellix_backend.core.config import Policy
from autellix_backend.core.errors import InvalidCallError
from autellix_backend.core.policies.base import PriorityPolicy

if TYPE_CHECKING:
    from autellix_backend.core.process_table import CallArrival, CallRecord
    from autellix_protocol.snapshot import ProgramSnapshot


class SRPTPolicy(PriorityPolicy):
    name = Policy.SRPT
    discretised = False

    def priority(self, snapshot: ProgramSnapshot, arrival: CallArrival) -> float:
        if arrival.oracle_remaining is None:
            raise InvalidCallError("SRPT needs oracle_remaining on every call (simulation only)")
        return arrival.oracle_remaining

    def sort_key(self, call: CallRecord) -> tuple[float, int]:
        return (call.priority - call.service, call.seq)
