"""The simulated engine behind the gateway: ``SimEngine`` stepped in real (or scaled) time.

Calls are scheduled by the core ``Scheduler`` inside ``SimEngine``, exactly as in offline
simulations: each ranked by the program snapshot it arrives with (``ProgramTag.snapshot``),
refreshed by the gateway while it waits; the engine keeps no program rows. This adapter only
sleeps for each step's simulated duration (times
``time_scale``) and streams deterministic filler text, one word per generated token. Each
call generates ``max_tokens`` tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autellix_backend.core import CallArrival, CallRecord, KVRetention, SchedulerConfig
from autellix_backend.engines.base import (
    EngineAdapter,
    EngineChunk,
    EngineError,
    EngineLoad,
    EngineRequest,
    EngineUsage,
    RequestKind,
    RequestRejected,
)
from autellix_backend.sim.config import EngineConfig
from autellix_backend.sim.engine import SimEngine, StepOutcome
from autellix_backend.sim.results import CallResult
from autellix_backend.spec import PromptSegment
from autellix_protocol import NextCallHint, ProtocolError, decode_next_call
from autellix_protocol.report import offsets_since
from autellix_protocol.snapshot import ProgramSnapshot

log = logging.getLogger("autellix.engines.simulated")

FILLER_WORDS = (
    "the",
    "program",
    "calls",
    "wait",
    "less",
    "when",
    "the",
    "scheduler",
    "knows",
    "which",
    "program",
    "each",
    "call",
    "belongs",
    "to",
    "and",
    "how",
    "much",
    "service",
    "it",
    "had",
)
"""Vocabulary of the filler output; token ``i`` of a call is one word followed by a space."""


@dataclass(slots=True, eq=False)
class _Call:
    request: EngineRequest
    max_tokens: int
    queue: asyncio.Queue[EngineChunk | EngineError] = field(default_factory=asyncio.Queue)
    num_sent: int = 0
    offset: int = 0
    """Where the call's filler text starts in ``FILLER_WORDS``."""
    record: CallRecord | None = None
    """The scheduler's record of the call (its preemption and promotion times)."""


class SimulatedEngine(EngineAdapter):
    """An ``EngineAdapter`` over ``SimEngine``.

    Args:
        engine_id: name in the gateway.
        model: model name clients ask for.
        scheduler: scheduling-core settings (the policy); the program's state arrives with
            each call (``ProgramTag.snapshot``).
        time_scale: wall seconds per simulated second; 0 runs steps back to back.
        default_max_tokens: output length of a request that sets no ``max_tokens``.
        engine_options: ``sim.config.EngineConfig`` fields (``profile``, ``max_num_seqs``...).
    """

    program_aware = True

    def __init__(
        self,
        *,
        engine_id: str = "sim-0",
        model: str = "sim",
        scheduler: SchedulerConfig | None = None,
        time_scale: float = 1.0,
        default_max_tokens: int = 16,
        **engine_options: Any,
    ) -> None:
        if time_scale < 0:
            raise ValueError("time_scale must be >= 0")
        self.engine_id = engine_id
        self.model = model
        self.time_scale = time_scale
        self.default_max_tokens = default_max_tokens
        self._scheduler_config = scheduler or SchedulerConfig()
        self._engine_config = EngineConfig(**engine_options)
        self._sim = SimEngine(self._engine_config, self._scheduler_config, engine_id=engine_id)
        self._calls: dict[str, _Call] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failure: str | None = None
        self._clock = 0.0
        self._go = asyncio.Event()
        self._go.set()
        self.hold_on_finish = False
        """Lockstep driving (with ``time_scale`` 0): hold after every step that ends a call,
        so a driver can send the calls that this unblocks at the same simulated time."""
        self.finished_ids: deque[str] = deque(maxlen=4096)
        """Request ids of the calls this engine finished, in order (a lockstep driver sends
        what they unblock in that order, as the simulator does)."""
        self._origin = 0.0

    # Life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._origin = asyncio.get_running_loop().time()
            self._task = asyncio.create_task(self._run(), name=f"sim-{self.engine_id}")

    async def aclose(self) -> None:
        self.fail("engine closed")
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def fail(self, reason: str) -> None:
        """Make the engine fail as a crashed one would: health turns false, calls error out."""
        self._failure = reason
        error = EngineError(reason)
        for call in self._calls.values():
            call.queue.put_nowait(error)
        self._wake.set()

    def recover(self) -> None:
        """Undo ``fail``: the engine accepts calls again (its earlier calls stay lost)."""
        self._failure = None

    async def health(self) -> bool:
        return self._failure is None and self._task is not None and not self._task.done()

    def load(self) -> EngineLoad:
        scheduler = self._sim.scheduler
        return EngineLoad(num_running=scheduler.num_running, num_waiting=scheduler.num_waiting)

    @property
    def clock(self) -> float:
        """Simulated time at the end of the last step."""
        return self._clock

    def hold(self) -> None:
        """Start no new step until ``release`` (a driver admits calls at one simulated time)."""
        self._go.clear()

    def release(self) -> None:
        self._go.set()

    @property
    def held(self) -> bool:
        return not self._go.is_set()

    def refresh(self, program_id: str, snapshot: ProgramSnapshot) -> None:
        self._sim.scheduler.refresh(program_id, snapshot)

    def end_program(self, program_id: str) -> None:
        self._sim.release_program(program_id)

    def kv_usage(self) -> float:
        """Share of the KV blocks that calls hold (the tracing UI's engine view)."""
        kv = self._sim.kv
        return 1.0 - kv.num_free_blocks / kv.num_blocks

    def queue_lengths(self) -> tuple[int, ...]:
        """Calls in each of the scheduler's priority queues, Q1 first."""
        return tuple(self._sim.scheduler.queue.lengths())

    # Calls ---------------------------------------------------------------------

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        if self._failure is not None:
            raise EngineError(self._failure)
        reject_unsupported(request.body)
        call = self._admit(request)
        try:
            while True:
                item = await call.queue.get()
                if isinstance(item, EngineError):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            if request.request_id in self._calls:
                self._drop(request.request_id, abort=True)

    def check_request(self, kind: RequestKind, body: Mapping[str, Any]) -> None:
        reject_unsupported(body)

    async def abort(self, request_id: str) -> None:
        if request_id in self._calls:
            self._drop(request_id, abort=True)

    def _admit(self, request: EngineRequest) -> _Call:
        tag = request.tag
        max_tokens = _max_tokens(request.body, self.default_max_tokens)
        segments = _prompt_segments(request)
        arrival = CallArrival(
            call_id=request.request_id,
            program_id=tag.program_id,
            thread_id=tag.thread_id,
            parent_ids=tag.parent_ids,
            prompt_tokens=sum(s.num_tokens for s in segments),
            max_tokens=max_tokens,
            snapshot=tag.snapshot,
        )
        self._sim.add_call(
            arrival, segments, max_tokens, self._now(), retain_for=self._expected_away(request)
        )
        offset = int.from_bytes(
            hashlib.blake2b(request.request_id.encode(), digest_size=4).digest()
        )
        record = self._sim.scheduler.calls.get(request.request_id)
        call = _Call(request, max_tokens, offset=offset % len(FILLER_WORDS), record=record)
        self._calls[request.request_id] = call
        self._wake.set()
        return call

    def _expected_away(self, request: EngineRequest) -> float | None:
        """Seconds until the program's next call when a call follows, as the vLLM plugin
        reads it: the call's next-call hint in ``vllm_xargs`` (``dag``), or any call
        (``ttl``); the simulator may hold the call's KV for it. None: nothing to hold."""
        config = self._sim.scheduler.config
        if config.kv_retention is KVRetention.OFF:
            return None
        xargs = request.body.get("vllm_xargs")
        try:
            hint = decode_next_call(xargs if isinstance(xargs, Mapping) else None)
        except ProtocolError:
            hint = NextCallHint()
        if hint.away_s is not None:
            return hint.away_s
        if hint.follows or config.kv_retention is KVRetention.TTL:
            return config.retention_rule.default_tool_seconds
        return None

    def _drop(self, request_id: str, *, abort: bool) -> None:
        self._calls.pop(request_id)
        if abort:
            with contextlib.suppress(KeyError):
                self._sim.abort_call(request_id, self._now())

    # Stepping ------------------------------------------------------------------

    def _now(self) -> float:
        if self.time_scale == 0:
            return self._clock
        elapsed = (asyncio.get_running_loop().time() - self._origin) / self.time_scale
        return max(self._clock, elapsed)

    async def _run(self) -> None:
        try:
            await self._step_forever()
        except Exception as exc:
            log.exception("simulated engine %s crashed", self.engine_id)
            self.fail(f"simulator crashed: {type(exc).__name__}: {exc}")

    async def _step_forever(self) -> None:
        sim = self._sim
        while True:
            if self._failure is not None or not sim.has_work:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._go.is_set():
                await self._go.wait()
                continue
            duration = sim.start_step(self._now())
            if duration is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            await asyncio.sleep(duration * self.time_scale)
            outcome = sim.complete_step()
            self._clock = max(self._clock, outcome.end)
            if outcome.finished and self.hold_on_finish:
                self._go.clear()
            self._publish(outcome)

    def _publish(self, outcome: StepOutcome) -> None:
        calls = self._sim.scheduler.calls
        for result in outcome.finished:
            call = self._calls.get(result.call_id)
            if call is not None:
                self._finish(call, result)
        for request_id, call in list(self._calls.items()):
            record = calls.get(request_id)
            if record is not None and record.num_output_tokens > call.num_sent:
                call.queue.put_nowait(EngineChunk(text=self._text(call, record.num_output_tokens)))

    def _finish(self, call: _Call, result: CallResult) -> None:
        self.finished_ids.append(call.request.request_id)
        text = self._text(call, result.output_tokens)
        usage = EngineUsage(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.output_tokens,
            cached_tokens=result.cached_tokens,
            service=result.service,
        )
        extra: dict[str, Any] = {"num_preemptions": result.num_preemptions}
        record = call.record
        if record is not None and (record.preempted_spans or record.promotion_times):
            spans, promotions = offsets_since(
                record.arrival_time, record.preempted_spans, record.promotion_times
            )
            scale = self.time_scale  # reported in wall seconds, like the gateway's clock
            extra["preemptions"] = [(start * scale, end * scale) for start, end in spans]
            extra["promotions"] = [t * scale for t in promotions]
        call.queue.put_nowait(
            EngineChunk(text=text, finish_reason="length", usage=usage, extra=extra)
        )
        self._drop(call.request.request_id, abort=False)

    def _text(self, call: _Call, upto: int) -> str:
        words = itertools.islice(
            itertools.cycle(FILLER_WORDS), call.offset + call.num_sent, call.offset + upto
        )
        call.num_sent = max(call.num_sent, upto)
        return "".join(f"{w} " for w in words)


_UNHONOURED = {
    "tools": "tool calls",
    "tool_choice": "tool calls",
    "response_format": "structured output",
    "structured_outputs": "structured output",
    "logprobs": "logprobs",
    "top_logprobs": "logprobs",
    "prompt_logprobs": "logprobs",
    "echo": "echo",
    "n": "more than one choice",
}
"""Request fields whose effect filler text cannot produce, and what the effect is."""


def reject_unsupported(body: Mapping[str, Any]) -> None:
    """Refuse (``RequestRejected``, a 400 naming the field) what the simulator cannot honour,
    rather than answer filler text as if it had."""
    for name, effect in _UNHONOURED.items():
        if name == "tools" and body.get("tool_choice") == "none":
            continue  # tools the model may not call: a plain completion
        if _asks_for(name, body.get(name)):
            raise RequestRejected(
                f"the simulated engine does not produce {effect}; remove {name!r}", param=name
            )


def _asks_for(name: str, value: Any) -> bool:
    """Whether ``value`` of field ``name`` asks for an effect (its neutral values do not)."""
    if value is None or value is False or value == [] or value == {}:
        return False
    if name == "tool_choice":
        return bool(value != "none")
    if name == "response_format":
        return not (isinstance(value, Mapping) and value.get("type") == "text")
    if name in ("n", "top_logprobs"):
        return bool(value != (1 if name == "n" else 0))
    return True


def _max_tokens(body: Mapping[str, Any], default: int) -> int:
    value = body.get("max_tokens")
    if value is None:
        value = body.get("max_completion_tokens")
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"max_tokens must be a non-negative integer, got {value!r}")
    return value


def _prompt_segments(request: EngineRequest) -> list[PromptSegment]:
    """The prompt as one segment per message, keyed by content so shared prefixes hit the
    simulated prefix cache; the gateway's token count is split by the messages' sizes."""
    texts = _prompt_texts(request.body)
    sizes = [len(t.encode("utf-8", "surrogatepass")) for t in texts]
    total_size = sum(sizes) or 1
    total_tokens = max(request.prompt_tokens, 0)
    segments: list[PromptSegment] = []
    given = 0
    for i, (text, size) in enumerate(zip(texts, sizes, strict=True)):
        n = total_tokens - given if i == len(texts) - 1 else total_tokens * size // total_size
        given += n
        key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
        segments.append(PromptSegment(key=key, num_tokens=n))
    return segments


def _prompt_texts(body: Mapping[str, Any]) -> Sequence[str]:
    messages = body.get("messages")
    if isinstance(messages, list):
        texts = []
        for message in messages:
            if isinstance(message, Mapping):
                texts.append(f"{message.get('role')}\n{message.get('content')}")
        return texts or [""]
    prompt = body.get("prompt")
    if isinstance(prompt, list):
        prompt = "".join(str(p) for p in prompt)
    return [str(prompt or "")]
