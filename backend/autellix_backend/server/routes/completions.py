"""OpenAI-compatible ``/v1/chat/completions``, ``/v1/completions`` and ``/v1/models``.

The two completion routes are declared with FastAPI (their OpenAPI schema, and every error
answer), but a call is served by ``FastCompletionRoute``, a plain ASGI route in front of them:
it reads the body, validates it with pydantic-core straight from the bytes and runs the same
gateway code, without FastAPI's dependency and body machinery (most of a call's gateway time
at light load). Anything that would not be a success (bad JSON or fields, a wrong content
type, a bad key or tag header) is replayed to the FastAPI route, so errors stay byte for byte
what they were. ``CompletionFront`` runs the same route ahead of the app's middleware and
router, for a call whose body size is known and within the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.routing import BaseRoute, Route

from autellix_backend.engines.base import RequestKind
from autellix_backend.server.errors import APIError, error_response
from autellix_backend.server.middleware import RequestCounter, StatusRecorder, content_length
from autellix_backend.server.openai_format import dumps
from autellix_backend.server.pool import CallStream
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

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

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
    return await _serve(state, request.receive, owner, RequestKind.CHAT, body, tags)


@router.post(
    "/completions", responses=ERROR_RESPONSES, summary="Text completion", openapi_extra=TAG_HEADERS
)
async def completions(
    body: CompletionRequest, request: Request, state: State, owner: Principal, tags: Tags
) -> Response:
    return await _serve(state, request.receive, owner, RequestKind.COMPLETION, body, tags)


@router.get("/models", responses=ERROR_RESPONSES, summary="Models served")
async def models(state: State, owner: Principal) -> ModelList:
    created = int(time.time())
    return ModelList(data=[ModelCard(id=m, created=created) for m in state.pool.models])


async def _serve(
    state: ServiceState,
    receive: Receive,
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
    watching = asyncio.create_task(_client_gone(receive, call.stream))
    try:
        done = await gateway.collect(call)
    except _ClientGone:
        gateway.close_soon(call, None, "aborted")
        return Response(status_code=CLIENT_CLOSED)
    except Exception:
        gateway.close_soon(call, None, "error")
        raise
    except BaseException:
        gateway.close_soon(call, None, "aborted")
        raise
    finally:
        watching.cancel()
    gateway.close_soon(call, done.usage, "finished")
    return _BodyResponse(gateway.body(call, done), headers=call.headers())


class _ClientGone(Exception):
    """The client disconnected before its answer."""


async def _client_gone(receive: Receive, stream: CallStream) -> None:
    """Interrupt the call's ``stream`` when the client disconnects (its body has been read).

    The handler reads the stream itself, so a finished call costs no task of its own."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            stream.interrupt(_ClientGone())
            return


_REFUSED = "autellix.refused"
"""Scope key: ``CompletionFront`` tried this call and refused it, so the route does not."""

_BODIES: dict[str, tuple[RequestKind, type[ChatCompletionRequest] | type[CompletionRequest]]] = {
    "/v1/chat/completions": (RequestKind.CHAT, ChatCompletionRequest),
    "/v1/completions": (RequestKind.COMPLETION, CompletionRequest),
}


class FastCompletionRoute:
    """Serves ``POST`` of one completion route as plain ASGI; see the module's docstring.

    Args:
        declared: the FastAPI route of the same path, which answers every call this one
            does not accept.
    """

    def __init__(self, declared: APIRoute) -> None:
        self.declared = declared
        self.kind, self.model = _BODIES[declared.path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        replay = receive if scope.get(_REFUSED) else await self.serve(scope, receive, send)
        if replay is not None:
            scope["route"] = self.declared
            scope["endpoint"] = self.declared.endpoint
            await self.declared.handle(scope, replay, send)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Serve the call when it is valid and return None; else return a ``receive`` that
        replays what was read, for the declared route to answer."""
        messages = await _read_body(receive)
        body = b"".join(m.get("body", b"") for m in messages)
        state: ServiceState = scope["app"].state.autellix
        whole = messages[-1]["type"] == "http.request"
        accepted = self._accept(state, Headers(scope=scope), body) if whole else None
        if accepted is None:
            return _replay(messages, receive)
        request, owner, tags = accepted
        response = await _serve(state, receive, owner, self.kind, request, tags)
        await response(scope, receive, send)
        return None

    def _accept(
        self, state: ServiceState, headers: Headers, body: bytes
    ) -> tuple[ChatCompletionRequest | CompletionRequest, str | None, CallTags] | None:
        """The call's body, key name and tags when all are valid, else None."""
        if not _is_json(headers.get("content-type", "")):
            return None
        try:
            owner = state.keys.principal(headers.get("authorization"))
            tags = tags_from_headers(headers, max_id_length=state.config.limits.max_id_length)
            request = self.model.model_validate_json(body)
        except (APIError, ValidationError):
            return None
        return request, owner, tags


def fast_routes(routes: Sequence[BaseRoute]) -> list[Route]:
    """A ``FastCompletionRoute`` for each declared completion route in ``routes``.

    Put them ahead of the app's routes: they take ``POST`` on the same paths, while other
    methods still reach the declared routes (a 405, as before).
    """
    return [
        Route(
            route.path,
            FastCompletionRoute(route),
            methods=["POST"],
            name=f"{route.name}_fast",
            include_in_schema=False,
        )
        for route in routes
        if isinstance(route, APIRoute) and route.path in _BODIES and "POST" in route.methods
    ]


class CompletionFront:
    """Serves completion calls ahead of the app's middleware and router.

    Starlette's layers (its error and exception middleware, the exit stack, routing, our
    request count and body limit) wrap every call in a dozen coroutines and send wrappers.
    Here a ``POST`` to a completion route whose Content-Length is within the body limit
    goes straight to its ``FastCompletionRoute``, counted in ``autellix_requests`` and with
    errors answered as the app's handlers would. Any other request, and any call the route
    refuses, is left to the app, its body replayed.

    Args:
        routes: the app's routes; their ``FastCompletionRoute`` endpoints are served here.
        counter: the app's request counter.
        max_body_bytes: the app's body limit; a larger or unsized body goes to the app.
    """

    def __init__(
        self, routes: Sequence[BaseRoute], *, counter: RequestCounter, max_body_bytes: int
    ) -> None:
        self._routes = {
            route.path: route.endpoint
            for route in routes
            if isinstance(route, Route) and isinstance(route.endpoint, FastCompletionRoute)
        }
        self._counter = counter
        self._max_body_bytes = max_body_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """None when the request was answered here; else the ``receive`` the app must read
        it with."""
        if scope["type"] != "http" or scope["method"] != "POST":
            return receive
        route = self._routes.get(scope["path"])
        size = content_length(scope["headers"])
        if route is None or size is None or not 0 <= size <= self._max_body_bytes:
            return receive
        recorder = StatusRecorder(send)
        served = True
        try:
            replay = await route.serve(scope, receive, recorder)
            if replay is not None:
                served = False
                scope[_REFUSED] = True  # the app's route answers it without trying again
                return replay
        except Exception as exc:
            if recorder.started:
                raise
            response = error_response(exc, method="POST", path=scope["path"])
            await response(scope, receive, recorder)
        finally:
            if served:
                self._counter.count(route.declared.path, recorder.status)
        return None


def _is_json(content_type: str) -> bool:
    """What FastAPI reads as JSON: ``application/json`` or ``application/*+json`` (a call
    with no content type is refused, as FastAPI does)."""
    media = content_type.partition(";")[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


async def _read_body(receive: Receive) -> list[Message]:
    """The request's messages up to the end of its body (or the client's disconnect)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that hands out ``messages`` again, then the client's next ones."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
