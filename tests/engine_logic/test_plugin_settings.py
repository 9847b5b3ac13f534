"""Plugin settings and metadata parsing (no engine needed)."""

from __future__ import annotations

import pytest

from autellix_backend.core import Policy, SchedulerConfig
from autellix_backend.engines.base import ProgramTag
from autellix_backend.engines.local_vllm import plugin_config
from autellix_integrations.vllm import (
    MetadataError,
    PluginSettings,
    SettingsError,
    arrival_from_xargs,
)
from autellix_protocol import ProgramSnapshot


def test_environment_sets_core_fields_and_additional_config_wins() -> None:
    env = {
        "AUTELLIX_POLICY": "atlas",
        "AUTELLIX_BASE_QUANTUM": "0.2",
        "AUTELLIX_STARVATION_BETA": "none",
        "AUTELLIX_PREEMPTION": "false",
        "AUTELLIX_QUEUE_BOUNDARIES": "1,2,3,4,5,6,7",
        "AUTELLIX_REPORT_PORT": "9100",
    }
    settings = PluginSettings.load({"autellix": {"num_queues": 8, "base_quantum": 0.5}}, env)
    config = settings.scheduler
    assert config.policy is Policy.ATLAS
    assert config.base_quantum == 0.5
    assert config.starvation_beta is None
    assert config.preemption is False
    assert config.queue_boundaries == (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    assert settings.report_port == 9100


def test_defaults_are_the_core_defaults() -> None:
    assert PluginSettings.load(None, {}).scheduler == SchedulerConfig()


def test_adapter_config_round_trips_through_the_plugin() -> None:
    config = SchedulerConfig(policy=Policy.ATLAS_EXACT, num_queues=4, starvation_beta=None)
    extra = {"autellix": plugin_config(config, engine_id="e1")}
    settings = PluginSettings.load(extra, {})
    assert settings.scheduler == config
    assert settings.engine_id == "e1"


@pytest.mark.parametrize(
    ("extra", "env"),
    [
        ({"autellix": {"no_such_setting": 1}}, {}),
        ({"autellix": "plas"}, {}),
        (None, {"AUTELLIX_NUM_QUEUES": "many"}),
        (None, {"AUTELLIX_POLICY": "lottery"}),
        (None, {"AUTELLIX_NUM_QUEUES": "0"}),
    ],
)
def test_bad_settings_are_rejected(extra: dict[str, object] | None, env: dict[str, str]) -> None:
    with pytest.raises((SettingsError, ValueError)):
        PluginSettings.load(extra, env)


def test_program_tag_round_trips_through_vllm_xargs() -> None:
    snapshot = ProgramSnapshot(service=1.25, critical_path=2.5, total_service=1.0, total_wait=0.5)
    tag = ProgramTag("p1", "t2", "c3", ("a", "b"), snapshot)
    arrival = arrival_from_xargs("req-9", tag.as_xargs(), prompt_tokens=7, max_tokens=5)
    assert (arrival.call_id, arrival.program_id, arrival.thread_id) == ("c3", "p1", "t2")
    assert arrival.parent_ids == ("a", "b")
    assert arrival.snapshot == snapshot
    assert (arrival.prompt_tokens, arrival.max_tokens) == (7, 5)


def test_a_request_without_metadata_is_its_own_program() -> None:
    arrival = arrival_from_xargs("req-1", None, prompt_tokens=3, max_tokens=None)
    assert arrival.program_id == "request:req-1"
    assert arrival.call_id == "req-1"
    assert arrival.snapshot == ProgramSnapshot()


@pytest.mark.parametrize(
    "xargs",
    [
        {"autellix_service": "-1"},
        {"autellix_service": "nan"},
        {"autellix_service": "fast"},
        {"autellix_total_wait": "-0.5"},
        {"autellix_parent_ids": 5},
        {"autellix_program_id": {"a": 1}},
    ],
)
def test_malformed_metadata_is_a_typed_error(xargs: dict[str, object]) -> None:
    with pytest.raises(MetadataError):
        arrival_from_xargs("r", xargs, prompt_tokens=1, max_tokens=1)
