"""Span attributes (``autellix.*``) and the standard names set next to them."""

from __future__ import annotations

from typing import Final

ATTR_PROGRAM_ID: Final = "autellix.program.id"
ATTR_THREAD_ID: Final = "autellix.thread.id"
ATTR_NODE_ID: Final = "autellix.node.id"
ATTR_NODE_NAME: Final = "autellix.node.name"
ATTR_CALL_ID: Final = "autellix.call.id"
ATTR_PARENT_IDS: Final = "autellix.parent_ids"
"""String array: call or node ids this one depends on."""
ATTR_SPAN_KIND: Final = "autellix.span.kind"
"""One of ``SPAN_KINDS``."""
ATTR_SUPERSTEP: Final = "autellix.superstep"
ATTR_PARENT_THREAD_ID: Final = "autellix.thread.parent_id"
ATTR_LLM_PARENT_IDS: Final = "autellix.llm_parent_ids"
"""String array: the LLM calls this call depends on (the ids sent in ``HEADER_PARENT_IDS``)."""
ATTR_ERROR_KIND: Final = "autellix.error.kind"
"""Set on spans that failed: the exception's class name (never its message)."""
ATTR_STATE: Final = "autellix.state"
"""How a span's run ended when not well: one of ``STATE_ERROR`` (it raised),
``STATE_CANCELLED`` (stopped because another part failed) or, on a program span,
``STATE_FAILED`` or ``STATE_INTERRUPTED`` (the run paused for human input; a resumed run
continues the same program, so the program has not ended)."""
STATE_ERROR: Final = "error"
STATE_CANCELLED: Final = "cancelled"
STATE_FAILED: Final = "failed"
STATE_INTERRUPTED: Final = "interrupted"

SPAN_KIND_PROGRAM: Final = "program"
SPAN_KIND_NODE: Final = "node"
SPAN_KIND_LLM: Final = "llm"
SPAN_KIND_TOOL: Final = "tool"
SPAN_KIND_INTERRUPT: Final = "interrupt"
SPAN_KINDS: Final = frozenset(
    {SPAN_KIND_PROGRAM, SPAN_KIND_NODE, SPAN_KIND_LLM, SPAN_KIND_TOOL, SPAN_KIND_INTERRUPT}
)

# Standard names we also set.
OPENINFERENCE_SESSION_ID: Final = "session.id"
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
OPENINFERENCE_GRAPH_NODE_ID: Final = "graph.node.id"
OPENINFERENCE_GRAPH_NODE_PARENT_ID: Final = "graph.node.parent_id"
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
