"""Fitting the simulator's cost model to step samples (no engine needed)."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path

import pytest

from autellix_backend.calibration.fit import fit_profile, load_scale, scaled
from autellix_backend.calibration.steps import StepSample, read_step_log
from autellix_backend.sim.profiles import LinearCostModel, get_profile

TRUE = LinearCostModel(
    name="truth",
    step_base_s=0.004,
    per_token_s=2e-5,
    per_prefill_pair_s=1e-8,
    per_decode_context_token_s=3e-7,
    per_sampled_seq_s=5e-4,
    schedule_base_s=0.001,
    schedule_per_seq_s=1e-4,
)


def _sample(rng: random.Random) -> StepSample:
    chunks = tuple((rng.randint(1, 512), rng.randint(0, 256)) for _ in range(rng.randint(0, 2)))
    decode = rng.randint(0, 8)
    context = decode * rng.randint(16, 800)
    sampled = decode + len(chunks)
    model = (
        TRUE.step_base_s
        + TRUE.per_token_s * (sum(n for n, _ in chunks) + decode)
        + sum(TRUE.prefill_attention_time(n, c) for n, c in chunks)
        + TRUE.per_decode_context_token_s * context
        + TRUE.per_sampled_seq_s * sampled
    )
    overhead = TRUE.schedule_overhead(len(chunks) + decode)
    return StepSample(model, overhead, chunks, decode, context, sampled)


def test_fit_recovers_the_costs_that_generated_the_samples() -> None:
    rng = random.Random(0)
    samples = [_sample(rng) for _ in range(200)]
    report = fit_profile(samples, name="fitted", kv_capacity_tokens=4096)
    fitted = report.profile
    for term in ("step_base_s", "per_token_s", "per_decode_context_token_s", "per_sampled_seq_s"):
        assert getattr(fitted, term) == pytest.approx(getattr(TRUE, term), rel=1e-3)
    assert fitted.schedule_per_seq_s == pytest.approx(TRUE.schedule_per_seq_s, rel=1e-3)
    assert report.mean_abs_error_s < 1e-6


def test_load_scale_is_how_much_slower_the_recent_steps_ran_than_the_fit() -> None:
    rng = random.Random(2)
    slowed = [
        StepSample(2.5 * s.model_s, 2.5 * s.overhead_s, *dataclasses.astuple(s)[2:])
        for s in (_sample(rng) for _ in range(40))
    ]
    assert load_scale(TRUE, slowed) == pytest.approx(2.5)
    stall = sum(s.model_s + s.overhead_s for s in slowed)  # one step as long as all the rest
    stalled = [*slowed, dataclasses.replace(slowed[0], model_s=slowed[0].model_s + stall)]
    assert (
        load_scale(TRUE, stalled) > 4.5
    )  # the stall doubles the replay's time; a median would not see it
    faster = scaled(TRUE, 2.5)
    assert load_scale(faster, slowed) == pytest.approx(1.0)
    assert faster.per_token_s == pytest.approx(2.5 * TRUE.per_token_s)
    assert faster.schedule_base_s == pytest.approx(2.5 * TRUE.schedule_base_s)
    assert faster.kv_capacity_tokens == TRUE.kv_capacity_tokens


def test_fitted_profile_is_a_loadable_simulator_profile(tmp_path: Path) -> None:
    rng = random.Random(1)
    report = fit_profile([_sample(rng) for _ in range(50)], name="mine", kv_capacity_tokens=8192)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(report.profile.to_dict()))
    loaded = get_profile(str(path))
    assert loaded.name == "mine"
    assert loaded.kv_capacity_tokens == 8192


def test_costs_never_go_negative() -> None:
    rng = random.Random(2)
    samples = [
        StepSample(0.01 + rng.random() * 1e-4, 0.0, ((rng.randint(1, 64), 0),), 0, 0, 1)
        for _ in range(30)
    ]
    profile = fit_profile(samples, name="flat", kv_capacity_tokens=1).profile
    assert all(v >= 0 for k, v in profile.to_dict().items() if k.endswith("_s"))


def test_too_few_samples_and_bad_logs_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 8"):
        fit_profile([], name="x", kv_capacity_tokens=1)
    log = tmp_path / "steps.jsonl"
    log.write_text('{"model_s": 0.1}\n')
    with pytest.raises(ValueError, match=r"steps\.jsonl:1"):
        read_step_log(log)


def test_steps_slowed_by_a_noisy_neighbour_do_not_inflate_the_costs() -> None:
    rng = random.Random(3)
    samples = [_sample(rng) for _ in range(200)]
    noisy = [
        StepSample(s.model_s * 6, s.overhead_s, s.prefill_chunks, s.num_decode_seqs,
                   s.num_decode_context_tokens, s.num_sampled)
        if i % 10 == 0 else s
        for i, s in enumerate(samples)
    ]  # fmt: skip
    fitted = fit_profile(noisy, name="robust", kv_capacity_tokens=1).profile
    assert fitted.step_base_s == pytest.approx(TRUE.step_base_s, rel=0.05)
    assert fitted.per_token_s == pytest.approx(TRUE.per_token_s, rel=0.05)
