"""Simulation events, one module per event type."""

from __future__ import annotations

from autellix_backend.sim.events.base import Event
from autellix_backend.sim.events.call_release import CallRelease
from autellix_backend.sim.events.program_arrival import ProgramArrival
from autellix_backend.sim.events.step_end import StepEnd
from autellix_backend.sim.events.step_start import StepStart

__all__ = ["CallRelease", "Event", "ProgramArrival", "StepEnd", "StepStart"]
