"""Program metadata carried in ``vllm_xargs`` / ``SamplingParams.extra_args``.

The backend writes it with ``ProgramTag.as_xargs()``; this module reads it back into the
core's ``CallArrival``. Missing metadata makes a request its own one-call program, so stock
clients still work (they are scheduled like MLFQ: every call starts at service 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from autellix_backend.core import CallArrival

KEY_PROGRAM_ID = "autellix_program_id"
KEY_THREAD_ID = "autellix_thread_id"
KEY_CALL_ID = "autellix_call_id"
KEY_PARENT_IDS = "autellix_parent_ids"
KEY_SERVICE = "autellix_service"
REPORT_KEY = "autellix"
"""Key of the service report inside a finished request's ``kv_transfer_params``."""


class MetadataError(ValueError):
    """The request's Autellix metadata is malformed."""


def arrival_from_xargs(
    request_id: str,
    extra_args: Mapping[str, Any] | None,
    *,
    prompt_tokens: int,
    max_tokens: int | None,
) -> CallArrival:
    """The core's view of a new request; raises ``MetadataError`` on malformed metadata."""
    args = extra_args or {}
    program_id = _text(args, KEY_PROGRAM_ID) or f"request:{request_id}"
    call_id = _text(args, KEY_CALL_ID) or request_id
    raw_parents = args.get(KEY_PARENT_IDS, "")
    if isinstance(raw_parents, str):
        parents = tuple(p for p in (s.strip() for s in raw_parents.split(",")) if p)
    elif isinstance(raw_parents, list | tuple):
        parents = tuple(str(p) for p in raw_parents if str(p))
    else:
        raise MetadataError(f"{KEY_PARENT_IDS} must be a comma-separated string")
    service = _service(args.get(KEY_SERVICE))
    return CallArrival(
        call_id=call_id,
        program_id=program_id,
        thread_id=_text(args, KEY_THREAD_ID) or "main",
        parent_ids=parents,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        service_at_arrival=service,
    )


def _text(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int):
        raise MetadataError(f"{key} must be a string")
    return str(value).strip()


def _service(raw: Any) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise MetadataError(f"{KEY_SERVICE} must be a number, got {raw!r}") from exc
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise MetadataError(f"{KEY_SERVICE} must be a finite number >= 0, got {raw!r}")
    return value
