"""A call is released (sent): the balancer picks an engine and the call joins its queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from autellix_backend.sim.events.base import Event
from autellix_backend.workloads.spec import CallSpec

if TYPE_CHECKING:
    from autellix_backend.sim.simulator import Simulator


@dataclass(frozen=True, slots=True)
class CallRelease(Event):
    order: ClassVar[int] = 2
    time: float
    program_id: str
    call: CallSpec = field(compare=False)

    def handle(self, sim: Simulator) -> Sequence[Event]:
        from autellix_backend.sim.events.step_start import StepStart

        index = sim.submit_call(self.program_id, self.call, self.time)
        if sim.engine_busy[index]:
            return ()
        sim.engine_busy[index] = True
        return (StepStart(self.time, index),)
