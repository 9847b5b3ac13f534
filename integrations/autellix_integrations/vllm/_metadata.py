"""Program metadata carried in ``vllm_xargs`` / ``SamplingParams.extra_args``.

The front end writes it with ``ProgramTag.as_xargs()`` (``autellix_protocol``); this module
reads it back into the core's ``CallArrival``, snapshot included. Missing metadata makes a
request its own one-call program with an empty snapshot, so stock clients still work (they
are scheduled like MLFQ: every call starts in Q1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autellix_backend.core import CallArrival
from autellix_protocol.report import REPORT_KEY
from autellix_protocol.snapshot import ProtocolError
from autellix_protocol.xargs import (
    KEY_CALL_ID,
    KEY_PARENT_IDS,
    KEY_PROGRAM_ID,
    KEY_SERVICE,
    KEY_THREAD_ID,
    decode_xargs,
)

MetadataError = ProtocolError
"""The request's Autellix metadata is malformed."""

__all__ = [
    "KEY_CALL_ID",
    "KEY_PARENT_IDS",
    "KEY_PROGRAM_ID",
    "KEY_SERVICE",
    "KEY_THREAD_ID",
    "REPORT_KEY",
    "MetadataError",
    "arrival_from_xargs",
]


def arrival_from_xargs(
    request_id: str,
    extra_args: Mapping[str, Any] | None,
    *,
    prompt_tokens: int,
    max_tokens: int | None,
) -> CallArrival:
    """The core's view of a new request; raises ``MetadataError`` on malformed metadata."""
    tag = decode_xargs(extra_args, request_id=request_id)
    return CallArrival(
        call_id=tag.call_id,
        program_id=tag.program_id,
        thread_id=tag.thread_id,
        parent_ids=tag.parent_ids,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        snapshot=tag.snapshot,
    )
