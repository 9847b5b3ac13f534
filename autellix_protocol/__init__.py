"""The Autellix wire protocol: one dependency-free package every party imports.

The app's middleware, the backend, the engines and the vLLM plugin spell headers, span
attributes, ``vllm_xargs`` keys, program snapshots and service reports only through here, so
the parties cannot drift apart. Standard library only.
"""

from __future__ import annotations

from autellix_protocol.attributes import SPAN_KINDS
from autellix_protocol.headers import (
    HEADER_CALL_ID,
    HEADER_ENGINE_ID,
    HEADER_PARENT_IDS,
    HEADER_PROGRAM_ID,
    HEADER_THREAD_ID,
)
from autellix_protocol.report import REPORT_KEY, ServiceReport, service_of
from autellix_protocol.snapshot import ZERO_SNAPSHOT, ProgramSnapshot, ProtocolError
from autellix_protocol.xargs import (
    END_PROGRAM_PREFIX,
    KEY_AWAY_S,
    KEY_CALL_ID,
    KEY_CRITICAL_PATH,
    KEY_NEXT_TOOL,
    KEY_PARENT_IDS,
    KEY_PROGRAM_ID,
    KEY_SERVICE,
    KEY_THREAD_ID,
    KEY_TOTAL_SERVICE,
    KEY_TOTAL_WAIT,
    SNAPSHOT_KEYS,
    CallTag,
    NextCallHint,
    decode_next_call,
    decode_snapshot,
    decode_xargs,
    encode_next_call,
    encode_xargs,
    end_program_request_id,
)

__all__ = [
    "END_PROGRAM_PREFIX",
    "HEADER_CALL_ID",
    "HEADER_ENGINE_ID",
    "HEADER_PARENT_IDS",
    "HEADER_PROGRAM_ID",
    "HEADER_THREAD_ID",
    "KEY_AWAY_S",
    "KEY_CALL_ID",
    "KEY_CRITICAL_PATH",
    "KEY_NEXT_TOOL",
    "KEY_PARENT_IDS",
    "KEY_PROGRAM_ID",
    "KEY_SERVICE",
    "KEY_THREAD_ID",
    "KEY_TOTAL_SERVICE",
    "KEY_TOTAL_WAIT",
    "REPORT_KEY",
    "SNAPSHOT_KEYS",
    "SPAN_KINDS",
    "ZERO_SNAPSHOT",
    "CallTag",
    "NextCallHint",
    "ProgramSnapshot",
    "ProtocolError",
    "ServiceReport",
    "decode_next_call",
    "decode_snapshot",
    "decode_xargs",
    "encode_next_call",
    "encode_xargs",
    "end_program_request_id",
    "service_of",
]
