"""The retention rule's settings as users set them: defaults, refusals, and TTLs off break-even."""

from __future__ import annotations

import math
import re

import pytest

from autellix_backend.core import Hold, KVRetention, RetentionLedger, RetentionRule, ToolDurations
from autellix_backend.core.retention import UnknownRetentionError


def test_the_default_rule_is_the_documented_one() -> None:
    rule = RetentionRule()
    assert rule.default_tool_seconds == 1.0
    assert rule.ttl_slack == 2.0
    assert rule.max_ttl == 30.0
    assert rule.min_pressure == 0.05
    assert rule.memory_value == 1.0
    assert rule.max_held_fraction == 1.0
    assert rule.held_limit(1000) == 1000


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"default_tool_seconds": -0.5}, "default_tool_seconds and max_ttl must be >= 0"),
        ({"default_tool_seconds": math.nan}, "default_tool_seconds and max_ttl must be >= 0"),
        ({"max_ttl": -1.0}, "default_tool_seconds and max_ttl must be >= 0"),
        ({"ttl_slack": 0.99}, "ttl_slack must be at least 1"),
        ({"min_pressure": 0.0}, "min_pressure must be in (0, 1]"),
        ({"min_pressure": 1.01}, "min_pressure must be in (0, 1]"),
        ({"memory_value": 0.0}, "memory_value must be positive"),
        ({"memory_value": math.nan}, "memory_value must be positive"),
        ({"max_held_fraction": 0.0}, "max_held_fraction must be in (0, 1]"),
        ({"max_held_fraction": 1.5}, "max_held_fraction must be in (0, 1]"),
    ],
)
def test_each_out_of_range_setting_is_refused_by_name(
    settings: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        RetentionRule(**settings)


def test_the_edges_of_each_range_are_accepted() -> None:
    rule = RetentionRule(
        default_tool_seconds=0.0,
        max_ttl=0.0,
        ttl_slack=1.0,
        min_pressure=1.0,
        memory_value=1e-9,
        max_held_fraction=1.0,
    )
    assert (rule.default_tool_seconds, rule.max_ttl, rule.ttl_slack) == (0.0, 0.0, 1.0)
    assert RetentionRule(min_pressure=1e-9, max_held_fraction=1e-9).held_limit(10**9) == 1


def _ttl(
    rule: RetentionRule,
    *,
    expected: float = 2.0,
    recompute: float = 0.3,
    blocks: int = 100,
    used: int = 1000,
    total: int = 1000,
) -> float:
    return rule.ttl(
        expected_tool_seconds=expected,
        recompute_seconds=recompute,
        num_blocks=blocks,
        num_used_blocks=used,
        num_total_blocks=total,
    )


def test_ttl_is_the_tool_time_with_slack_when_that_comes_first() -> None:
    rule = RetentionRule(ttl_slack=1.5, memory_value=1.0, max_ttl=100.0)
    # cost 1.0 * 1.0 * 100/1000 = 0.1/s; break-even 30 s; 1.5 * 2 s = 3 s comes first.
    assert _ttl(rule, recompute=3.0) == pytest.approx(3.0)
    # The same hold capped by max_ttl.
    assert _ttl(RetentionRule(ttl_slack=1.5, memory_value=1.0, max_ttl=2.5), recompute=3.0) == 2.5


def test_an_idle_engine_still_charges_the_pressure_floor() -> None:
    rule = RetentionRule(ttl_slack=4.0, memory_value=1.0, min_pressure=0.05)
    # 10 of 1000 blocks used: pressure floored at 0.05, cost 0.005/s, break-even 0.03/0.005 = 6 s
    assert _ttl(rule, recompute=0.03, used=10) == pytest.approx(6.0)
    # 500 used: pressure 0.5, cost 0.05/s, break-even 4 s (under 4 * 2 s).
    assert _ttl(rule, recompute=0.2, used=500) == pytest.approx(4.0)


def test_an_overfull_pool_counts_as_full() -> None:
    rule = RetentionRule(ttl_slack=4.0, memory_value=1.0)
    # 2000 of 1000 used (shared blocks counted twice): pressure 1, cost 0.1/s, break-even 3 s.
    assert _ttl(rule, recompute=0.3, used=2000) == pytest.approx(3.0)


def test_a_hold_at_exactly_break_even_is_made() -> None:
    rule = RetentionRule(ttl_slack=4.0, memory_value=1.0)
    # break-even 0.2 / 0.1 = 2 s, the expected tool time itself: still worth holding.
    assert _ttl(rule, recompute=0.2, expected=2.0) == pytest.approx(2.0)
    assert _ttl(rule, recompute=0.19, expected=2.0) == 0.0


def test_nothing_to_hold_or_no_pool_means_no_hold() -> None:
    rule = RetentionRule()
    assert _ttl(rule, blocks=-1) == 0.0
    assert _ttl(rule, total=0, used=0) == 0.0
    assert _ttl(rule, recompute=-1.0) == 0.0
    assert _ttl(rule, blocks=1, used=1, recompute=1e-3) > 0.0


def test_tool_durations_default_and_weight() -> None:
    tools = ToolDurations()
    assert tools.default == 1.0 and tools.weight == 0.2
    assert tools.expected("search") == 1.0
    tools.observe("search", 4.0)
    assert tools.expected("search") == 4.0  # the first observation is the mean
    tools.observe("search", 2.0)
    assert tools.expected("search") == pytest.approx(3.6)


def test_tool_durations_ignore_impossible_times() -> None:
    tools = ToolDurations(default=1.0, weight=1.0)
    tools.observe("calc", 0.0)
    assert tools.expected("calc") == 0.0
    for bad in (-1.0, math.inf, math.nan):
        tools.observe("calc", bad)
    assert tools.expected("calc") == 0.0
    tools.observe("calc", 5.0)
    assert tools.expected("calc") == 5.0  # weight 1: the newest time alone


@pytest.mark.parametrize(("default", "weight"), [(-0.1, 0.2), (1.0, 0.0), (1.0, 1.01)])
def test_tool_durations_refuse_a_negative_default_or_a_weight_outside_0_1(
    default: float, weight: float
) -> None:
    with pytest.raises(ValueError, match=r"^default must be >= 0 and weight in \(0, 1\]$"):
        ToolDurations(default, weight=weight)


def test_tool_durations_accept_the_edges() -> None:
    assert ToolDurations(0.0, weight=1.0).expected(None) == 0.0


def test_the_mode_is_parsed_as_users_type_it() -> None:
    assert KVRetention.parse(" DAG ") is KVRetention.DAG
    assert KVRetention.parse(KVRetention.TTL) is KVRetention.TTL
    known = "unknown kv_retention mode 'always'; known kv_retention modes: off, ttl, dag"
    with pytest.raises(UnknownRetentionError, match=f"^{re.escape(known)}$"):
        KVRetention.parse("always")


def test_a_one_block_pool_still_holds() -> None:
    rule = RetentionRule(memory_value=0.1)
    # cost 0.1 * 1 * 1/1 = 0.1/s; break-even 10 s; the TTL is 2 * 2 s.
    assert _ttl(rule, recompute=1.0, blocks=1, used=1, total=1) == pytest.approx(4.0)


def _held(pid: str, blocks: int, priority: float) -> Hold[str]:
    return Hold(pid, payload=pid, num_blocks=blocks, expires_at=10.0, priority=priority)


def test_the_ledger_knows_which_programs_hold_blocks() -> None:
    ledger: RetentionLedger[str] = RetentionLedger()
    ledger.hold(_held("a", 1, 1.0))
    assert "a" in ledger and "b" not in ledger
    ledger.take("a")
    assert "a" not in ledger


def test_holds_yield_only_until_enough_blocks_are_free() -> None:
    ledger: RetentionLedger[str] = RetentionLedger()
    for pid, priority in (("x", 9.0), ("y", 8.0), ("z", 7.0)):
        ledger.hold(_held(pid, 4, priority))
    released: list[str] = []

    def release(hold: Hold[str]) -> int:
        released.append(hold.program_id)
        return hold.num_blocks

    # 8 blocks: the two worst holds, 4 + 4, and no more.
    assert ledger.yield_to(8, priority=0.0, release=release) == 8
    assert released == ["x", "y"] and "z" in ledger
    # Exactly 4 more: one hold is enough, the ledger is then empty.
    assert ledger.yield_to(4, priority=0.0, release=release) == 4
    assert released == ["x", "y", "z"] and len(ledger) == 0


def test_a_hold_ranked_like_the_waiting_call_gives_way() -> None:
    ledger: RetentionLedger[str] = RetentionLedger()
    ledger.hold(_held("same", 4, 5.0))
    assert ledger.yield_to(4, priority=5.0, release=lambda h: h.num_blocks) == 4
    assert len(ledger) == 0
