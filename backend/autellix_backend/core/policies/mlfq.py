"""FastServe-style MLFQ: every new call starts in the top queue, whatever its program did."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autellix_backend.core.config import Policy
from autellix_backend.core.policies.base import PriorityPolicy

if TYPE_CHECKING:
    from autellix_backend.core.process_table import CallArrival
    from autellix_protocol.snapshot import ProgramSnapshot


class MLFQPolicy(PriorityPolicy):
    name = Policy.MLFQ

    def priority(self, snapshot: ProgramSnapshot, arrival: CallArrival) -> float:
        return 0.0
