"""Capacity planning for a fleet: ``autellix plan`` and the model behind it (docs/capacity.md)."""

from __future__ import annotations

from autellix_backend.plan.model import FleetPlan, FleetSettings, plan_fleet
from autellix_backend.plan.parts import MEASURED, MeasuredParts, measure_parts
from autellix_backend.plan.throughput import EngineThroughput, measure_engine
from autellix_backend.plan.validate import ScalingCheck, check_scaling

__all__ = [
    "MEASURED",
    "EngineThroughput",
    "FleetPlan",
    "FleetSettings",
    "MeasuredParts",
    "ScalingCheck",
    "check_scaling",
    "measure_engine",
    "measure_parts",
    "plan_fleet",
]
