"""Names shared by the middleware and the backend: HTTP headers and span attributes.

They live in the dependency-free ``autellix_protocol`` package, which every party imports;
this module re-exports them for the middleware's users and adds the middleware's own settings
(environment variables, run metadata keys).
"""

from __future__ import annotations

from typing import Final

from autellix_protocol.attributes import (
    ATTR_CALL_ID,
    ATTR_ERROR_KIND,
    ATTR_LLM_PARENT_IDS,
    ATTR_NODE_ID,
    ATTR_NODE_NAME,
    ATTR_PARENT_IDS,
    ATTR_PARENT_THREAD_ID,
    ATTR_PROGRAM_ID,
    ATTR_SPAN_KIND,
    ATTR_STATE,
    ATTR_SUPERSTEP,
    ATTR_THREAD_ID,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_OPERATION_NAME,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_TOOL_NAME,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    OPENINFERENCE_GRAPH_NODE_ID,
    OPENINFERENCE_GRAPH_NODE_PARENT_ID,
    OPENINFERENCE_SESSION_ID,
    OPENINFERENCE_SPAN_KIND,
    SPAN_KIND_INTERRUPT,
    SPAN_KIND_LLM,
    SPAN_KIND_NODE,
    SPAN_KIND_PROGRAM,
    SPAN_KIND_TOOL,
    SPAN_KINDS,
    STATE_CANCELLED,
    STATE_ERROR,
    STATE_FAILED,
    STATE_INTERRUPTED,
)
from autellix_protocol.headers import (
    HEADER_CALL_ID,
    HEADER_PARENT_IDS,
    HEADER_PROGRAM_ID,
    HEADER_THREAD_ID,
)

# Environment variables the middleware reads.
ENV_BACKEND_URL: Final = "AUTELLIX_BASE_URL"
ENV_API_KEY: Final = "AUTELLIX_API_KEY"
ENV_OTLP_ENDPOINT: Final = "AUTELLIX_OTLP_ENDPOINT"
ENV_DISABLED: Final = "AUTELLIX_DISABLED"
ENV_MODEL: Final = "AUTELLIX_MODEL"
"""Model name ``chat_openai()`` asks the service for when none is given."""
PROGRAM_ID_METADATA_KEY: Final = "autellix_program_id"
"""Run metadata key (``config={"metadata": {...}}``) that names a program instead of a fresh id."""

__all__ = [
    "ATTR_CALL_ID",
    "ATTR_ERROR_KIND",
    "ATTR_LLM_PARENT_IDS",
    "ATTR_NODE_ID",
    "ATTR_NODE_NAME",
    "ATTR_PARENT_IDS",
    "ATTR_PARENT_THREAD_ID",
    "ATTR_PROGRAM_ID",
    "ATTR_SPAN_KIND",
    "ATTR_STATE",
    "ATTR_SUPERSTEP",
    "ATTR_THREAD_ID",
    "ENV_API_KEY",
    "ENV_BACKEND_URL",
    "ENV_DISABLED",
    "ENV_MODEL",
    "ENV_OTLP_ENDPOINT",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "HEADER_CALL_ID",
    "HEADER_PARENT_IDS",
    "HEADER_PROGRAM_ID",
    "HEADER_THREAD_ID",
    "OPENINFERENCE_GRAPH_NODE_ID",
    "OPENINFERENCE_GRAPH_NODE_PARENT_ID",
    "OPENINFERENCE_SESSION_ID",
    "OPENINFERENCE_SPAN_KIND",
    "PROGRAM_ID_METADATA_KEY",
    "SPAN_KINDS",
    "SPAN_KIND_INTERRUPT",
    "SPAN_KIND_LLM",
    "SPAN_KIND_NODE",
    "SPAN_KIND_PROGRAM",
    "SPAN_KIND_TOOL",
    "STATE_CANCELLED",
    "STATE_ERROR",
    "STATE_FAILED",
    "STATE_INTERRUPTED",
]
