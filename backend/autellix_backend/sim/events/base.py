"""The event interface: a timestamped happening whose handler returns follow-up events."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from autellix_backend.sim.simulator import Simulator


class Event(ABC):
    """Something that happens at ``time``.

    ``order`` breaks ties between events at the same time: step ends first (finished calls
    free room and release their children), then arrivals, then step starts, so a step sees
    everything that happened at its start time.
    """

    order: ClassVar[int]
    time: float

    @abstractmethod
    def handle(self, sim: Simulator) -> Sequence[Event]:
        """Apply the event to the simulation and return the events it causes."""
