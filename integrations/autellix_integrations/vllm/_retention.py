"""KV retention on vLLM's own block pool: a finished call's blocks kept for its program.

No second cache: a hold is one extra reference (``BlockPool.touch``) on the blocks vLLM's
prefix cache already has, so they stay out of the free queue, and therefore out of eviction,
while the request that computed them is freed as usual. Releasing the hold hands the blocks
back (``BlockPool.free_blocks``, tail first, as vLLM frees a request), where they are the
most recently freed cached blocks: the program's next call finds them as prefix hits. The
rule (when, for how long, who yields) is the core's ``RetentionRule`` and
``RetentionLedger``, the same as the simulator's.

``SchedulerRetention`` is the policy ``AutellixScheduler`` runs with ``kv_retention`` on: it
holds a finished call's cached blocks when its program continues (``ttl``: any tagged
program; ``dag``: the call's ``NextCallHint`` says a call follows), releases the hold when the
program's next call is admitted, on TTL expiry (each step, and ``IdleExpiry`` while the
engine is idle), and when the program ends or a call of it is aborted, and releases holds
lowest-ranked first whenever the free blocks cannot take the running calls' growth or the
next waiting call.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from autellix_backend.core import (
    Hold,
    KVRetention,
    RetentionLedger,
    RetentionRule,
    ToolDurations,
)
from autellix_protocol import NextCallHint

if TYPE_CHECKING:
    from vllm.v1.core.block_pool import BlockPool
    from vllm.v1.core.kv_cache_utils import KVCacheBlock


class BlockPoolRetention:
    """Holds on one vLLM ``BlockPool``, one per program.

    Args:
        pool: the engine's block pool (``scheduler.kv_cache_manager.block_pool``).
        rule: the TTL rule.
    """

    def __init__(self, pool: BlockPool, rule: RetentionRule | None = None) -> None:
        self.pool = pool
        self.rule = rule or RetentionRule()
        self.ledger: RetentionLedger[list[KVCacheBlock]] = RetentionLedger()

    @property
    def num_held_blocks(self) -> int:
        """Blocks only holds keep (no running request shares them)."""
        return sum(sum(1 for b in h.payload if b.ref_cnt == 1) for h in self.ledger)

    def hold(
        self,
        program_id: str,
        blocks: Sequence[KVCacheBlock],
        *,
        now: float,
        expected_tool_seconds: float,
        recompute_seconds: float,
        priority: float,
    ) -> float:
        """Keep ``blocks`` (a finishing request's, before vLLM frees it) if the rule says so.

        Returns the TTL given (0: nothing held). A previous hold of the program is released.
        Nothing is held past the rule's share of the pool (``RetentionRule.max_held_fraction``).
        """
        blocks = [b for b in blocks if not b.is_null]
        exclusive = sum(1 for b in blocks if b.ref_cnt == 1)
        pool = self.pool
        ttl = 0.0
        if self.ledger.fits(program_id, exclusive, limit=self.rule.held_limit(pool.num_gpu_blocks)):
            ttl = self.rule.ttl(
                expected_tool_seconds=expected_tool_seconds,
                recompute_seconds=recompute_seconds,
                num_blocks=exclusive,
                num_used_blocks=pool.num_gpu_blocks - pool.get_num_free_blocks(),
                num_total_blocks=pool.num_gpu_blocks,
            )
        if ttl <= 0:
            self.release(program_id)  # the program moved on: its older hold is stale
            return 0.0
        pool.touch(blocks)
        old = self.ledger.hold(
            Hold(program_id, blocks, num_blocks=exclusive, expires_at=now + ttl, priority=priority)
        )
        if old is not None:
            self._free(old)
        return ttl

    def release(self, program_id: str) -> int:
        """End the program's hold (next call admitted, program ended, aborted, disconnected)."""
        hold = self.ledger.take(program_id)
        return 0 if hold is None else self._free(hold)

    def expire(self, now: float) -> int:
        """End the holds whose TTL ran out; returns the blocks freed."""
        return sum(self._free(h) for h in self.ledger.expired(now))

    def make_room(self, num_blocks: int, *, priority: float, force: bool = False) -> int:
        """Free holds until ``num_blocks`` blocks are free for a call of rank ``priority``.

        Holds ranked better than the call stay unless ``force`` (nothing else can run).
        """
        short = num_blocks - self.pool.get_num_free_blocks()
        if short <= 0:
            return 0
        return self.ledger.yield_to(short, priority=priority, release=self._free, force=force)

    def _free(self, hold: Hold[list[KVCacheBlock]]) -> int:
        before = self.pool.get_num_free_blocks()
        self.pool.free_blocks(reversed(hold.payload))
        return self.pool.get_num_free_blocks() - before


DEFAULT_PREFILL_S_PER_TOKEN = 1e-4
"""Prefill cost assumed until the engine has run a prefill step (about an A100 on an 8B model)."""
MAX_AWAY = 4096
"""Programs whose return is watched for tool durations (the oldest are forgotten)."""


class SchedulerRetention:
    """When ``AutellixScheduler`` holds a program's KV, and when the hold ends.

    Args:
        mode: ``ttl`` or ``dag`` (``off`` builds none).
        rule: the TTL rule.
        pool: the engine's block pool.
        block_size: tokens per block.
    """

    def __init__(
        self, mode: KVRetention, rule: RetentionRule, pool: BlockPool, *, block_size: int
    ) -> None:
        self.mode = KVRetention.parse(mode)
        self.holds = BlockPoolRetention(pool, rule)
        self.tools = ToolDurations(rule.default_tool_seconds)
        self.block_size = block_size
        self.prefill_s_per_token = DEFAULT_PREFILL_S_PER_TOKEN
        """Engine seconds per prefill token, learnt from the steps (what a miss would cost)."""
        self.num_holds = 0
        """Holds made so far."""
        self._away: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    @property
    def num_held_blocks(self) -> int:
        """Blocks only holds keep."""
        return self.holds.num_held_blocks

    def held_blocks(self, program_id: str) -> int:
        """Blocks the program's hold keeps (its next call's prefix hits)."""
        for hold in self.holds.ledger:
            if hold.program_id == program_id:
                return len(hold.payload)
        return 0

    def held_by(self, program_ids: Iterable[str]) -> int:
        """Blocks only holds of programs other than ``program_ids`` keep."""
        skip = set(program_ids)
        return sum(
            sum(1 for b in h.payload if b.ref_cnt == 1)
            for h in self.holds.ledger
            if h.program_id not in skip
        )

    def arrived(self, program_id: str, now: float) -> None:
        """A call of ``program_id`` arrived: the tool it ran since its last call took this long."""
        away = self._away.pop(program_id, None)
        if away is not None and away[1] is not None:
            self.tools.observe(away[1], now - away[0])

    def finished(
        self,
        program_id: str,
        blocks: Sequence[KVCacheBlock],
        hint: NextCallHint,
        *,
        tagged: bool,
        now: float,
        priority: float,
    ) -> float:
        """A call ended normally, ``blocks`` still its own: hold them if its program continues.

        ``tagged``: the request named its program (an untagged request is a program of one
        call). Returns the TTL given (0: nothing held, and an older hold of the program ends).
        """
        follows = hint.follows if self.mode is KVRetention.DAG else tagged or hint.follows
        if not follows:
            self.release(program_id)
            return 0.0
        self._away[program_id] = (now, hint.tool)
        self._away.move_to_end(program_id)
        while len(self._away) > MAX_AWAY:
            self._away.popitem(last=False)
        cached = [b for b in blocks if b.block_hash is not None and not b.is_null]
        expected = hint.away_s if hint.away_s is not None else self.tools.expected(hint.tool)
        ttl = self.holds.hold(
            program_id,
            cached,
            now=now,
            expected_tool_seconds=expected,
            recompute_seconds=len(cached) * self.block_size * self.prefill_s_per_token,
            priority=priority,
        )
        if ttl > 0:
            self.num_holds += 1
        return ttl

    def release(self, program_id: str) -> int:
        """End the program's hold (next call admitted, program ended, a call aborted)."""
        if program_id not in self.holds.ledger:
            return 0
        return self.holds.release(program_id)

    def expire(self, now: float) -> int:
        """End the holds whose TTL ran out."""
        return self.holds.expire(now) if len(self.holds.ledger) else 0

    def make_room(self, num_blocks: int, *, priority: float, force: bool = False) -> int:
        """Free holds ranked no better than ``priority`` (any, if ``force``) until
        ``num_blocks`` blocks are free."""
        if not len(self.holds.ledger):
            return 0
        return self.holds.make_room(num_blocks, priority=priority, force=force)

    def observe_prefill(self, num_tokens: int, seconds: float, *, weight: float = 0.2) -> None:
        """A step that computed ``num_tokens`` tokens, most of them prefill, took ``seconds``."""
        if num_tokens <= 0 or not (math.isfinite(seconds) and seconds > 0):
            return
        rate = seconds / num_tokens
        self.prefill_s_per_token += weight * (rate - self.prefill_s_per_token)


class IdleExpiry:
    """Ends holds when their TTL runs out while the engine is idle.

    vLLM's engine loop sleeps on its input queue while no request is live, so no step checks
    the TTLs then: without this thread an idle engine would keep a hold until its next
    request. The thread sleeps until the first hold's expiry (at most ``max_wait`` seconds at
    a time, so a swapped clock is followed) and ends the expired holds under ``lock``, which
    the scheduler holds in every entry point that touches the block pool. It starts with the
    first hold and sleeps without waking while there is none.

    Args:
        retention: the scheduler's retention policy.
        lock: the lock around the scheduler's use of the block pool.
        clock: the scheduler's clock (TTLs are in its time).
        max_wait: longest sleep in seconds while a hold is live.
    """

    def __init__(
        self,
        retention: SchedulerRetention,
        lock: threading.RLock,
        clock: Callable[[], float],
        *,
        max_wait: float = 1.0,
    ) -> None:
        self.retention = retention
        self.lock = lock
        self.clock = clock
        self.max_wait = max_wait
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """A hold was made: (re)compute when to wake."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(
                target=self._run, name="autellix-kv-retention", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (the engine shuts down)."""
        self._closed = True
        self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.clear()
            with self.lock:
                self.retention.expire(self.clock())
                next_at = self.retention.holds.ledger.next_expiry()
            if next_at is None:
                self._wake.wait()
            else:
                self._wake.wait(min(self.max_wait, max(0.005, next_at - self.clock())))


class LockedHolds:
    """The holds as the report channel sees them (``_report_server.ProgramHolds``): what a
    program holds, and the front end's notice that it ended, each under the block pool's
    lock (the channel answers on its own thread)."""

    def __init__(self, retention: SchedulerRetention, lock: threading.RLock) -> None:
        self.retention = retention
        self.lock = lock

    def held_blocks(self, program_id: str) -> int:
        with self.lock:
            return self.retention.held_blocks(program_id)

    def end(self, program_id: str) -> int:
        with self.lock:
            return self.retention.release(program_id)
