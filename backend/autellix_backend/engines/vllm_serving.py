"""vLLM's own OpenAI serving layer in front of an in-process ``AsyncLLM``.

The in-process engine answers chat and text completions with the serving classes ``vllm
serve`` uses (``OpenAIServingChat``, ``OpenAIServingCompletion`` with ``OpenAIServingModels``),
built by vLLM's ``init_app_state`` from vLLM's own command-line defaults plus the options given
(``enable_auto_tool_choice``, ``tool_call_parser``, ``chat_template``...). Chat templates with
tools, tool-call and reasoning parsers, structured outputs, logprobs, ``n`` and every prompt
form therefore behave exactly as on stock vLLM.

The serving layer sees the ``AsyncLLM`` through ``_MeteredClient``, which counts each call's
tokens and collects the Autellix plugin's service reports (``kv_transfer_params["autellix"]``)
for the gateway, and strips those reports from what the client sees. A request vLLM would
run with ``FINAL_ONLY`` outputs runs with ``CUMULATIVE`` ones, folded back into the one final
output vLLM would have produced, so that the call's first token and every one of its ``n``
choices' reports are seen. vLLM merges the outputs of choices that end before the queue is
read and keeps only the last report; the plugin's reports therefore carry the reports of the
call's choices that ended before them (``SIBLINGS_KEY``), and the meter adds up the distinct
ones by request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from autellix_backend.engines.base import EngineError, EngineUsage, RequestKind, RequestRejected
from autellix_protocol.report import distinct_reports

if TYPE_CHECKING:
    from argparse import Namespace

    from vllm.v1.engine.async_llm import AsyncLLM

REPORT_KEY = "autellix"
"""Key of the plugin's service report in a finished request's ``kv_transfer_params``."""

_METER: contextvars.ContextVar[CallMeter | None] = contextvars.ContextVar(
    "autellix_call_meter", default=None
)
"""The meter of the call the current task serves (set by ``VLLMServing.respond``)."""


@dataclass(slots=True)
class CallMeter:
    """Tokens and service of one call, summed over its engine requests and ``n`` choices."""

    on_first_token: Callable[[], None] | None = None
    prompt_tokens: dict[str, int] = field(default_factory=dict)
    cached_tokens: dict[str, int] = field(default_factory=dict)
    completion_tokens: dict[tuple[str, int], int] = field(default_factory=dict)
    reports: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    finish_reason: str | None = None
    started: bool = False

    def observe(self, request_id: str, output: Any, *, delta: bool) -> None:
        """Fold one ``RequestOutput`` of engine request ``request_id`` into the counts."""
        self.prompt_tokens[request_id] = len(output.prompt_token_ids or ())
        cached = int(getattr(output, "num_cached_tokens", 0) or 0)
        self.cached_tokens[request_id] = max(self.cached_tokens.get(request_id, 0), cached)
        for choice in output.outputs:
            key = (request_id, int(choice.index))
            num = len(choice.token_ids)
            self.completion_tokens[key] = self.completion_tokens.get(key, 0) * delta + num
            if choice.finish_reason is not None:
                self.finish_reason = str(choice.finish_reason)
            if num and not self.started:
                self.started = True
                if self.on_first_token is not None:
                    self.on_first_token()
        report = _report(output)
        if report is None:
            return
        self.reports.update(distinct_reports(report, request_id))

    def usage(self) -> EngineUsage:
        return EngineUsage(
            prompt_tokens=sum(self.prompt_tokens.values()),
            completion_tokens=sum(self.completion_tokens.values()),
            cached_tokens=sum(self.cached_tokens.values()),
            service=sum(float(r.get("service", 0.0)) for r in self.reports.values()),
        )

    def report(self) -> dict[str, Any]:
        """The plugin's report, with service and preemptions summed over the choices."""
        if not self.reports:
            return {}
        merged = dict(list(self.reports.values())[-1])
        merged["service"] = self.usage().service
        merged["num_preemptions"] = sum(
            int(r.get("num_preemptions", 0)) for r in self.reports.values()
        )
        return merged


class _MeteredClient:
    """The ``AsyncLLM`` as the serving layer sees it: ``generate`` feeds the call's meter."""

    def __init__(self, llm: AsyncLLM) -> None:
        self._llm = llm

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llm, name)

    async def generate(
        self, prompt: Any, sampling_params: Any, request_id: str, *args: Any, **kwargs: Any
    ) -> AsyncGenerator[Any, None]:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        meter = _METER.get()
        final_only = (
            meter is not None
            and isinstance(sampling_params, SamplingParams)
            and sampling_params.output_kind == RequestOutputKind.FINAL_ONLY
        )
        if final_only:
            sampling_params.output_kind = RequestOutputKind.CUMULATIVE
        delta = getattr(sampling_params, "output_kind", None) == RequestOutputKind.DELTA
        latest: dict[int, Any] = {}
        stream = self._llm.generate(prompt, sampling_params, request_id, *args, **kwargs)
        async for output in stream:
            if meter is not None:
                meter.observe(request_id, output, delta=delta)
            _strip_report(output)
            if not final_only:
                yield output
                continue
            for choice in output.outputs:
                latest[int(choice.index)] = choice
            if output.finished:
                output.outputs = [latest[i] for i in sorted(latest)]
                yield output


class VLLMServing:
    """Chat and text completions answered by vLLM's serving classes."""

    def __init__(self, chat: Any, completion: Any) -> None:
        self._chat = chat
        self._completion = completion

    @classmethod
    async def build(
        cls, llm: AsyncLLM, *, model: str, served_model: str, options: Mapping[str, Any]
    ) -> VLLMServing:
        """The serving layer ``vllm serve`` would build for ``llm`` with ``options``."""
        from starlette.datastructures import State
        from vllm.entrypoints.launchers.api_server.app_state import init_app_state

        args = serve_args(model=model, served_model=served_model, options=options)
        args.structured_outputs_config = llm.vllm_config.structured_outputs_config
        state = State()
        tasks = await llm.get_supported_tasks()
        await init_app_state(cast(Any, _MeteredClient(llm)), state, args, supported_tasks=tasks)
        if state.openai_serving_chat is None or state.openai_serving_completion is None:
            raise EngineError(f"model {served_model} does not generate text")
        return cls(state.openai_serving_chat, state.openai_serving_completion)

    async def respond(
        self, kind: RequestKind, body: Mapping[str, Any], meter: CallMeter
    ) -> AsyncIterator[dict[str, Any] | None]:
        """The response as vLLM writes it: one whole response, or the stream's chunks.

        ``None`` is yielded once, when the first token is generated (before a non-streamed
        response is complete). Raises ``RequestRejected`` for a request vLLM refuses.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue()
        meter.on_first_token = lambda: queue.put_nowait(None)
        task = asyncio.create_task(self._produce(kind, body, meter, queue.put_nowait))
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _produce(
        self,
        kind: RequestKind,
        body: Mapping[str, Any],
        meter: CallMeter,
        put: Callable[[Any], None],
    ) -> None:
        """Run the serving call in this task (whose context holds the meter)."""
        _METER.set(meter)
        try:
            result = await self._call(kind, body)
            if not hasattr(result, "__aiter__"):
                put(result.model_dump())
            else:
                async for text in result:
                    for line in text.splitlines():
                        event = _event(line)
                        if event is not None:
                            put(event)
        except Exception as exc:
            put(_rejection(exc))
        put(_END)

    async def _call(self, kind: RequestKind, body: Mapping[str, Any]) -> Any:
        from pydantic import ValidationError
        from vllm.entrypoints.serve.engine.protocol import ErrorResponse

        if kind is RequestKind.CHAT:
            from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

            try:
                chat = ChatCompletionRequest.model_validate(body)
            except ValidationError as exc:
                raise _invalid(exc) from None
            result = await self._chat.create_chat_completion(chat, None)
        else:
            from vllm.entrypoints.openai.completion.protocol import CompletionRequest

            try:
                completion = CompletionRequest.model_validate(body)
            except ValidationError as exc:
                raise _invalid(exc) from None
            result = await self._completion.create_completion(completion, None)
        if isinstance(result, ErrorResponse):
            error = result.error
            if 400 <= error.code < 500:
                raise RequestRejected(error.message, param=error.param)
            raise RuntimeError(error.message)
        return result


def serve_args(*, model: str, served_model: str, options: Mapping[str, Any]) -> Namespace:
    """``vllm serve``'s arguments: its defaults, the model, and ``options`` (its field names).

    Raises ``ValueError`` for an option ``vllm serve`` does not have or rejects.
    """
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser()  # type: ignore[no-untyped-call]
    args: Namespace = make_arg_parser(parser).parse_args([])
    for name, value in options.items():
        if not hasattr(args, name):
            raise ValueError(f"vllm serve has no option {name!r}")
        setattr(args, name, value)
    args.model = model
    args.served_model_name = [served_model]
    validate_parsed_serve_args(args)
    return args


_END = object()


def _event(line: str) -> dict[str, Any] | None:
    """One line of vLLM's server-sent events as an object (None for ``[DONE]`` and others)."""
    if not line.startswith("data:"):
        return None  # blank separators and SSE comments (keep-alives)
    data = line.removeprefix("data:").strip()
    if not data or data == "[DONE]":
        return None
    event = json.loads(data)
    if not isinstance(event, dict):
        raise RuntimeError(f"vLLM streamed a non-object event: {data[:200]}")
    error = event.get("error")
    if isinstance(error, Mapping):
        code = int(error.get("code") or 500)
        message = str(error.get("message") or "generation failed")
        if 400 <= code < 500:
            raise RequestRejected(message, param=error.get("param"))
        raise RuntimeError(message)
    return event


def _invalid(exc: Any) -> RequestRejected:
    """A pydantic validation error as a rejection naming its first field."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    param = ".".join(str(p) for p in first.get("loc", ()) if not isinstance(p, int)) or None
    return RequestRejected(f"{param}: {first.get('msg', str(exc))}", param=param)


def _rejection(exc: Exception) -> Exception:
    """vLLM's request errors as ``RequestRejected``; anything else unchanged."""
    from vllm.exceptions import VLLMClientError, VLLMValidationError

    if isinstance(exc, VLLMValidationError):
        return RequestRejected(str(exc), param=exc.parameter)
    if isinstance(exc, VLLMClientError | TypeError) or type(exc) is ValueError:
        return RequestRejected(str(exc))
    return exc


def _report(output: Any) -> Mapping[str, Any] | None:
    params = getattr(output, "kv_transfer_params", None)
    report = params.get(REPORT_KEY) if isinstance(params, Mapping) else None
    return report if isinstance(report, Mapping) else None


def _strip_report(output: Any) -> None:
    """Keep the plugin's report out of the response (stock vLLM sends none)."""
    params = getattr(output, "kv_transfer_params", None)
    if isinstance(params, Mapping) and REPORT_KEY in params:
        rest = {k: v for k, v in params.items() if k != REPORT_KEY}
        output.kv_transfer_params = rest or None
