"""Program identity of a call, read from the ``X-Autellix-*`` request headers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from autellix_backend.server.errors import bad_request
from autellix_protocol.headers import (
    HEADER_CALL_ID,
    HEADER_PARENT_IDS,
    HEADER_PROGRAM_ID,
    HEADER_THREAD_ID,
)

MAX_PARENTS = 256
_ID = re.compile(r"^[\x21-\x2b\x2d-\x7e]+$")
"""Printable ASCII with no space and no comma (commas separate parent ids)."""


@dataclass(frozen=True, slots=True)
class CallTags:
    """What the client said about a call; ``program_id`` None means an untagged call."""

    program_id: str | None = None
    thread_id: str = "main"
    call_id: str | None = None
    parent_ids: tuple[str, ...] = ()


def tags_from_headers(headers: Mapping[str, str], *, max_id_length: int) -> CallTags:
    """Read and check the tag headers; raises ``APIError`` (400) for a malformed one."""
    program_id = _id(headers.get(HEADER_PROGRAM_ID), HEADER_PROGRAM_ID, max_id_length)
    thread_id = _id(headers.get(HEADER_THREAD_ID), HEADER_THREAD_ID, max_id_length)
    call_id = _id(headers.get(HEADER_CALL_ID), HEADER_CALL_ID, max_id_length)
    parents: tuple[str, ...] = ()
    raw_parents = headers.get(HEADER_PARENT_IDS)
    if raw_parents:
        items = [p.strip() for p in raw_parents.split(",") if p.strip()]
        if len(items) > MAX_PARENTS:
            raise bad_request(f"{HEADER_PARENT_IDS} names more than {MAX_PARENTS} calls")
        parents = tuple(
            dict.fromkeys(_id(p, HEADER_PARENT_IDS, max_id_length) or "" for p in items)
        )
    if call_id is not None and call_id in parents:
        raise bad_request("a call cannot be its own parent", param=HEADER_PARENT_IDS)
    return CallTags(
        program_id=program_id,
        thread_id=thread_id or "main",
        call_id=call_id,
        parent_ids=parents,
    )


def check_id(value: str, what: str, max_length: int) -> str:
    """Return ``value`` if it is a valid id, else raise ``APIError`` (400)."""
    checked = _id(value, what, max_length)
    if checked is None:
        raise bad_request(f"{what} must not be empty", param=what)
    return checked


def _id(value: str | None, what: str, max_length: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > max_length:
        raise bad_request(f"{what} is longer than {max_length} characters", param=what)
    if not _ID.match(value):
        raise bad_request(f"{what} must be printable ASCII with no spaces or commas", param=what)
    return value
