"""Cost models of engine steps, one class per kind, chosen by name through a registry."""

from __future__ import annotations

from autellix_backend.sim.profiles.a100 import A100Hardware, A100Llama3Model, LlamaShape
from autellix_backend.sim.profiles.base import CostModel, InvalidProfileError
from autellix_backend.sim.profiles.linear import LinearCostModel
from autellix_backend.sim.profiles.registry import PROFILES, get_profile, register_profile

__all__ = [
    "PROFILES",
    "A100Hardware",
    "A100Llama3Model",
    "CostModel",
    "InvalidProfileError",
    "LinearCostModel",
    "LlamaShape",
    "get_profile",
    "register_profile",
]
