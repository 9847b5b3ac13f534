"""Simulation events, one module per event type (a step's start and end share one)."""

from __future__ import annotations

from autellix_backend.sim.events.base import Event, EventContext
from autellix_backend.sim.events.call_release import CallRelease
from autellix_backend.sim.events.program_arrival import ProgramArrival
from autellix_backend.sim.events.step import StepEnd, StepStart

__all__ = ["CallRelease", "Event", "EventContext", "ProgramArrival", "StepEnd", "StepStart"]
