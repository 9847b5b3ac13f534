"""OpenAI request fields -> vLLM ``SamplingParams`` keyword arguments (validated)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_FLOATS = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "repetition_penalty")
_INTS = ("top_k", "seed", "min_tokens")


def sampling_options(body: Mapping[str, Any], default_max_tokens: int) -> dict[str, Any]:
    """The sampling fields of ``body`` vLLM understands; raises ``ValueError`` on bad types."""
    options: dict[str, Any] = {"max_tokens": _max_tokens(body, default_max_tokens)}
    for name in _FLOATS:
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number")
            options[name] = float(value)
    for name in _INTS:
        value = body.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer")
            options[name] = value
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise ValueError("stop must be a string or a list of strings")
        options["stop"] = stop
    if body.get("ignore_eos") is not None:
        options["ignore_eos"] = bool(body["ignore_eos"])
    n = body.get("n")
    if n not in (None, 1):
        raise ValueError("only n=1 is supported")
    return options


def _max_tokens(body: Mapping[str, Any], default: int) -> int:
    value = body.get("max_tokens")
    if value is None:
        value = body.get("max_completion_tokens")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {value!r}")
    return value
