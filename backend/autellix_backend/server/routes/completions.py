"""OpenAI-compatible ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from autellix_backend.engines.base import RequestKind
from autellix_backend.server.openai_format import dumps
from autellix_backend.server.schemas import (
    ERROR_RESPONSES,
    ChatCompletionRequest,
    CompletionRequest,
    ModelCard,
    ModelList,
)
from autellix_backend.server.state import Principal, ServiceState, State
from autellix_backend.server.tagging import CallTags, tags_from_headers
from autellix_protocol.headers import (
    HEADER_CALL_ID,
    HEADER_PARENT_IDS,
    HEADER_PROGRAM_ID,
    HEADER_THREAD_ID,
)

router = APIRouter(prefix="/v1", tags=["OpenAI"])
CLIENT_CLOSED = 499
"""Status logged for a call whose client left before the answer (nginx's convention)."""


async def call_tags(request: Request, state: State) -> CallTags:
    """Program identity of the call; a call without a program id is a program of its own."""
    return tags_from_headers(request.headers, max_id_length=state.config.limits.max_id_length)


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string", "maxLength": 256},
    }


TAG_HEADERS = {
    "parameters": [
        _header(HEADER_PROGRAM_ID, "Program (session) id; absent: the call is its own program."),
        _header(HEADER_THREAD_ID, "Thread of the program that issues the call (default main)."),
        _header(HEADER_CALL_ID, "This call's id (generated when absent)."),
        _header(HEADER_PARENT_IDS, "Comma-separated ids of the calls this one depends on."),
    ]
}
"""The tag headers, documented in the OpenAPI schema (read straight from the request)."""


Tags = Annotated[CallTags, Depends(call_tags)]


class _BodyResponse(JSONResponse):
    """A completion body serialised with orjson (the same JSON, a fraction of the cost)."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


@router.post(
    "/chat/completions",
    responses=ERROR_RESPONSES,
    summary="Chat completion",
    openapi_extra=TAG_HEADERS,
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, state: State, owner: Principal, tags: Tags
) -> Response:
    return await _serve(state, request, owner, RequestKind.CHAT, body, tags)


@router.post(
    "/completions", responses=ERROR_RESPONSES, summary="Text completion", openapi_extra=TAG_HEADERS
)
async def completions(
    body: CompletionRequest, request: Request, state: State, owner: Principal, tags: Tags
) -> Response:
    return await _serve(state, request, owner, RequestKind.COMPLETION, body, tags)


@router.get("/models", responses=ERROR_RESPONSES, summary="Models served")
async def models(state: State, owner: Principal) -> ModelList:
    created = int(time.time())
    return ModelList(data=[ModelCard(id=m, created=created) for m in state.pool.models])


async def _serve(
    state: ServiceState,
    request: Request,
    owner: str | None,
    kind: RequestKind,
    body: ChatCompletionRequest | CompletionRequest,
    tags: CallTags,
) -> Response:
    gateway = state.gateway
    call = gateway.open(owner, kind, body, tags)
    if body.stream:
        events = await gateway.open_events(call)
        return StreamingResponse(events, media_type="text/event-stream", headers=call.headers())
    collecting = asyncio.create_task(gateway.collect(call))
    watching = asyncio.create_task(_client_gone(request))
    try:
        await asyncio.wait({collecting, watching}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        collecting.cancel()
        gateway.close_soon(call, None, "aborted")
        raise
    finally:
        watching.cancel()
    if not collecting.done():
        collecting.cancel()
        gateway.close_soon(call, None, "aborted")
        return Response(status_code=CLIENT_CLOSED)
    try:
        done = collecting.result()
    except Exception:
        gateway.close_soon(call, None, "error")
        raise
    gateway.close_soon(call, done.usage, "finished")
    return _BodyResponse(gateway.body(call, done), headers=call.headers())


async def _client_gone(request: Request) -> None:
    """Return when the client disconnects (the body has been read by then)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return
