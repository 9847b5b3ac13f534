"""An engine starts a step: the scheduler picks the batch and the cost model prices it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from autellix_backend.sim.events.base import Event

if TYPE_CHECKING:
    from autellix_backend.sim.simulator import Simulator


@dataclass(frozen=True, slots=True)
class StepStart(Event):
    order: ClassVar[int] = 3
    time: float
    engine_index: int

    def handle(self, sim: Simulator) -> Sequence[Event]:
        from autellix_backend.sim.events.step_end import StepEnd

        engine = sim.engines[self.engine_index]
        duration = engine.start_step(self.time, until=sim.next_input_time())
        if duration is None:
            sim.engine_busy[self.engine_index] = False
            return ()
        return (StepEnd(self.time + duration, self.engine_index),)
