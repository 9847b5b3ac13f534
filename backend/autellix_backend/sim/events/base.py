"""The event interface: a timestamped happening whose handler returns follow-up events.

Handlers see the simulation only through ``EventContext``, the few operations the events
need, so no event imports the simulator, and none writes the simulator's fields.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from autellix_backend.sim.engine import SimEngine
    from autellix_backend.sim.results import CallResult
    from autellix_backend.spec import CallSpec, ProgramSpec


class EventContext(Protocol):
    """What events may ask of the simulation that runs them (``Simulator`` implements it)."""

    @property
    def engines(self) -> Sequence[SimEngine]: ...

    def next_input_time(self) -> float:
        """Earliest pending event that could bring an engine new work."""
        ...

    def on_program_arrival(self, program: ProgramSpec, now: float) -> list[Event]:
        """Open the program and return the release events of its root calls."""
        ...

    def submit_call(self, program_id: str, call: CallSpec, now: float) -> int:
        """Route a released call to an engine and queue it there; returns the engine index."""
        ...

    def on_call_finished(self, result: CallResult) -> list[Event]:
        """Record a finished call; return the release events of the calls it unblocks."""
        ...

    def claim_engine(self, index: int) -> bool:
        """Mark engine ``index`` stepping; False if it already was (no new step needed)."""
        ...

    def release_engine(self, index: int) -> None:
        """Mark engine ``index`` idle (nothing left to step)."""
        ...


class Event(ABC):
    """Something that happens at ``time``.

    ``order`` breaks ties between events at the same time: step ends first (finished calls
    free room and release their children), then arrivals, then step starts, so a step sees
    everything that happened at its start time.
    """

    order: ClassVar[int]
    time: float

    @abstractmethod
    def handle(self, ctx: EventContext) -> Sequence[Event]:
        """Apply the event through ``ctx`` and return the events it causes."""
