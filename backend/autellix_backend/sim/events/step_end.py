"""An engine step ends: its calls progress, finished calls release their dependants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from autellix_backend.sim.events.base import Event

if TYPE_CHECKING:
    from autellix_backend.sim.simulator import Simulator


@dataclass(frozen=True, slots=True)
class StepEnd(Event):
    order: ClassVar[int] = 0
    time: float
    engine_index: int

    def handle(self, sim: Simulator) -> Sequence[Event]:
        from autellix_backend.sim.events.step_start import StepStart

        engine = sim.engines[self.engine_index]
        outcome = engine.complete_step()
        follow: list[Event] = []
        for call in outcome.finished:
            follow += sim.on_call_finished(call)
        if engine.has_work:
            follow.append(StepStart(self.time, self.engine_index))
        else:
            sim.engine_busy[self.engine_index] = False
        return follow
