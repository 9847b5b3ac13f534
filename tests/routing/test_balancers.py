"""The balancers' rules: round robin, least used, Autellix locality, SGLang-style prefix."""

from __future__ import annotations

import pytest

from autellix_backend.routing import (
    BalancerKind,
    EngineView,
    LocalityBalancer,
    NoHealthyEngineError,
    PrefixAwareBalancer,
    RouteRequest,
    UnknownBalancerError,
    make_balancer,
)


def views(*loads: int, unhealthy: tuple[int, ...] = ()) -> list[EngineView]:
    return [EngineView(f"e{i}", n, i not in unhealthy) for i, n in enumerate(loads)]


def test_round_robin_cycles_over_healthy_engines() -> None:
    balancer = make_balancer("round_robin")
    engines = views(9, 0, 5, unhealthy=(1,))
    picks = [balancer.choose(RouteRequest("p", 10), engines) for _ in range(4)]
    assert picks == ["e0", "e2", "e0", "e2"]


def test_least_used_picks_the_fewest_calls_among_healthy_engines() -> None:
    balancer = make_balancer("least_used")
    assert balancer.choose(RouteRequest("p", 10), views(3, 1, 2)) == "e1"
    assert balancer.choose(RouteRequest("p", 10), views(3, 1, 2, unhealthy=(1,))) == "e2"


def test_short_calls_go_to_the_least_used_engine_whatever_the_pin() -> None:
    balancer = LocalityBalancer(threshold=2048)
    assert balancer.choose(RouteRequest("p", 4000), views(0, 5)) == "e0"
    assert balancer.choose(RouteRequest("p", 2048), views(7, 1)) == "e1"
    assert balancer.pinned("p") == "e0"


def test_long_calls_follow_their_program_pin_even_when_it_is_busier() -> None:
    balancer = LocalityBalancer(threshold=2048)
    assert balancer.choose(RouteRequest("p", 2049), views(4, 2, 3)) == "e1"
    assert balancer.choose(RouteRequest("p", 5000), views(4, 9, 0)) == "e1"
    assert balancer.choose(RouteRequest("q", 3000), views(4, 9, 0)) == "e2"


def test_an_unhealthy_pinned_engine_is_skipped_and_the_program_re_pinned() -> None:
    balancer = LocalityBalancer(threshold=100)
    assert balancer.choose(RouteRequest("p", 500), views(0, 1)) == "e0"
    assert balancer.choose(RouteRequest("p", 500), views(0, 1, 2, unhealthy=(0,))) == "e1"
    assert balancer.pinned("p") == "e1"
    assert balancer.choose(RouteRequest("p", 500), views(0, 1, 2)) == "e1"


def test_pins_are_forgotten_at_program_end_and_bounded() -> None:
    balancer = LocalityBalancer(threshold=0, max_programs=2)
    for pid in ("a", "b", "c"):
        balancer.choose(RouteRequest(pid, 10), views(0, 0))
    assert balancer.pinned("a") is None
    balancer.on_program_finished("b")
    assert balancer.pinned("b") is None
    assert balancer.pinned("c") == "e0"


def test_no_healthy_engine_raises() -> None:
    for kind in BalancerKind:
        with pytest.raises(NoHealthyEngineError):
            make_balancer(kind).choose(RouteRequest("p", 5000, (1, 2)), views(0, unhealthy=(0,)))


def test_prefix_aware_routes_to_the_engine_holding_the_longest_prefix() -> None:
    balancer = PrefixAwareBalancer()
    assert balancer.choose(RouteRequest("p", 64, (1, 2, 3, 4)), views(0, 0)) == "e0"
    assert balancer.choose(RouteRequest("q", 64, (9, 8, 7, 6)), views(1, 0)) == "e1"
    # Shares 3 of 4 blocks with what e0 was sent: follow the cache although e0 is busier.
    assert balancer.choose(RouteRequest("r", 64, (1, 2, 3, 5)), views(10, 0)) == "e0"
    assert balancer.choose(RouteRequest("s", 64, (9, 8, 7, 1)), views(0, 10)) == "e1"


def test_prefix_aware_falls_back_to_least_used_on_imbalance_or_a_weak_match() -> None:
    balancer = PrefixAwareBalancer(balance_abs_threshold=64, balance_rel_threshold=1.5)
    balancer.choose(RouteRequest("p", 64, (1, 2, 3, 4)), views(0, 0))
    # A large gap that is not relatively large (200 < 1.5 * 140) is not an imbalance.
    assert balancer.choose(RouteRequest("r", 64, (1, 2, 3, 4)), views(200, 140)) == "e0"
    # Imbalanced: 100 - 10 > 64 and 100 > 1.5 * 10.
    assert balancer.choose(RouteRequest("q", 64, (1, 2, 3, 4)), views(100, 10)) == "e1"
    # A match under half the prompt is ignored.
    assert balancer.choose(RouteRequest("s", 64, (1, 20, 30, 40)), views(5, 0)) == "e1"


def test_prefix_trees_are_bounded() -> None:
    balancer = PrefixAwareBalancer(max_blocks_per_engine=3)
    balancer.choose(RouteRequest("p", 64, (1, 2, 3, 4, 5)), views(0))
    assert balancer.match_length("e0", (1, 2, 3, 4, 5)) == 3


def test_balancers_by_name() -> None:
    assert isinstance(make_balancer("Prefix-Aware"), PrefixAwareBalancer)
    with pytest.raises(UnknownBalancerError, match="locality"):
        make_balancer("random")
