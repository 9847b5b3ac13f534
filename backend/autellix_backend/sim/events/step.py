"""An engine's step starts (the scheduler picks the batch, the cost model prices it) and ends
(its calls progress, finished calls release their dependants). One module, since each of the
two events schedules the other."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from autellix_backend.sim.events.base import Event, EventContext


@dataclass(frozen=True, slots=True)
class StepStart(Event):
    order: ClassVar[int] = 3
    time: float
    engine_index: int

    def handle(self, ctx: EventContext) -> Sequence[Event]:
        engine = ctx.engines[self.engine_index]
        duration = engine.start_step(self.time, until=ctx.next_input_time())
        if duration is None:
            ctx.release_engine(self.engine_index)
            return ()
        return (StepEnd(self.time + duration, self.engine_index),)


@dataclass(frozen=True, slots=True)
class StepEnd(Event):
    order: ClassVar[int] = 0
    time: float
    engine_index: int

    def handle(self, ctx: EventContext) -> Sequence[Event]:
        engine = ctx.engines[self.engine_index]
        outcome = engine.complete_step()
        follow: list[Event] = []
        for call in outcome.finished:
            follow += ctx.on_call_finished(call)
        if engine.has_work:
            follow.append(StepStart(self.time, self.engine_index))
        else:
            ctx.release_engine(self.engine_index)
        return follow
