"""The simulated engine and the discrete-event simulator.

>>> from autellix_backend.sim import EngineConfig, SimConfig, run_simulation
>>> from autellix_backend.spec import CallSpec, ProgramSpec, PromptSegment
>>> call = CallSpec("c1", "main", (), (PromptSegment("system", 32),), output_tokens=4)
>>> result = run_simulation([ProgramSpec("p1", 0.0, (call,))], SimConfig())
>>> result.programs[0].output_tokens
4
"""

from __future__ import annotations

from autellix_backend.sim.config import EngineConfig, PreemptionMode, SimConfig
from autellix_backend.sim.engine import SimEngine, StepOutcome
from autellix_backend.sim.kv_cache import BlockTable, KVCache
from autellix_backend.sim.profiles import (
    CostModel,
    InvalidProfileError,
    LinearCostModel,
    get_profile,
    register_profile,
)
from autellix_backend.sim.results import CallResult, EngineStats, ProgramResult, SimResult
from autellix_backend.sim.simulator import SimulationError, Simulator, run_simulation

__all__ = [
    "BlockTable",
    "CallResult",
    "CostModel",
    "EngineConfig",
    "EngineStats",
    "InvalidProfileError",
    "KVCache",
    "LinearCostModel",
    "PreemptionMode",
    "ProgramResult",
    "SimConfig",
    "SimEngine",
    "SimResult",
    "SimulationError",
    "Simulator",
    "StepOutcome",
    "get_profile",
    "register_profile",
    "run_simulation",
]
