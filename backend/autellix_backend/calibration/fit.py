"""Fit the simulator's ``LinearCostModel`` to measured engine steps (non-negative least squares).

Forward time is regressed on the model's terms (a constant, batched tokens, prefill token
pairs, decode context tokens, sampled calls); the time around the forward (scheduling and
output processing) on a constant and the number of calls in the step. A term whose best fit
is negative is dropped and the rest refitted, so every cost stays >= 0. Steps slowed down by
something else on the machine (far above the first fit, by more than ``outlier_mads`` median
absolute deviations) are then dropped and the fit repeated, so that a noisy neighbour does not
inflate every cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autellix_backend.calibration.steps import StepSample
from autellix_backend.sim.profiles import LinearCostModel

MODEL_TERMS = (
    "step_base_s",
    "per_token_s",
    "per_prefill_pair_s",
    "per_decode_context_token_s",
    "per_sampled_seq_s",
)
OVERHEAD_TERMS = ("schedule_base_s", "schedule_per_seq_s")


@dataclass(frozen=True, slots=True)
class FitReport:
    """The fitted profile and how well it explains the samples."""

    profile: LinearCostModel
    num_samples: int
    mean_abs_error_s: float
    """Mean |predicted - measured| step time (forward plus overhead)."""
    mean_step_s: float


def fit_profile(
    samples: Sequence[StepSample],
    *,
    name: str,
    kv_capacity_tokens: int,
    description: str = "",
    outlier_mads: float | None = 5.0,
) -> FitReport:
    """Fit a profile to ``samples``; raises ``ValueError`` with fewer than 8 samples."""
    if len(samples) < 8:
        raise ValueError(f"need at least 8 step samples to fit, got {len(samples)}")
    if outlier_mads is not None:
        samples = _without_outliers(samples, kv_capacity_tokens, outlier_mads)
    model_x = np.array(
        [
            [1.0, s.num_tokens, s.prefill_pairs, s.num_decode_context_tokens, s.num_sampled]
            for s in samples
        ]
    )
    over_x = np.array([[1.0, s.num_seqs] for s in samples])
    model_y = np.array([s.model_s for s in samples])
    over_y = np.array([s.overhead_s for s in samples])
    model_coef = _nonnegative_lstsq(model_x, model_y)
    over_coef = _nonnegative_lstsq(over_x, over_y)
    values = dict(zip(MODEL_TERMS, model_coef, strict=True))
    values.update(zip(OVERHEAD_TERMS, over_coef, strict=True))
    profile = LinearCostModel(
        name=name,
        kv_capacity_tokens=kv_capacity_tokens,
        description=description,
        **{k: float(v) for k, v in values.items()},
    )
    predicted = model_x @ model_coef + over_x @ over_coef
    measured = model_y + over_y
    return FitReport(
        profile=profile,
        num_samples=len(samples),
        mean_abs_error_s=float(np.mean(np.abs(predicted - measured))),
        mean_step_s=float(np.mean(measured)),
    )


TIME_TERMS = (*MODEL_TERMS, *OVERHEAD_TERMS)


def load_scale(profile: LinearCostModel, samples: Sequence[StepSample]) -> float:
    """Measured over predicted total step time of ``samples``.

    On a shared machine neighbours slow the engine's steps, most by a little and a few (the
    steps the OS preempted) by a lot; a replay's latency adds them all up, so the factor that
    carries a profile to the load of the moment is the ratio of the sums, not a typical step's.
    """
    if not samples:
        raise ValueError("need at least one step sample")
    predicted = sum(_predict(profile, s) for s in samples)
    if predicted <= 0:
        raise ValueError("the profile predicts zero time for every sample")
    return sum(_measured(s) for s in samples) / predicted


def scaled(profile: LinearCostModel, factor: float) -> LinearCostModel:
    """``profile`` with every step-time term multiplied by ``factor`` (swap costs unchanged)."""
    return dataclasses.replace(
        profile, **{term: getattr(profile, term) * factor for term in TIME_TERMS}
    )


def _without_outliers(
    samples: Sequence[StepSample], kv_capacity_tokens: int, outlier_mads: float
) -> Sequence[StepSample]:
    """Drop steps far slower than the fit predicts, refitting until the kept set is stable."""
    kept = samples
    for _ in range(10):
        fit = fit_profile(
            kept, name="trim", kv_capacity_tokens=kv_capacity_tokens, outlier_mads=None
        )
        residuals = np.array([_measured(s) - _predict(fit.profile, s) for s in samples])
        mad = float(np.median(np.abs(residuals - np.median(residuals)))) or 1e-12
        trimmed = [s for s, r in zip(samples, residuals, strict=True) if r <= outlier_mads * mad]
        if len(trimmed) < 8 or len(trimmed) == len(kept):
            break
        kept = trimmed
    return kept


def _measured(sample: StepSample) -> float:
    return sample.model_s + sample.overhead_s


def _predict(profile: LinearCostModel, sample: StepSample) -> float:
    return (
        profile.step_base_s
        + profile.per_token_s * sample.num_tokens
        + profile.per_prefill_pair_s * sample.prefill_pairs
        + profile.per_decode_context_token_s * sample.num_decode_context_tokens
        + profile.per_sampled_seq_s * sample.num_sampled
        + profile.schedule_base_s
        + profile.schedule_per_seq_s * sample.num_seqs
    )


def _nonnegative_lstsq(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least squares with coefficients >= 0: drop the most negative term until none is."""
    active = list(range(x.shape[1]))
    coef = np.zeros(x.shape[1])
    while active:
        solution, *_ = np.linalg.lstsq(x[:, active], y, rcond=None)
        if (solution >= 0).all():
            coef[:] = 0.0
            coef[active] = solution
            return coef
        active.pop(int(np.argmin(solution)))
    return coef
