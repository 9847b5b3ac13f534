"""A program arrives: its session opens and its root calls are released."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from autellix_backend.sim.events.base import Event
from autellix_backend.workloads.spec import ProgramSpec

if TYPE_CHECKING:
    from autellix_backend.sim.simulator import Simulator


@dataclass(frozen=True, slots=True)
class ProgramArrival(Event):
    order: ClassVar[int] = 1
    time: float
    program: ProgramSpec = field(compare=False)

    def handle(self, sim: Simulator) -> Sequence[Event]:
        return sim.on_program_arrival(self.program, self.time)
