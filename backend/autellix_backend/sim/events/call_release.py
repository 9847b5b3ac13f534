"""A call is released (sent): the balancer picks an engine and the call joins its queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from autellix_backend.sim.events.base import Event, EventContext
from autellix_backend.sim.events.step import StepStart
from autellix_backend.spec import CallSpec


@dataclass(frozen=True, slots=True)
class CallRelease(Event):
    order: ClassVar[int] = 2
    time: float
    program_id: str
    call: CallSpec = field(compare=False)

    def handle(self, ctx: EventContext) -> Sequence[Event]:
        index = ctx.submit_call(self.program_id, self.call, self.time)
        if not ctx.claim_engine(index):
            return ()
        return (StepStart(self.time, index),)
