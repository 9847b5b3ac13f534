"""Calibration: measure a real engine's step times, fit the simulator's cost model to them,
and check the fit by running one workload on both."""

from __future__ import annotations

from autellix_backend.calibration.fit import FitReport, fit_profile
from autellix_backend.calibration.steps import StepSample

__all__ = ["FitReport", "StepSample", "fit_profile"]
