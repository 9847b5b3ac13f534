"""The retention rule and ledger: TTLs from tool times, weighed against memory; holds yield."""

from __future__ import annotations

import pytest

from autellix_backend.core import (
    Hold,
    KVRetention,
    RetentionLedger,
    RetentionRule,
    SchedulerConfig,
    ToolDurations,
)
from autellix_backend.core.retention import UnknownRetentionError


def _ttl(
    rule: RetentionRule,
    *,
    expected_tool_seconds: float = 2.0,
    recompute_seconds: float = 0.2,
    num_blocks: int = 10,
    num_used_blocks: int = 500,
) -> float:
    return rule.ttl(
        expected_tool_seconds=expected_tool_seconds,
        recompute_seconds=recompute_seconds,
        num_blocks=num_blocks,
        num_used_blocks=num_used_blocks,
        num_total_blocks=1000,
    )


def test_ttl_covers_the_tool_with_slack_when_cheap() -> None:
    rule = RetentionRule(ttl_slack=2.0, max_ttl=30.0)
    assert _ttl(rule) == pytest.approx(4.0)
    assert _ttl(rule, expected_tool_seconds=20.0, recompute_seconds=10.0) == 30.0  # max_ttl
    # A tool longer than the break-even point (0.2 / (0.1 * 0.5 * 0.01) = 400 s): no hold.
    assert _ttl(rule, expected_tool_seconds=500.0) == 0.0


def test_no_hold_when_memory_costs_more_than_the_prefill_saved() -> None:
    rule = RetentionRule()
    # 500 of 1000 blocks held at full memory for 2 s costs 0.1 engine-seconds > 0.05 s saved.
    assert _ttl(rule, num_blocks=500, num_used_blocks=1000, recompute_seconds=0.05) == 0.0
    # The same hold on a nearly idle engine is worth it.
    assert _ttl(rule, num_blocks=500, num_used_blocks=500, recompute_seconds=1.0) > 0.0


def test_ttl_is_cut_to_break_even_under_pressure() -> None:
    rule = RetentionRule(ttl_slack=4.0, memory_value=1.0)
    # cost rate = 1.0 * 100/1000 = 0.1/s; break-even = 0.3 / 0.1 = 3 s, between 2 s and 8 s.
    assert _ttl(rule, num_blocks=100, num_used_blocks=1000, recompute_seconds=0.3) == (
        pytest.approx(3.0)
    )


def test_nothing_to_hold_means_no_hold() -> None:
    rule = RetentionRule()
    assert _ttl(rule, num_blocks=0) == 0.0
    assert _ttl(rule, recompute_seconds=0.0) == 0.0


def test_tool_durations_learn_per_tool_with_a_default() -> None:
    tools = ToolDurations(default=1.5, weight=0.5)
    assert tools.expected("search") == 1.5
    assert tools.expected(None) == 1.5
    tools.observe("search", 4.0)
    tools.observe("search", 2.0)
    assert tools.expected("search") == pytest.approx(3.0)
    tools.observe("search", float("nan"))
    assert tools.expected("search") == pytest.approx(3.0)
    assert tools.expected("calc") == 1.5


def _hold(pid: str, blocks: int, priority: float, expires: float = 10.0) -> Hold[str]:
    return Hold(
        pid, payload=f"blocks-of-{pid}", num_blocks=blocks, expires_at=expires, priority=priority
    )


def test_ledger_releases_on_next_call_expiry_and_replacement() -> None:
    ledger: RetentionLedger[str] = RetentionLedger()
    assert ledger.hold(_hold("a", 4, 1.0, expires=5.0)) is None
    assert ledger.hold(_hold("b", 6, 2.0, expires=9.0)) is None
    old = ledger.hold(_hold("a", 5, 1.0, expires=6.0))
    assert old is not None and old.num_blocks == 4
    assert ledger.num_blocks == 11
    assert [h.program_id for h in ledger.expired(6.0)] == ["a"]
    taken = ledger.take("b")
    assert taken is not None and taken.payload == "blocks-of-b"
    assert len(ledger) == 0 and ledger.take("b") is None


def test_holds_yield_to_higher_priority_calls_worst_first() -> None:
    ledger: RetentionLedger[str] = RetentionLedger()
    ledger.hold(_hold("cheap", 4, priority=1.0))
    ledger.hold(_hold("costly", 4, priority=9.0))
    ledger.hold(_hold("mid", 4, priority=5.0))
    released: list[str] = []

    def release(hold: Hold[str]) -> int:
        released.append(hold.program_id)
        return 0 if hold.program_id == "costly" else hold.num_blocks  # costly's are shared

    # A call ranked 4.0 may take only the holds ranked no better than it, worst first; the
    # shared blocks freed nothing, so one hold is not enough.
    assert ledger.yield_to(3, priority=4.0, release=release) == 4
    assert released == ["costly", "mid"]
    # A lower-priority call gets nothing... unless nothing else can run.
    assert ledger.yield_to(4, priority=7.0, release=release) == 0
    assert ledger.yield_to(4, priority=7.0, release=release, force=True) == 4
    assert released == ["costly", "mid", "cheap"] and len(ledger) == 0


def test_holds_stay_within_their_share_of_the_pool() -> None:
    rule = RetentionRule(max_held_fraction=0.25)
    limit = rule.held_limit(100)
    assert limit == 25
    ledger: RetentionLedger[str] = RetentionLedger()
    ledger.hold(_hold("a", 20, 1.0))
    assert ledger.fits("b", 5, limit=limit)
    assert not ledger.fits("b", 6, limit=limit)
    # The program's own hold is replaced, so it does not count against the new one.
    assert ledger.fits("a", 25, limit=limit) and not ledger.fits("a", 26, limit=limit)
    with pytest.raises(ValueError, match="max_held_fraction"):
        RetentionRule(max_held_fraction=0.0)


def test_config_parses_the_mode() -> None:
    assert SchedulerConfig().kv_retention is KVRetention.OFF
    assert SchedulerConfig(kv_retention="TTL").kv_retention is KVRetention.TTL  # type: ignore[arg-type]
    with pytest.raises(UnknownRetentionError):
        SchedulerConfig(kv_retention="always")  # type: ignore[arg-type]
