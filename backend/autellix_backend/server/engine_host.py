"""One simulated engine served over the remote-vLLM wire, so several gateways can share it.

It speaks what ``RemoteVLLMEngine`` sends and reads: OpenAI completions with the call's tag
and program snapshot in ``vllm_xargs``, and the call's service report in the final object's
``kv_transfer_params``. This is how sharded gateways share simulated engines on one machine
(tests, ``benchmarks/scale_out``); a GPU fleet shares vLLM servers or Ray actors instead.

Run it with ``python -m autellix_backend.server.engine_host --port 8101``.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from autellix_backend.engines.base import (
    EngineChunk,
    EngineError,
    EngineRequest,
    EngineUsage,
    RequestKind,
    RequestRejected,
)
from autellix_backend.engines.simulated import SimulatedEngine
from autellix_backend.server.openai_format import (
    DONE_EVENT,
    chunk_event,
    completion_body,
    sse,
    usage_body,
)
from autellix_backend.server.prompts import estimate_tokens
from autellix_protocol.report import REPORT_KEY, ServiceReport
from autellix_protocol.snapshot import ProtocolError
from autellix_protocol.xargs import decode_xargs


def create_engine_app(engine: SimulatedEngine) -> FastAPI:
    """An app serving ``engine`` at ``/v1/completions``, ``/v1/chat/completions``, ``/health``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        try:
            yield
        finally:
            await engine.aclose()

    app = FastAPI(title=f"Autellix simulated engine {engine.engine_id}", lifespan=lifespan)

    @app.get("/health")
    async def health() -> Response:
        return Response(status_code=200 if await engine.health() else 503)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": engine.model, "object": "model"}]}

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        return await _serve(engine, RequestKind.COMPLETION, await request.json())

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        return await _serve(engine, RequestKind.CHAT, await request.json())

    return app


async def _serve(engine: SimulatedEngine, kind: RequestKind, body: dict[str, Any]) -> Response:
    request_id = f"cmpl-{uuid.uuid4().hex}"
    try:
        tag = decode_xargs(body.pop("vllm_xargs", None), request_id=request_id)
        engine.check_request(kind, body)
    except (ProtocolError, RequestRejected) as exc:
        return JSONResponse({"error": {"message": str(exc), "code": 400}}, status_code=400)
    request = EngineRequest(request_id, kind, body, tag, _prompt_tokens(body))
    meta: dict[str, Any] = {
        "response_id": request_id,
        "created": int(time.time()),
        "model": engine.model,
    }
    if body.get("stream"):
        return StreamingResponse(_events(engine, request, meta), media_type="text/event-stream")
    text: list[str] = []
    last = EngineChunk()
    try:
        async for chunk in engine.generate(request):
            text.append(chunk.text)
            last = chunk
    except EngineError as exc:
        return JSONResponse({"error": {"message": str(exc), "code": 503}}, status_code=503)
    whole = completion_body(
        kind, text="".join(text), finish_reason=last.finish_reason, usage=last.usage, **meta
    )
    whole["kv_transfer_params"] = _report(request, last)
    return JSONResponse(whole)


async def _events(
    engine: SimulatedEngine, request: EngineRequest, meta: Mapping[str, Any]
) -> AsyncIterator[bytes]:
    first = True
    try:
        async for chunk in engine.generate(request):
            yield chunk_event(
                request.kind,
                text=chunk.text,
                finish_reason=chunk.finish_reason,
                first=first,
                **meta,
            )
            first = False
            if chunk.finish_reason is not None:
                yield sse(
                    {
                        **meta,
                        "id": meta["response_id"],
                        "object": "text_completion",
                        "choices": [],
                        "usage": usage_body(chunk.usage),
                        "kv_transfer_params": _report(request, chunk),
                    }
                )
    except EngineError as exc:
        yield sse({"error": {"message": str(exc), "code": 503}})
    yield DONE_EVENT


def _report(request: EngineRequest, last: EngineChunk) -> dict[str, Any]:
    usage = last.usage or EngineUsage()
    report = ServiceReport(
        call_id=request.tag.call_id,
        request_id=request.request_id,
        program_id=request.tag.program_id,
        service=usage.service,
        num_preemptions=int(last.extra.get("num_preemptions", 0)),
        num_output_tokens=usage.completion_tokens,
    )
    return {REPORT_KEY: report.as_dict()}


def _prompt_tokens(body: Mapping[str, Any]) -> int:
    messages = body.get("messages")
    if isinstance(messages, list):
        return sum(
            estimate_tokens(str(m.get("content") or "")) for m in messages if isinstance(m, dict)
        )
    prompt = body.get("prompt")
    return estimate_tokens(
        "".join(map(str, prompt)) if isinstance(prompt, list) else str(prompt or "")
    )


def main() -> None:
    """``python -m autellix_backend.server.engine_host``: serve one simulated engine."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--engine-id", default="sim-shared-0")
    parser.add_argument("--model", default="sim")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--profile", default="a100-llama3-8b")
    args = parser.parse_args()
    engine = SimulatedEngine(
        engine_id=args.engine_id, model=args.model, time_scale=args.time_scale, profile=args.profile
    )
    # keep-alive longer than the gateways' pooled connections idle, as ``autellix serve`` does
    uvicorn.run(
        create_engine_app(engine),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_keep_alive=60,
    )


if __name__ == "__main__":
    main()
