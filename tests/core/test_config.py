"""Scheduler settings as a user writes them: defaults, spellings, and the values refused."""

from __future__ import annotations

import math

import pytest

from autellix_backend.core import (
    Policy,
    QueueOrder,
    SchedulerConfig,
    ServiceUnit,
    UnknownPolicyError,
)
from autellix_backend.core.retention import KVRetention, RetentionRule


def test_the_default_queues_double_their_quanta_from_a_quarter_second() -> None:
    config = SchedulerConfig()
    assert (config.policy, config.service_unit, config.num_queues) == (
        Policy.PLAS,
        ServiceUnit.ENGINE_TIME,
        8,
    )
    assert [config.quantum(level) for level in range(8)] == [
        0.25,
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        math.inf,
    ]
    assert config.lower_bounds() == (0.0, 0.25, 0.75, 1.75, 3.75, 7.75, 15.75, 31.75)
    assert config.starvation_beta == 8.0


def test_explicit_queue_boundaries_replace_the_quanta_sums() -> None:
    config = SchedulerConfig(num_queues=4, queue_boundaries=(0.5, 1.5, 3.5))
    assert config.lower_bounds() == (0.0, 0.5, 1.5, 3.5)


def test_settings_accept_the_names_users_type() -> None:
    config = SchedulerConfig(
        policy=" ATLAS-Exact ",  # type: ignore[arg-type]
        service_unit="tokens",  # type: ignore[arg-type]
        queue_order="least_attained",  # type: ignore[arg-type]
        kv_retention="TTL",  # type: ignore[arg-type]
        retention_rule={"default_tool_seconds": 3.0},  # type: ignore[arg-type]
    )
    assert config.policy is Policy.ATLAS_EXACT
    assert config.service_unit is ServiceUnit.TOKENS
    assert config.queue_order is QueueOrder.LEAST_ATTAINED
    assert config.kv_retention is KVRetention.TTL
    assert config.retention_rule == RetentionRule(default_tool_seconds=3.0)


def test_an_unknown_policy_names_the_known_ones() -> None:
    with pytest.raises(UnknownPolicyError) as error:
        SchedulerConfig(policy="lottery")  # type: ignore[arg-type]
    assert str(error.value) == (
        "unknown policy 'lottery'; known policies: fcfs, mlfq, plas, atlas, atlas_exact, srpt"
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"num_queues": 0}, "num_queues must be at least 1"),
        ({"base_quantum": 0.0}, "base_quantum must be positive"),
        ({"base_quantum": math.nan}, "base_quantum must be positive"),
        ({"quantum_growth": 0.99}, "quantum_growth must be at least 1"),
        ({"starvation_beta": 0.0}, "starvation_beta must be positive or None"),
        ({"prefill_token_cost": -0.5}, "token costs must be non-negative"),
        ({"decode_token_cost": -1.0}, "token costs must be non-negative"),
        (
            {"num_queues": 4, "queue_boundaries": (1.0, 2.0)},
            "queue_boundaries needs num_queues - 1 values",
        ),
        (
            {"num_queues": 4, "queue_boundaries": (1.0, 1.0, 2.0)},
            "queue_boundaries must be positive and increasing",
        ),
        (
            {"num_queues": 3, "queue_boundaries": (0.0, 1.0)},
            "queue_boundaries must be positive and increasing",
        ),
        (
            {"num_queues": 3, "queue_boundaries": (2.0, 1.0)},
            "queue_boundaries must be positive and increasing",
        ),
    ],
)
def test_out_of_range_settings_are_refused_with_what_is_wrong(
    settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as error:
        SchedulerConfig(**settings)  # type: ignore[arg-type]
    assert str(error.value) == message


def test_the_smallest_allowed_values_are_accepted() -> None:
    config = SchedulerConfig(
        num_queues=1,
        base_quantum=1e-9,
        quantum_growth=1.0,
        starvation_beta=None,
        prefill_token_cost=0.0,
        decode_token_cost=0.0,
    )
    assert config.lower_bounds() == (0.0,)
    assert config.quantum(0) == math.inf
    flat = SchedulerConfig(num_queues=3, base_quantum=2.0, quantum_growth=1.0)
    assert flat.lower_bounds() == (0.0, 2.0, 4.0)
    assert SchedulerConfig(starvation_beta=1e-9).starvation_beta == 1e-9
