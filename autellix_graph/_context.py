"""The LLM call in flight in the current context, and the HTTP headers that announce it.

The callback handler sets the current call in ``on_chat_model_start`` (it runs inline, in
the same context as the request that follows), and httpx event hooks copy it into headers.
A callback cannot change a request; a context variable read by the transport can.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from autellix_graph import protocol


class RequestCount:
    """How many requests went out tagged for one call (to warn about untagged clients)."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


@dataclass(frozen=True, slots=True)
class CallTag:
    """Identity of one LLM call, as the backend needs it."""

    program_id: str
    thread_id: str
    call_id: str
    parent_ids: tuple[str, ...]
    traceparent: str | None = None
    """W3C trace context of the call's span, so backend spans join the app's trace."""
    sent: RequestCount = field(default_factory=RequestCount, compare=False, repr=False)
    """Requests that carried these headers so far."""

    def headers(self) -> dict[str, str]:
        """The ``X-Autellix-*`` headers (and ``traceparent``) for this call; counts as a
        tagged request."""
        self.sent.count += 1
        headers = {
            protocol.HEADER_PROGRAM_ID: self.program_id,
            protocol.HEADER_THREAD_ID: self.thread_id,
            protocol.HEADER_CALL_ID: self.call_id,
            protocol.HEADER_PARENT_IDS: ",".join(self.parent_ids),
        }
        if self.traceparent is not None:
            headers["traceparent"] = self.traceparent
        return headers


current_call: ContextVar[CallTag | None] = ContextVar("autellix_current_call", default=None)
current_program: ContextVar[str | None] = ContextVar("autellix_current_program", default=None)
"""Id of the program whose thread runs in this context (set by the recorder)."""


def current_headers() -> dict[str, str]:
    """Headers naming the LLM call now in flight in this context (empty outside a call).

    Use it with HTTP clients other than httpx, e.g. the OpenAI SDK's ``extra_headers``:

    >>> current_headers()
    {}
    """
    tag = current_call.get()
    return {} if tag is None else tag.headers()


def current_program_id() -> str | None:
    """Id of the program running in this context: inside a LangGraph node or a LlamaIndex
    step, or during one of its LLM calls; None elsewhere.

    >>> current_program_id() is None
    True
    """
    tag = current_call.get()
    return tag.program_id if tag is not None else current_program.get()
