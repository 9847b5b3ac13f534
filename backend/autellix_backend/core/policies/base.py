"""The interface every priority policy implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from autellix_backend.core.config import Policy
    from autellix_backend.core.process_table import CallArrival, CallRecord, ProgramRecord
    from autellix_protocol.snapshot import ProgramSnapshot


class PriorityPolicy(ABC):
    """Turns a program snapshot into a call's priority, and folds finished calls back in.

    ``priority`` runs wherever the call is queued (any engine), from the frozen snapshot the
    call carries; ``on_call_finished`` runs at the front end, on the one process table.

    A *discretised* policy places a call in the queue whose service range holds its priority
    and then lets quanta demote it (MLFQ, PLAS, ATLAS). A non-discretised one orders calls by
    ``sort_key`` on every step (FCFS, SRPT).
    """

    name: ClassVar[Policy]
    discretised: ClassVar[bool] = True
    preemptive: ClassVar[bool] = True
    arrival_ordered: ClassVar[bool] = False
    """True when ``sort_key`` is plain arrival order, so no sort is needed."""

    @abstractmethod
    def priority(self, snapshot: ProgramSnapshot, arrival: CallArrival) -> float:
        """Priority (attained service, lower runs first) of a call with this snapshot."""

    def on_call_finished(self, program: ProgramRecord, call: CallRecord) -> None:
        """Update the program's priority from a completed call (default: summed service)."""
        program.service += call.service

    def sort_key(self, call: CallRecord) -> tuple[float, int]:
        """Order of calls for non-discretised policies (ties broken by arrival)."""
        return (call.priority, call.seq)
