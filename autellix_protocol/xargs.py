"""A call's tag (program, thread, call, parents, program snapshot) and its ``vllm_xargs`` codec.

vLLM passes ``vllm_xargs`` / ``SamplingParams.extra_args`` through as flat JSON values, so
every field is written as a string and read back leniently (numbers may arrive as numbers).
A request with no program id is its own one-call program, so stock clients still work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from autellix_protocol.snapshot import ZERO_SNAPSHOT, ProgramSnapshot, ProtocolError

KEY_PROGRAM_ID: Final = "autellix_program_id"
KEY_THREAD_ID: Final = "autellix_thread_id"
KEY_CALL_ID: Final = "autellix_call_id"
KEY_PARENT_IDS: Final = "autellix_parent_ids"
"""Comma-separated call ids."""
KEY_SERVICE: Final = "autellix_service"
"""``ProgramSnapshot.service``."""
KEY_CRITICAL_PATH: Final = "autellix_critical_path"
KEY_TOTAL_SERVICE: Final = "autellix_total_service"
KEY_TOTAL_WAIT: Final = "autellix_total_wait"
SNAPSHOT_KEYS: Final = {
    "service": KEY_SERVICE,
    "critical_path": KEY_CRITICAL_PATH,
    "total_service": KEY_TOTAL_SERVICE,
    "total_wait": KEY_TOTAL_WAIT,
}
"""``ProgramSnapshot`` field -> its ``vllm_xargs`` key."""
KEY_NEXT_TOOL: Final = "autellix_next_tool"
"""The tool the program runs when this call ends; its next call follows the tool."""
KEY_AWAY_S: Final = "autellix_away_s"
"""Seconds the program is expected to be away after this call, when the sender knows."""
END_PROGRAM_PREFIX: Final = "autellix-end-program:"
"""Request id prefix of the gateway's "program ended" notice to an engine running the plugin:
aborting ``END_PROGRAM_PREFIX + program id`` (no such request exists) releases what the
engine keeps for that program, its held KV. vLLM's abort is the one path from an engine's
caller to its scheduler that needs no request of the program to be running."""


def end_program_request_id(program_id: str) -> str:
    return END_PROGRAM_PREFIX + program_id


@dataclass(frozen=True, slots=True)
class CallTag:
    """Program metadata carried by every call from the front end to its engine.

    >>> tag = CallTag("p", call_id="c", snapshot=ProgramSnapshot(service=2.0))
    >>> decode_xargs(encode_xargs(tag), request_id="r") == tag
    True
    """

    program_id: str
    thread_id: str = "main"
    call_id: str = ""
    parent_ids: tuple[str, ...] = ()
    snapshot: ProgramSnapshot = ZERO_SNAPSHOT
    """The program as the front end's table saw it when the call was sent."""

    @property
    def service_at_arrival(self) -> float:
        """The program's scalar priority when the call arrived (a client-side hint)."""
        return self.snapshot.service

    def as_xargs(self) -> dict[str, str]:
        """The tag as ``vllm_xargs`` (flat strings); see ``encode_xargs``."""
        return encode_xargs(self)


def encode_xargs(tag: CallTag) -> dict[str, str]:
    """``tag`` as flat ``vllm_xargs`` strings."""
    values = {
        KEY_PROGRAM_ID: tag.program_id,
        KEY_THREAD_ID: tag.thread_id,
        KEY_CALL_ID: tag.call_id,
        KEY_PARENT_IDS: ",".join(tag.parent_ids),
    }
    for name, key in SNAPSHOT_KEYS.items():
        values[key] = repr(float(getattr(tag.snapshot, name)))
    return values


def decode_xargs(args: Mapping[str, Any] | None, *, request_id: str) -> CallTag:
    """Read a tag back; missing ids default to the request's own. Raises ``ProtocolError``."""
    args = args or {}
    program_id = _text(args, KEY_PROGRAM_ID) or f"request:{request_id}"
    return CallTag(
        program_id=program_id,
        thread_id=_text(args, KEY_THREAD_ID) or "main",
        call_id=_text(args, KEY_CALL_ID) or request_id,
        parent_ids=_parents(args.get(KEY_PARENT_IDS, "")),
        snapshot=decode_snapshot(args),
    )


def decode_snapshot(args: Mapping[str, Any]) -> ProgramSnapshot:
    """The snapshot fields present in ``args`` (absent ones are 0)."""
    values = {name: _number(args.get(key), key) for name, key in SNAPSHOT_KEYS.items()}
    if not any(values.values()):
        return ZERO_SNAPSHOT
    return ProgramSnapshot(**values)


@dataclass(frozen=True, slots=True)
class NextCallHint:
    """What a call says about its program's next call (for KV retention on the engine).

    >>> decode_next_call(encode_next_call(NextCallHint(tool="search", away_s=2.5)))
    NextCallHint(tool='search', away_s=2.5)
    """

    tool: str | None = None
    """The tool run before the next call (the engine learns its duration)."""
    away_s: float | None = None
    """Expected seconds until the next call, overriding what the engine learnt."""

    @property
    def follows(self) -> bool:
        """Whether the sender says another call of the program follows this one."""
        return self.tool is not None or self.away_s is not None


def encode_next_call(hint: NextCallHint) -> dict[str, str]:
    """``hint`` as flat ``vllm_xargs`` strings (absent fields are left out)."""
    values: dict[str, str] = {}
    if hint.tool is not None:
        values[KEY_NEXT_TOOL] = hint.tool
    if hint.away_s is not None:
        values[KEY_AWAY_S] = repr(float(hint.away_s))
    return values


def decode_next_call(args: Mapping[str, Any] | None) -> NextCallHint:
    """The next-call hint in ``args`` (empty when absent). Raises ``ProtocolError``."""
    args = args or {}
    tool = _text(args, KEY_NEXT_TOOL) or None
    away = args.get(KEY_AWAY_S)
    return NextCallHint(tool, None if away is None or away == "" else _number(away, KEY_AWAY_S))


def _text(args: Mapping[str, Any], key: str) -> str:
    value = args.get(key)
    if value is None:
        return ""
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ProtocolError(f"{key} must be a string")
    return str(value).strip()


def _parents(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(p for p in (s.strip() for s in raw.split(",")) if p)
    if isinstance(raw, list | tuple):
        return tuple(str(p) for p in raw if str(p))
    raise ProtocolError(f"{KEY_PARENT_IDS} must be a comma-separated string")


def _number(raw: Any, key: str) -> float:
    if raw is None or raw == "":
        return 0.0
    if isinstance(raw, bool):
        raise ProtocolError(f"{key} must be a number, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise ProtocolError(f"{key} must be a number, got {raw!r}") from exc
    if value < 0 or math.isnan(value) or math.isinf(value):
        raise ProtocolError(f"{key} must be a finite number >= 0, got {raw!r}")
    return value
