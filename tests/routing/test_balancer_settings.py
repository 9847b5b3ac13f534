"""Balancers as configured by name and by default: the documented thresholds at their edges."""

from __future__ import annotations

import pytest

from autellix_backend.routing import (
    EngineView,
    LocalityBalancer,
    PrefixAwareBalancer,
    RouteRequest,
    make_balancer,
)
from autellix_backend.routing.cache_aware import CacheAwareBalancer


def views(*loads: int) -> list[EngineView]:
    return [EngineView(f"e{i}", n) for i, n in enumerate(loads)]


@pytest.mark.parametrize("balancer", [make_balancer("locality"), LocalityBalancer()])
def test_locality_follows_the_pin_above_2048_prompt_tokens_by_default(
    balancer: LocalityBalancer,
) -> None:
    assert balancer.choose(RouteRequest("p", 2049), views(0, 1)) == "e0"
    assert balancer.choose(RouteRequest("p", 2049), views(5, 1)) == "e0"
    assert balancer.choose(RouteRequest("p", 2048), views(5, 1)) == "e1"


def test_locality_remembers_a_hundred_thousand_programs_by_default() -> None:
    balancer = make_balancer("locality", locality_threshold=0)
    engines = views(0)
    for i in range(100_000):
        balancer.choose(RouteRequest(f"p{i}", 1), engines)
    assert isinstance(balancer, LocalityBalancer)
    assert balancer.pinned("p0") == "e0"
    balancer.choose(RouteRequest("one-more", 1), engines)
    assert balancer.pinned("p0") is None
    assert balancer.pinned("p1") == "e0"


def test_locality_forgets_the_least_recently_used_pin_first() -> None:
    balancer = LocalityBalancer(threshold=0, max_programs=2)
    balancer.choose(RouteRequest("a", 1), views(0, 3))
    balancer.choose(RouteRequest("b", 1), views(3, 0))
    balancer.choose(RouteRequest("a", 1), views(3, 0))  # a used again: b is the oldest now
    balancer.choose(RouteRequest("c", 1), views(0, 0))
    assert (balancer.pinned("a"), balancer.pinned("b"), balancer.pinned("c")) == ("e0", None, "e0")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"threshold": -1}, "threshold must be >= 0 and max_programs >= 1"),
        ({"max_programs": 0}, "threshold must be >= 0 and max_programs >= 1"),
    ],
)
def test_locality_refuses_a_negative_threshold_or_no_pins(
    settings: dict[str, int], message: str
) -> None:
    with pytest.raises(ValueError) as error:
        LocalityBalancer(**settings)
    assert str(error.value) == message


def test_locality_accepts_the_smallest_settings() -> None:
    balancer = LocalityBalancer(threshold=0, max_programs=1)
    assert balancer.choose(RouteRequest("p", 1), views(0, 1)) == "e0"
    assert balancer.choose(RouteRequest("p", 1), views(3, 1)) == "e0"


@pytest.mark.parametrize("balancer", [make_balancer("prefix_aware"), PrefixAwareBalancer()])
def test_prefix_aware_defaults_are_sglangs(balancer: PrefixAwareBalancer) -> None:
    blocks = (1, 2, 3, 4)
    assert balancer.choose(RouteRequest("p", 64, blocks), views(0, 0)) == "e0"
    # A gap of exactly 64 is not an imbalance, nor one of 66 at exactly 1.5x.
    assert balancer.choose(RouteRequest("p", 64, blocks), views(96, 32)) == "e0"
    assert balancer.choose(RouteRequest("p", 64, blocks), views(198, 132)) == "e0"
    # Half the prompt matched still follows the cache; a quarter does not.
    assert balancer.choose(RouteRequest("q", 64, (1, 2, 9, 9)), views(5, 0)) == "e0"
    assert balancer.choose(RouteRequest("r", 64, (1, 7, 7, 7)), views(5, 0)) == "e1"
    # A gap of 65 and over 1.5x is an imbalance: the least-used engine.
    assert balancer.choose(RouteRequest("p", 64, blocks), views(97, 32)) == "e1"


def test_prefix_aware_remembers_65536_blocks_per_engine_by_default() -> None:
    balancer = make_balancer("prefix_aware")
    assert isinstance(balancer, PrefixAwareBalancer)
    blocks = tuple(range(1, 65_538))
    balancer.choose(RouteRequest("p", 1, blocks), views(0))
    assert balancer.match_length("e0", blocks) == 65_536


def test_prefix_aware_settings_pass_through_by_name() -> None:
    balancer = make_balancer(
        "prefix_aware",
        balance_abs_threshold=1,
        balance_rel_threshold=1.0,
        cache_threshold=1.0,
        max_blocks_per_engine=2,
    )
    balancer.choose(RouteRequest("p", 64, (1, 2)), views(0, 0))
    assert balancer.choose(RouteRequest("p", 64, (1, 2)), views(1, 0)) == "e0"
    assert balancer.choose(RouteRequest("p", 64, (1, 2)), views(2, 0)) == "e1"  # gap of 2 > 1
    assert balancer.choose(RouteRequest("q", 64, (1, 3)), views(1, 1)) == "e0"  # half < 1.0
    with pytest.raises(ValueError, match=r"^max_blocks_per_engine must be at least 1$"):
        PrefixAwareBalancer(max_blocks_per_engine=0)


def test_prefix_aware_breaks_equal_matches_by_load() -> None:
    balancer = PrefixAwareBalancer()
    balancer.choose(RouteRequest("a", 64, (1, 2)), views(0, 1))
    balancer.choose(RouteRequest("b", 64, (1, 2)), views(100, 10))  # imbalanced: e1 too
    assert balancer.choose(RouteRequest("c", 64, (1, 2)), views(4, 3)) == "e1"
    assert balancer.choose(RouteRequest("d", 64, (1, 2)), views(3, 4)) == "e0"


def test_cache_aware_keeps_to_engines_within_two_calls_of_the_least_loaded_by_default() -> None:
    for balancer in (make_balancer("cache_aware"), CacheAwareBalancer()):
        balancer.on_kv_event("e0", stored=[1, 2], removed=[])
        assert balancer.choose(RouteRequest("p", 64, (1, 2)), views(2, 0)) == "e0"
        assert balancer.choose(RouteRequest("p", 64, (1, 2)), views(3, 0)) == "e1"
    strict = make_balancer("cache_aware", max_load_gap=0)
    strict.on_kv_event("e0", stored=[1, 2], removed=[])
    assert strict.choose(RouteRequest("p", 64, (1, 2)), views(1, 0)) == "e1"
    with pytest.raises(ValueError, match=r"^max_load_gap must be >= 0$"):
        CacheAwareBalancer(max_load_gap=-1)
