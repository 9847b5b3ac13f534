"""``SimEngine``: a continuously batching engine driven by the core ``Scheduler``.

Each step: build a KV-aware budget, let the scheduler pick the batch (``schedule``), apply
its preemptions (recompute or swap), compute the chosen tokens, price the step with the cost
model, and, when the step ends, report progress (``update_from_step``) and finished calls
(``finish_call``). The engine makes no scheduling decision of its own.

The stepping API works in simulated and in real time: ``start_step(now)`` returns the step's
duration, ``complete_step()`` applies it once that time has passed (``step`` does both).
Calls may be added while a step is in flight; they join at the next step. When nothing
waits, ``start_step(now, until=t)`` fuses the decode steps that would start before ``t``
into one (same result, fewer scheduler invocations), which is how the simulator runs fast.

KV retention (``SchedulerConfig.kv_retention``): a finished call whose program will call again
(``add_call(retain_for=...)``) may keep its blocks for a TTL chosen by the core's
``RetentionRule``. The hold ends when the program's next call is admitted here (it takes
the blocks as prefix-cache hits), when the TTL runs out (checked at each step), when the
program ends, is aborted or moves to another engine, or when a waiting call of higher
priority (or any call, if nothing else can run) needs the blocks. Released blocks stay in
the prefix cache as the most recently used.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from autellix_backend.core import (
    CallArrival,
    CallProgress,
    CallRecord,
    Hold,
    InvalidCallError,
    KVRetention,
    RetentionLedger,
    Scheduler,
    SchedulerConfig,
    UnknownCallError,
)
from autellix_backend.sim.budget import Grant, KVBatchBudget
from autellix_backend.sim.config import EngineConfig, PreemptionMode
from autellix_backend.sim.hashing import key_id, prompt_segments
from autellix_backend.sim.kv_cache import BlockTable, KVCache
from autellix_backend.sim.profiles import CostModel, get_profile
from autellix_backend.sim.results import CallResult, EngineStats
from autellix_backend.sim.sequence import SeqState, SimSequence
from autellix_backend.spec import PromptSegment

_MAX_REMEMBERED_STREAMS = 4096
"""Programs whose last token stream an engine keeps to reuse its block hashes."""


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one (possibly fused) engine step did."""

    start: float
    end: float
    num_steps: int
    """Model steps this outcome covers (more than 1 when decode steps were fused)."""
    finished: tuple[CallResult, ...]
    """Calls that completed at ``end``."""
    num_scheduled: int
    num_preempted: int

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(slots=True)
class _Progress:
    """Tokens one call computed in a (possibly fused) step; becomes a ``CallProgress``."""

    call_id: str
    prefill: int
    decode: int


@dataclass(slots=True)
class _PendingStep:
    start: float
    end: float
    num_steps: int
    progress: list[_Progress]
    finished: list[SimSequence]
    num_scheduled: int
    num_preempted: int


@dataclass(slots=True)
class _Counters:
    num_steps: int = 0
    num_calls: int = 0
    num_swap_outs: int = 0
    num_swap_ins: int = 0
    num_recomputed_tokens: int = 0
    num_prefill_tokens: int = 0
    num_decode_tokens: int = 0
    busy_time: float = 0.0
    swap_time: float = 0.0


@dataclass(slots=True)
class _StepShape:
    prefill_chunks: list[tuple[int, int]]
    num_decode_seqs: int = 0
    num_decode_context: int = 0
    num_sampled: int = 0


class SimEngine:
    """One simulated engine.

    Args:
        config: engine settings.
        scheduler_config: scheduling-core settings.
        engine_id: this engine's id in results.
        cost_model: overrides ``config.profile``.
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        scheduler_config: SchedulerConfig | None = None,
        *,
        engine_id: str = "engine-0",
        cost_model: CostModel | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.engine_id = engine_id
        self.model = cost_model or get_profile(self.config.profile)
        self.scheduler = Scheduler(scheduler_config, engine_id=engine_id)
        num_blocks = self.config.num_kv_blocks or max(
            1, self.model.kv_capacity_tokens // self.config.block_size
        )
        self.kv = KVCache(
            num_blocks,
            self.config.block_size,
            enable_prefix_caching=self.config.enable_prefix_caching,
        )
        self._seqs: dict[str, SimSequence] = {}
        self._batch: list[SimSequence] = []
        self._steps_since_schedule = 0
        self._pending: _PendingStep | None = None
        self._num_cpu_blocks_used = 0
        self._stats = _Counters()
        self._last_streams: OrderedDict[str, tuple[list[tuple[int, int]], list[int]]] = (
            OrderedDict()
        )
        self.retention: RetentionLedger[BlockTable] = RetentionLedger()
        """Blocks kept for programs in a tool call."""
        self._retain_for: dict[str, float] = {}
        self.num_holds = 0
        """Holds made (a finished call's blocks kept for its program's next call)."""

    # Calls ---------------------------------------------------------------------

    def add_call(
        self,
        arrival: CallArrival,
        prompt: Sequence[PromptSegment],
        output_tokens: int,
        now: float,
        *,
        output_key: str | None = None,
        retain_for: float | None = None,
    ) -> None:
        """Queue a call; it generates exactly ``output_tokens`` tokens.

        The call is ranked by ``arrival.snapshot`` (its program as the front end sees it).
        ``retain_for`` is the expected time until the program's next call when one follows
        (a tool call); with ``kv_retention`` on, the call's blocks may be kept that long.

        Raises:
            InvalidCallError: bad token counts, or a call larger than the whole KV cache.
            DuplicateError: the call id is already live on this engine.
        """
        if output_tokens < 0:
            raise InvalidCallError(f"output_tokens must be >= 0, got {output_tokens}")
        if any(s.num_tokens < 0 for s in prompt):
            raise InvalidCallError("prompt segments must have >= 0 tokens")
        segments = prompt_segments(prompt) or [(key_id(f"{arrival.call_id}:prompt"), 1)]
        prompt_tokens = sum(n for _, n in segments)
        if arrival.prompt_tokens != sum(s.num_tokens for s in prompt):
            raise InvalidCallError("arrival.prompt_tokens must equal the prompt's token count")
        blocks = math.ceil((prompt_tokens + output_tokens) / self.config.block_size)
        if blocks > self.kv.num_blocks:
            raise InvalidCallError(
                f"call {arrival.call_id!r} needs {blocks} KV blocks; the engine has "
                f"{self.kv.num_blocks}"
            )
        self.scheduler.add_call(arrival, now)
        self._seqs[arrival.call_id] = SimSequence(
            call_id=arrival.call_id,
            program_id=arrival.program_id,
            segments=segments,
            prompt_tokens=prompt_tokens,
            reported_prompt_tokens=arrival.prompt_tokens,
            max_output=output_tokens,
            output_key=key_id(output_key or f"{arrival.call_id}:out"),
            arrival_time=now,
            hashes=self._known_hashes(arrival.program_id, segments),
        )
        if retain_for is not None and self.scheduler.config.kv_retention is not KVRetention.OFF:
            self._retain_for[arrival.call_id] = retain_for

    def abort_call(self, call_id: str, now: float) -> None:
        """Drop a call (client gone); its KV is freed and its service still counts."""
        seq = self._seqs.get(call_id)
        if seq is None:
            raise UnknownCallError(call_id)
        self.scheduler.abort_call(call_id, now)
        self._retain_for.pop(call_id, None)
        self._drop(seq)
        self.release_program(seq.program_id)

    def release_program(self, program_id: str) -> None:
        """Free the program's retained blocks, if any (it ended, was aborted, or moved on)."""
        hold = self.retention.take(program_id)
        if hold is not None:
            self.kv.release(hold.payload)

    def retained_program_ids(self) -> frozenset[str]:
        """Programs whose KV this engine retains now (a cache-aware balancer pins them)."""
        return frozenset(h.program_id for h in self.retention)

    # Views ---------------------------------------------------------------------

    @property
    def has_work(self) -> bool:
        """Whether any call is waiting or running."""
        return bool(self._seqs)

    @property
    def num_calls(self) -> int:
        """Calls on this engine, waiting or running (the balancers' load)."""
        return len(self._seqs)

    @property
    def in_step(self) -> bool:
        return self._pending is not None

    def stats(self) -> EngineStats:
        c = self._stats
        return EngineStats(
            engine_id=self.engine_id,
            num_steps=c.num_steps,
            busy_time=c.busy_time,
            num_calls=c.num_calls,
            num_preemptions=self.scheduler.num_preemptions,
            num_swap_outs=c.num_swap_outs,
            num_swap_ins=c.num_swap_ins,
            swap_time=c.swap_time,
            num_recomputed_tokens=c.num_recomputed_tokens,
            num_prefill_tokens=c.num_prefill_tokens,
            num_decode_tokens=c.num_decode_tokens,
            prefix_query_tokens=self.kv.num_query_tokens,
            prefix_hit_tokens=self.kv.num_hit_tokens,
        )

    # Stepping ------------------------------------------------------------------

    def step(self, now: float) -> StepOutcome | None:
        """Run one step starting at ``now`` and apply it at once (None when idle)."""
        if self.start_step(now) is None:
            return None
        return self.complete_step()

    def start_step(self, now: float, *, until: float = -math.inf) -> float | None:
        """Plan the step starting at ``now``; return its duration, or None if nothing can run.

        Args:
            now: start time of the step.
            until: decode steps that start before this time may be fused into this one
                (only while no call waits); the default never fuses.
        """
        if self._pending is not None:
            raise RuntimeError("complete_step() must be called before the next start_step()")
        if len(self.retention):
            for hold in self.retention.expired(now):
                self.kv.release(hold.payload)
        if not self._seqs:
            return None
        work = self._continued_batch() if self._continues_batch() else None
        scheduled = work is None
        num_preempted = 0
        extra_time = 0.0
        if work is None:
            work, num_preempted, extra_time = self._schedule(now)
            if not work and num_preempted:
                # Preemptions freed memory the first pass could not count; schedule again.
                work, more, swap_time = self._schedule(now)
                num_preempted += more
                extra_time += swap_time
            self._steps_since_schedule = 0
        else:
            self._steps_since_schedule += 1
        if not work:
            self._batch = []
            return None
        progress, finished, first_tokens, shape = self._compute(work)
        duration = extra_time + self.model.step_time(
            prefill_chunks=shape.prefill_chunks,
            num_decode_seqs=shape.num_decode_seqs,
            num_decode_context_tokens=shape.num_decode_context,
            num_sampled=shape.num_sampled,
            scheduled=scheduled,
        )
        for seq in first_tokens:
            seq.first_token_time = now + duration
        num_steps = 1
        if not finished and now + duration < until:
            fused_steps, fused_time = self._fuse_decodes(work, progress, now + duration, until)
            num_steps += fused_steps
            duration += fused_time
            finished = [seq for seq, _ in work if seq.is_done]
        self._batch = [seq for seq, _ in work if seq not in finished]
        self._stats.busy_time += duration
        self._stats.num_steps += num_steps
        self._pending = _PendingStep(
            start=now,
            end=now + duration,
            num_steps=num_steps,
            progress=progress,
            finished=finished,
            num_scheduled=len(work),
            num_preempted=num_preempted,
        )
        return duration

    def complete_step(self) -> StepOutcome:
        """Apply the planned step at its end time: service, demotions, finished calls."""
        pending = self._pending
        if pending is None:
            raise RuntimeError("no step in flight")
        self._pending = None
        end = pending.end
        seqs = self._seqs
        progress = [
            CallProgress(p.call_id, num_prefill_tokens=p.prefill, num_decode_tokens=p.decode)
            for p in pending.progress
            if p.call_id in seqs
        ]
        self.scheduler.update_from_step(progress, end - pending.start, end)
        finished: list[CallResult] = []
        for seq in pending.finished:
            if seq.call_id not in self._seqs:
                continue
            record = self.scheduler.finish_call(seq.call_id, end)
            self._remember_stream(seq)
            self._maybe_hold(seq, record, end)
            self._drop(seq)
            self._stats.num_calls += 1
            finished.append(
                CallResult(
                    call_id=seq.call_id,
                    program_id=seq.program_id,
                    engine_id=self.engine_id,
                    arrival_time=seq.arrival_time,
                    first_token_time=seq.first_token_time if seq.first_token_time else end,
                    finish_time=end,
                    prompt_tokens=seq.reported_prompt_tokens,
                    cached_tokens=seq.cached_tokens,
                    output_tokens=seq.num_generated,
                    wait=record.wait,
                    service=record.service,
                    num_preemptions=record.num_preemptions,
                )
            )
        return StepOutcome(
            start=pending.start,
            end=end,
            num_steps=pending.num_steps,
            finished=tuple(finished),
            num_scheduled=pending.num_scheduled,
            num_preempted=pending.num_preempted,
        )

    # Phases --------------------------------------------------------------------

    def _continues_batch(self) -> bool:
        """Multi-step scheduling: keep the last batch without calling the scheduler."""
        n = self.config.schedule_every_n_steps
        return n > 1 and bool(self._batch) and self._steps_since_schedule + 1 < n

    def _continued_batch(self) -> list[tuple[SimSequence, int]] | None:
        """The last batch's next step, or None when it cannot grow in free memory."""
        tokens_left = self.config.max_num_batched_tokens
        bs = self.config.block_size
        need = 0
        work: list[tuple[SimSequence, int]] = []
        for seq in self._batch:
            pending = seq.num_pending
            n = 1 if seq.is_decoding else min(pending, max(tokens_left, 0))
            tokens_left -= n
            need += -(-(seq.num_computed + n) // bs) - len(seq.table.blocks)
            work.append((seq, n))
        if need > self.kv.num_free_blocks:
            return None
        return work

    def _schedule(self, now: float) -> tuple[list[tuple[SimSequence, int]], int, float]:
        """Run the core scheduler; apply preemptions and admissions. Returns work, #preempted,
        and swap time."""
        running = self.scheduler.running
        seqs = self._seqs
        decodes = sum(1 for cid in running if seqs[cid].is_decoding)
        if len(self.retention):
            self._yield_holds()
        budget = KVBatchBudget(self.config, self.kv, seqs, num_running_decodes=decodes)
        if len(self.retention):
            budget.blocks_left -= self._num_held_blocks()
        decision = self.scheduler.schedule(budget, now)
        swap_time = sum(self._preempt(seqs[c.call_id]) for c in decision.preempted)
        grants = [budget.grants[c.call_id] for c in decision.scheduled]
        for grant in grants:
            if grant.seq.state is SeqState.UNCOMPUTED:
                self._admit(grant)
        if len(self.retention):
            self._make_room(grants)
        for grant in grants:
            if grant.seq.state is SeqState.SWAPPED:
                swap_time += self._swap_in(grant.seq)
        self._stats.swap_time += swap_time
        return [(g.seq, g.num_tokens) for g in grants], len(decision.preempted), swap_time

    def _preempt(self, seq: SimSequence) -> float:
        """Free a preempted call's device blocks; return the swap-out time."""
        num_blocks = len(seq.table.blocks)
        cpu_limit = self.config.num_cpu_blocks
        swap = self.config.preemption_mode is PreemptionMode.SWAP and (
            cpu_limit is None or self._num_cpu_blocks_used + num_blocks <= cpu_limit
        )
        self.kv.release(seq.table)
        if swap and num_blocks:
            seq.state = SeqState.SWAPPED
            seq.num_swapped_blocks = num_blocks
            self._num_cpu_blocks_used += num_blocks
            self._stats.num_swap_outs += 1
            return self._swap_cost(num_blocks)
        seq.state = SeqState.UNCOMPUTED
        seq.num_dropped_tokens += seq.num_computed
        seq.num_computed = 0
        seq.num_registered = 0
        return 0.0

    def _swap_in(self, seq: SimSequence) -> float:
        num_blocks = seq.num_swapped_blocks
        self.kv.allocate(seq.table, num_blocks)
        self._num_cpu_blocks_used -= num_blocks
        seq.num_swapped_blocks = 0
        seq.num_registered = 0
        seq.state = SeqState.RESIDENT
        self._stats.num_swap_ins += 1
        self._register_full_blocks(seq)
        return self._swap_cost(num_blocks)

    def _swap_cost(self, num_blocks: int) -> float:
        transfers = 1 if self.config.swap_batched else num_blocks
        return self.model.swap_time(num_blocks, transfers)

    def _admit(self, grant: Grant) -> None:
        """Give an uncomputed call its prefix-cache hits."""
        seq = grant.seq
        self.kv.acquire(seq.table, grant.hit_blocks)
        if seq.program_id in self.retention:
            self.release_program(seq.program_id)  # the call holds what it needs of them now
        seq.num_computed = len(grant.hit_blocks) * self.config.block_size
        seq.num_registered = len(grant.hit_blocks)
        seq.state = SeqState.RESIDENT
        if not seq.admitted:
            seq.admitted = True
            seq.cached_tokens = min(seq.num_computed, seq.reported_prompt_tokens)
            if self.config.enable_prefix_caching:
                self.kv.record_query(seq.reported_prompt_tokens, seq.cached_tokens)
        elif seq.num_dropped_tokens:
            recomputed = max(0, min(seq.num_dropped_tokens, seq.stream_len) - seq.num_computed)
            self._stats.num_recomputed_tokens += recomputed
            seq.num_dropped_tokens = 0

    def _compute(
        self, work: list[tuple[SimSequence, int]]
    ) -> tuple[list[_Progress], list[SimSequence], list[SimSequence], _StepShape]:
        """Advance every call in ``work`` by its tokens; allocate and publish KV blocks."""
        bs = self.config.block_size
        shape = _StepShape(prefill_chunks=[])
        progress: list[_Progress] = []
        finished: list[SimSequence] = []
        first_tokens: list[SimSequence] = []
        stats = self._stats
        kv = self.kv
        caching = kv.enable_prefix_caching
        for seq, n in work:
            if n == 0:
                continue
            start = seq.num_computed
            generated = seq.num_generated
            stream_len = seq.prompt_tokens + generated
            grow = -(-(start + n) // bs) - len(seq.table.blocks)
            if grow > 0:
                kv.allocate(seq.table, grow)
            decoding = generated > 0 and start == stream_len - 1
            if decoding:
                shape.num_decode_seqs += 1
                shape.num_decode_context += start + 1
            else:
                shape.prefill_chunks.append((n, start))
                stats.num_prefill_tokens += n
            computed = seq.num_computed = start + n
            sampled = 0
            if computed == stream_len and generated < seq.max_output:
                if generated == 0:
                    first_tokens.append(seq)
                generated = seq.num_generated = generated + 1
                sampled = 1
                shape.num_sampled += 1
                stats.num_decode_tokens += 1
            if caching and computed // bs > seq.num_registered:
                self._register_full_blocks(seq)
            progress.append(_Progress(seq.call_id, 0 if decoding else n, sampled))
            if generated >= seq.max_output and computed >= stream_len + sampled - (
                1 if generated else 0
            ):
                finished.append(seq)
        return progress, finished, first_tokens, shape

    def _fuse_decodes(
        self,
        work: list[tuple[SimSequence, int]],
        progress: list[_Progress],
        start: float,
        until: float,
    ) -> tuple[int, float]:
        """Run the decode steps that would start before ``until`` with an unchanged batch.

        Only when no call waits (so the scheduler would choose the same batch), every call in
        the batch decodes, and the KV cache can hold the growth. Returns (steps, seconds).
        """
        if self.scheduler.num_waiting or any(n == 0 or not s.is_decoding for s, n in work):
            return 0, 0.0
        seqs = [seq for seq, _ in work]
        max_steps = min(seq.max_output - seq.num_generated for seq in seqs)
        if max_steps <= 0:
            return 0, 0.0
        b = len(seqs)
        context = sum(seq.num_computed + 1 for seq in seqs)
        every = self.config.schedule_every_n_steps
        since = self._steps_since_schedule
        times: list[float] = []
        t = start
        model = self.model
        while t < until and len(times) < max_steps:
            since = since + 1 if since + 1 < every else 0
            dt = model.step_time(
                num_decode_seqs=b,
                num_decode_context_tokens=context,
                num_sampled=b,
                scheduled=since == 0,
            )
            times.append(dt)
            t += dt
            context += b
        steps = self._fit_growth(seqs, len(times))
        if steps <= 0:
            return 0, 0.0
        self._steps_since_schedule = (self._steps_since_schedule + steps) % every
        bs = self.config.block_size
        for seq in seqs:
            grow = -(-(seq.num_computed + steps) // bs) - len(seq.table.blocks)
            if grow > 0:
                self.kv.allocate(seq.table, grow)
            seq.num_computed += steps
            seq.num_generated += steps
            if self.kv.enable_prefix_caching and seq.num_computed // bs > seq.num_registered:
                self._register_full_blocks(seq)
        self._stats.num_decode_tokens += steps * b
        for item in progress:
            item.decode += steps
        return steps, math.fsum(times[:steps])

    def _fit_growth(self, seqs: list[SimSequence], steps: int) -> int:
        """The most of ``steps`` decode steps whose new blocks fit in free memory."""
        bs = self.config.block_size
        free = self.kv.num_free_blocks

        def need(k: int) -> int:
            return sum(max(0, -(-(s.num_computed + k) // bs) - len(s.table.blocks)) for s in seqs)

        if need(steps) <= free:
            return steps
        lo, hi = 0, steps
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if need(mid) <= free:
                lo = mid
            else:
                hi = mid - 1
        return lo

    # Retention -----------------------------------------------------------------

    def _maybe_hold(self, seq: SimSequence, record: CallRecord, now: float) -> None:
        """Keep a finished call's blocks for its program's next call when the rule says so."""
        expected = self._retain_for.pop(seq.call_id, None)
        if expected is None:
            return
        table, kv, bs = seq.table, self.kv, self.config.block_size
        exclusive = len(table.blocks) - table.num_shared
        ttl = self.scheduler.config.retention_rule.ttl(
            expected_tool_seconds=expected,
            recompute_seconds=self.model.prefill_time(exclusive * bs, table.num_shared * bs),
            num_blocks=exclusive,
            num_used_blocks=kv.num_blocks - kv.num_free_blocks,
            num_total_blocks=kv.num_blocks,
        )
        if ttl <= 0:
            return
        limit = self.scheduler.config.retention_rule.held_limit(kv.num_blocks)
        if not self.retention.fits(seq.program_id, exclusive, limit=limit):
            return
        seq.table = BlockTable()  # the hold takes the table; the call releases an empty one
        old = self.retention.hold(
            Hold(
                seq.program_id,
                table,
                num_blocks=exclusive,
                expires_at=now + ttl,
                priority=record.priority + record.service,
            )
        )
        if old is not None:
            kv.release(old.payload)
        self.num_holds += 1

    def _num_held_blocks(self) -> int:
        """Blocks only holds keep, for programs with no call here (those will take theirs)."""
        live = set(self.scheduler.program_ids())
        return sum(
            len(h.payload.blocks) - h.payload.num_shared
            for h in self.retention
            if h.program_id not in live
        )

    def _make_room(self, grants: list[Grant]) -> None:
        """Free holds until the step's new blocks fit (a held program's call was not picked)."""
        bs = self.config.block_size
        need = sum(
            max(
                g.seq.num_swapped_blocks,
                -(-(g.seq.num_computed + g.num_tokens) // bs) - len(g.seq.table.blocks),
            )
            for g in grants
        )
        short = need - self.kv.num_free_blocks
        if short > 0:
            self.retention.yield_to(short, priority=0.0, release=self._release_hold, force=True)

    def _yield_holds(self) -> None:
        """Free holds a waiting call needs: it outranks them, or nothing else can run."""
        head = self.scheduler.first_waiting()
        if head is None:
            return
        seq = self._seqs[head.call_id]
        bs = self.config.block_size
        if seq.state is SeqState.UNCOMPUTED:
            length = seq.stream_len
            hits = self.kv.match(seq.ensure_hashes(length, bs))
            need = -(-length // bs) - len(hits)
        else:
            need = seq.num_swapped_blocks + 1
        need += self.scheduler.num_running  # room for the running calls to grow a block
        short = need - self.kv.num_free_blocks
        if short <= 0:
            return
        force = self.scheduler.num_running == 0
        self.retention.yield_to(
            short, priority=head.priority, release=self._release_hold, force=force
        )

    def _release_hold(self, hold: Hold[BlockTable]) -> int:
        """Free a hold's blocks; returns how many became free (shared ones do not)."""
        before = self.kv.num_free_blocks
        self.kv.release(hold.payload)
        return self.kv.num_free_blocks - before

    def _register_full_blocks(self, seq: SimSequence) -> None:
        bs = self.config.block_size
        full = min(seq.num_computed // bs, len(seq.table.blocks))
        if full <= seq.num_registered or not self.kv.enable_prefix_caching:
            seq.num_registered = max(seq.num_registered, full)
            return
        hashes = seq.ensure_hashes(full * bs, bs)
        start = seq.num_registered
        self.kv.register_many(seq.table.blocks[start:full], hashes[start:full])
        seq.num_registered = full

    def _known_hashes(self, program_id: str, segments: list[tuple[int, int]]) -> list[int]:
        """Block hashes of the prompt's prefix shared with the program's last stream here.

        A chat turn's prompt is the previous turn's prompt and reply plus a new message, so
        most of its blocks were hashed already; hashing is the simulator's hottest loop.
        """
        last = self._last_streams.get(program_id)
        if last is None:
            return []
        stream, hashes = last
        common = 0
        for mine, theirs in zip(segments, stream, strict=False):
            if mine != theirs:
                break
            common += mine[1]
        return hashes[: common // self.config.block_size]

    def _remember_stream(self, seq: SimSequence) -> None:
        self._last_streams[seq.program_id] = (seq.stream, seq.hashes)
        self._last_streams.move_to_end(seq.program_id)
        if len(self._last_streams) > _MAX_REMEMBERED_STREAMS:
            self._last_streams.popitem(last=False)

    def _drop(self, seq: SimSequence) -> None:
        self.kv.release(seq.table)
        if seq.state is SeqState.SWAPPED:
            self._num_cpu_blocks_used -= seq.num_swapped_blocks
        del self._seqs[seq.call_id]
        if seq in self._batch:
            self._batch.remove(seq)
