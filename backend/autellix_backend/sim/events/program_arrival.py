"""A program arrives: its session opens and its root calls are released."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from autellix_backend.sim.events.base import Event, EventContext
from autellix_backend.spec import ProgramSpec


@dataclass(frozen=True, slots=True)
class ProgramArrival(Event):
    order: ClassVar[int] = 1
    time: float
    program: ProgramSpec = field(compare=False)

    def handle(self, ctx: EventContext) -> Sequence[Event]:
        return ctx.on_program_arrival(self.program, self.time)
