"""The call path: admit a call into the process table, route it, relay the engine's output,
and fold the result back into the table and the metrics."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autellix_backend.core import CallRecord
from autellix_backend.engines.base import (
    EngineChunk,
    EngineRequest,
    EngineUsage,
    RequestKind,
    RequestRejected,
)
from autellix_backend.server.config import ServerConfig
from autellix_backend.server.errors import APIError, bad_request
from autellix_backend.server.metrics import ServiceMetrics
from autellix_backend.server.openai_format import (
    DONE_EVENT,
    chunk_event,
    completion_body,
    relayed,
    sse,
    usage_event,
)
from autellix_backend.server.pool import CallStream, EnginePool
from autellix_backend.server.programs import ProgramRegistry, outer_call_id, place_engine_events
from autellix_backend.server.prompts import block_hashes
from autellix_backend.server.schemas import ChatCompletionRequest, CompletionRequest
from autellix_backend.server.tagging import CallTags
from autellix_protocol.headers import HEADER_CALL_ID, HEADER_ENGINE_ID, HEADER_PROGRAM_ID

log = logging.getLogger("autellix.server.gateway")

PREEMPTIONS_KEY = "num_preemptions"
"""``EngineChunk.extra`` key of the final chunk: times the engine preempted the call."""


@dataclass(slots=True, eq=False)
class OpenCall:
    """A call admitted and sent to its engine, not yet closed."""

    kind: RequestKind
    response_id: str
    model: str
    created: int
    record: CallRecord
    session_program_id: str
    call_id: str
    stream: CallStream
    include_usage: bool
    arrival: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    closed: bool = False

    @property
    def engine_id(self) -> str:
        return self.stream.slot.engine_id

    def headers(self) -> dict[str, str]:
        """Response headers that tell the client where its call went."""
        return {
            HEADER_PROGRAM_ID: self.session_program_id,
            HEADER_CALL_ID: self.call_id,
            HEADER_ENGINE_ID: self.engine_id,
        }


@dataclass(frozen=True, slots=True)
class Completed:
    text: str
    finish_reason: str | None
    usage: EngineUsage | None
    response: Mapping[str, Any] | None = None
    """The engine's own whole response (``openai_native`` engines)."""


@dataclass(slots=True)
class _Whole:
    """A non-streamed call's output as its chunks come."""

    pieces: list[str] = field(default_factory=list)
    finish_reason: str | None = None
    usage: EngineUsage | None = None
    response: Mapping[str, Any] | None = None

    def add(self, chunk: EngineChunk) -> None:
        self.pieces.append(chunk.text)
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.event is not None:
            self.response = chunk.event

    def completed(self) -> Completed:
        return Completed("".join(self.pieces), self.finish_reason, self.usage, self.response)


class Gateway:
    """Admits, relays and closes calls."""

    def __init__(
        self,
        config: ServerConfig,
        programs: ProgramRegistry,
        pool: EnginePool,
        metrics: ServiceMetrics,
    ) -> None:
        self.limits = config.limits
        self.programs = programs
        self.pool = pool
        self.metrics = metrics
        self._background: set[asyncio.Task[None]] = set()

    # Opening -------------------------------------------------------------------

    def open(
        self,
        owner: str | None,
        kind: RequestKind,
        request: ChatCompletionRequest | CompletionRequest,
        tags: CallTags,
    ) -> OpenCall:
        """Validate, admit and route a call; raises ``APIError`` and then changes nothing."""
        if not self.pool.has_model(request.model):
            raise APIError(
                404,
                f"model {request.model!r} does not exist",
                code="model_not_found",
                param="model",
            )
        max_tokens = self._max_tokens(request)
        body = request.model_dump(exclude_unset=True)
        self._check_engines(request.model, kind, body)
        text = request.prompt_text()
        prompt_tokens = request.prompt_tokens()
        if prompt_tokens > self.limits.max_prompt_tokens:
            raise bad_request(
                f"the prompt is about {prompt_tokens} tokens; the limit is "
                f"{self.limits.max_prompt_tokens}",
                code="context_length_exceeded",
                param="messages" if kind is RequestKind.CHAT else "prompt",
            )
        if self.pool.num_inflight >= self.limits.max_inflight_calls:
            raise APIError(
                429, "too many calls in flight", type="rate_limit_error", code="too_many_calls"
            )
        hashes = self._block_hashes(request.model, kind, body, text)
        chosen: list[Any] = []

        def choose(program_key: str) -> str:
            slot = self.pool.choose(request.model, program_key, prompt_tokens, hashes)
            chosen.append(slot)
            return slot.engine_id

        session, record, tag = self.programs.open_call(
            owner, tags, prompt_tokens=prompt_tokens, max_tokens=max_tokens, choose_engine=choose
        )
        prefix = "chatcmpl" if kind is RequestKind.CHAT else "cmpl"
        response_id = f"{prefix}-{os.urandom(16).hex()}"
        body["max_tokens"] = max_tokens
        body.pop("max_completion_tokens", None)
        engine_request = EngineRequest(
            request_id=response_id, kind=kind, body=body, tag=tag, prompt_tokens=prompt_tokens
        )
        stream = self.pool.open(chosen[0], engine_request)
        return OpenCall(
            kind=kind,
            response_id=response_id,
            model=request.model,
            created=int(time.time()),
            record=record,
            session_program_id=session.program_id,
            call_id=outer_call_id(record.call_id),
            stream=stream,
            include_usage=bool(request.stream_options and request.stream_options.include_usage),
        )

    def _check_engines(self, model: str, kind: RequestKind, body: Mapping[str, Any]) -> None:
        """A 400 naming the field when the model's engines can never honour the request.

        ``body`` is every field as the client sent it (explicit nulls included): the engine
        gets all of them, and one it cannot honour is refused here or by the engine itself.
        """
        for slot in self.pool.slots.values():
            if slot.adapter.model == model:
                try:
                    slot.adapter.check_request(kind, body)
                except RequestRejected as exc:
                    raise bad_request(str(exc), param=exc.param) from None

    def _block_hashes(
        self, model: str, kind: RequestKind, body: Mapping[str, Any], text: str
    ) -> Sequence[int]:
        """The prompt's block hashes, only when the balancer reads them: of its token ids
        when the model's engines publish KV events, else of its text."""
        if not self.pool.balancer.uses_block_hashes:
            return ()
        hashes = self.pool.kv_feed.block_hashes(model, kind, body)
        return block_hashes(text) if hashes is None else hashes

    def _max_tokens(self, request: ChatCompletionRequest | CompletionRequest) -> int:
        requested = request.requested_max_tokens()
        if requested is None:
            return min(self.limits.default_max_tokens, self.limits.max_tokens)
        if requested > self.limits.max_tokens:
            raise bad_request(
                f"max_tokens is {requested}; the limit is {self.limits.max_tokens}",
                param="max_tokens",
            )
        return requested

    # Relaying ------------------------------------------------------------------

    async def collect(self, call: OpenCall) -> Completed:
        """Run the call to its end and return the whole output.

        Woken by the first chunk (its time is the call's first token) and then once by the
        end, not by each chunk: the output is only needed whole.
        """
        whole = _Whole()
        first = await call.stream.next()
        if first is None:
            return whole.completed()
        self._on_chunk(call, first)
        whole.add(first)
        chunks, error = await call.stream.rest()
        for chunk in chunks:
            self._on_chunk(call, chunk)
            whole.add(chunk)
        if error is not None:
            raise error
        return whole.completed()

    def body(self, call: OpenCall, done: Completed) -> dict[str, Any]:
        if done.response is not None:
            return relayed(done.response, response_id=call.response_id)
        return completion_body(
            call.kind,
            response_id=call.response_id,
            created=call.created,
            model=call.model,
            text=done.text,
            finish_reason=done.finish_reason,
            usage=done.usage,
        )

    async def open_events(self, call: OpenCall) -> AsyncIterator[bytes]:
        """The call's server-sent events, once its first chunk has come.

        Waiting for it lets a request the engine rejects answer a plain 400 (raised here as
        ``APIError``, the call closed) instead of a 200 stream that carries an error event.
        """
        chunks = aiter(call.stream)
        try:
            first = await anext(chunks, None)
        except BaseException as exc:
            self.close_soon(call, None, "error" if isinstance(exc, Exception) else "aborted")
            raise
        return self.events(call, _chain(first, chunks))

    async def events(
        self, call: OpenCall, chunks: AsyncIterator[EngineChunk]
    ) -> AsyncIterator[bytes]:
        """The call as server-sent events; closes the call however the stream ends."""
        usage: EngineUsage | None = None
        status = "aborted"
        first = True
        native = call.stream.slot.adapter.openai_native
        try:
            async for chunk in chunks:
                self._on_chunk(call, chunk)
                if chunk.usage is not None:
                    usage = chunk.usage
                if native:
                    # The engine's own chunks (tool-call deltas, logprobs, its usage chunk).
                    if chunk.event is not None:
                        yield sse(relayed(chunk.event, response_id=call.response_id))
                    continue
                if chunk.text or chunk.finish_reason is not None or first:
                    yield chunk_event(
                        call.kind,
                        response_id=call.response_id,
                        created=call.created,
                        model=call.model,
                        text=chunk.text,
                        finish_reason=chunk.finish_reason,
                        first=first,
                    )
                    first = False
            if call.include_usage and usage is not None and not native:
                yield usage_event(
                    call.kind,
                    response_id=call.response_id,
                    created=call.created,
                    model=call.model,
                    usage=usage,
                )
            status = "finished"
            self.close_soon(call, usage, status)  # recorded before the client sees the end
            yield DONE_EVENT
        except APIError as exc:
            status = "error"
            yield sse(exc.body())
            yield DONE_EVENT
        finally:
            self.close_soon(call, usage, status)

    # Closing -------------------------------------------------------------------

    def close(self, call: OpenCall, usage: EngineUsage | None, status: str) -> None:
        """Close the call in the table and the metrics (``finished``, ``aborted``, ``error``)."""
        if call.closed:
            return
        call.closed = True
        call.stream.slot.inflight.pop(call.response_id, None)
        self.programs.close_call(call.record, usage, status=status)
        engine = call.engine_id
        metrics = self.metrics
        metrics.child(metrics.calls, engine, status).inc()
        if status == "finished":
            metrics.child(metrics.call_latency, engine).observe(time.perf_counter() - call.arrival)
        if usage is not None:
            self.metrics.record_usage(engine, usage)
        log.debug(
            "call closed",
            extra={"call_id": call.call_id, "engine_id": engine, "status": status},
        )

    def close_soon(self, call: OpenCall, usage: EngineUsage | None, status: str) -> None:
        """Close now and release the engine request in the background (safe while cancelled)."""
        self.close(call, usage, status)
        if status == "finished" and call.stream.release_if_done():
            return  # the usual end: no task to start
        task = asyncio.get_running_loop().create_task(
            call.stream.aclose(abort=status != "finished")
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_chunk(self, call: OpenCall, chunk: EngineChunk) -> None:
        preemptions = chunk.extra.get(PREEMPTIONS_KEY)
        if isinstance(preemptions, int) and preemptions > 0:
            self.metrics.child(self.metrics.preemptions, call.engine_id).inc(preemptions)
            call.record.num_preemptions += preemptions  # the UI's timeline marks them
        if "preemptions" in chunk.extra or "promotions" in chunk.extra:
            place_engine_events(call.record, chunk.extra)  # the UI's timeline draws them
        if call.first_token is None:
            call.first_token = time.perf_counter()
            ttft = self.metrics.child(self.metrics.call_ttft, call.engine_id)
            ttft.observe(call.first_token - call.arrival)
            self.programs.call_started(call.record)


async def _chain(
    first: EngineChunk | None, rest: AsyncIterator[EngineChunk]
) -> AsyncIterator[EngineChunk]:
    if first is not None:
        yield first
    async for chunk in rest:
        yield chunk
