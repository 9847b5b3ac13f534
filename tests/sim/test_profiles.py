"""Cost-model profiles: the registry, JSON files, and the A100 model's shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autellix_backend.core import UnknownProfileError
from autellix_backend.sim import (
    EngineConfig,
    InvalidProfileError,
    LinearCostModel,
    SimConfig,
    get_profile,
    run_simulation,
)
from tests.sim.conftest import chain_program


def test_unknown_profile_names_raise_a_typed_error() -> None:
    with pytest.raises(UnknownProfileError, match="a100-llama3-8b"):
        get_profile("tpu-v9")
    with pytest.raises(UnknownProfileError):
        get_profile("/no/such/profile.json")


def test_a_json_profile_file_is_loaded_and_drives_the_run(tmp_path: Path) -> None:
    path = tmp_path / "calibrated.json"
    path.write_text(json.dumps({"name": "calibrated", "kind": "linear", "step_base_s": 0.25}))
    model = get_profile(str(path))
    assert isinstance(model, LinearCostModel)
    assert model.decode_time(3, 100) == 0.25
    result = run_simulation(
        [chain_program("p", [4])], SimConfig(engine=EngineConfig(profile=str(path)))
    )
    assert result.programs[0].latency == pytest.approx(4 * 0.25)


@pytest.mark.parametrize(
    "content",
    [
        {"name": "x", "per_token_s": -1.0},
        {"name": "x", "per_tokn_s": 1.0},
        {"name": "x", "kind": "table"},
        {"per_token_s": 1.0},
        ["not", "an", "object"],
    ],
)
def test_malformed_profile_files_are_rejected(tmp_path: Path, content: object) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InvalidProfileError):
        get_profile(str(path))


def test_builtin_profiles_load() -> None:
    assert get_profile("unit").decode_time(7, 10_000) == 1.0
    assert get_profile("unit").prefill_time(1000) == 1.0
    assert get_profile("cpu-tiny").kv_capacity_tokens > 0


def test_a100_profile_grows_with_batch_context_and_prompt() -> None:
    a100 = get_profile("a100-llama3-8b")
    single = a100.decode_time(1, 1000)
    assert 0.008 < single < 0.02  # reading 16 GB of weights at ~2 TB/s takes 8 ms
    assert a100.decode_time(64, 64_000) > a100.decode_time(64, 16_000) > single
    assert a100.decode_time(256, 100_000) < 256 * single / 4  # batching pays
    assert a100.prefill_time(4096) > 2 * a100.prefill_time(1024)
    assert a100.prefill_time(512, num_context_tokens=8192) > a100.prefill_time(512)
    assert 300_000 < a100.kv_capacity_tokens < 600_000
    assert a100.swap_time(32, 32) > a100.swap_time(32, 1) > 0
