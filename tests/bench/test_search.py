"""Capacity search on the real simulator: the bracket it ends with straddles the target."""

from __future__ import annotations

import dataclasses

from autellix_backend.bench.analysis import capacity
from autellix_backend.bench.capacity import Bound
from autellix_backend.bench.records import TARGET_METRIC, RunSpec
from autellix_backend.bench.runner import BenchSettings, run_one
from autellix_backend.bench.search import probe_spec, search_capacity


def test_search_ends_with_a_bracket_as_narrow_as_asked() -> None:
    curve = RunSpec("latency", "sharegpt", "plas", 10)
    settings = BenchSettings()
    unloaded = run_one(dataclasses.replace(curve, rate=0.25), settings).mean
    target = 3 * unloaded
    probes = search_capacity(curve, target, settings, precision=0.2, start=0.5, window=20.0)
    met = [p.spec.rate for p in probes if p.mean <= target]
    missed = [p.spec.rate for p in probes if p.mean > target]
    assert met and missed
    assert max(met) < min(missed) <= 1.2 * max(met) * 1.0001
    assert all(p.metrics[TARGET_METRIC] == target for p in probes)
    found = capacity(probes, target)
    assert found.bound is Bound.EXACT and max(met) <= found.rate <= min(missed)


def test_probes_at_higher_rates_run_more_programs_over_the_same_window() -> None:
    curve = RunSpec("latency", "sharegpt", "plas", 10)
    assert probe_spec(curve, 1.0, window=30.0).num_programs == 30
    assert probe_spec(curve, 2.0, window=30.0).num_programs == 60
    assert probe_spec(curve, 0.1, window=30.0).num_programs == 10
