"""A cost model linear in each term, loadable from a JSON file (how calibration plugs in).

JSON schema (every key but ``name`` optional, unknown keys rejected, times in seconds)::

    {
      "name": "cpu-tiny",                  # registry name, used in reports
      "kind": "linear",                    # the only kind a file can hold
      "description": "free text",
      "kv_capacity_tokens": 131072,        # KV cache size in tokens
      "step_base_s": 0.0,                  # fixed time of every step
      "per_token_s": 0.0,                  # per batched token (prefill and decode), linear layers
      "per_prefill_pair_s": 0.0,           # per (new token x attended token) pair in prefill
      "per_decode_context_token_s": 0.0,   # per KV token read by decode attention
      "per_sampled_seq_s": 0.0,            # per call that samples a token in the step
      "schedule_base_s": 0.0,              # per scheduler invocation
      "schedule_per_seq_s": 0.0,           # per scheduled call, per scheduler invocation
      "swap_per_block_s": 0.0,             # per KV block copied to or from host memory
      "swap_per_transfer_s": 0.0           # per transfer (launch cost)
    }

The step time is ``step_base_s + per_token_s * tokens + per_prefill_pair_s * sum(n * (ctx + (n + 1)
/ 2)) + per_decode_context_token_s * decode_ctx + per_sampled_seq_s * sampled`` plus the
schedule terms when the scheduler ran.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from autellix_backend.sim.profiles.base import CostModel, InvalidProfileError


@dataclass(frozen=True, slots=True)
class LinearCostModel(CostModel):
    """Every cost term a linear function of its size."""

    name: str
    kv_capacity_tokens: int = 1 << 20
    step_base_s: float = 0.0
    per_token_s: float = 0.0
    per_prefill_pair_s: float = 0.0
    per_decode_context_token_s: float = 0.0
    per_sampled_seq_s: float = 0.0
    schedule_base_s: float = 0.0
    schedule_per_seq_s: float = 0.0
    swap_per_block_s: float = 0.0
    swap_per_transfer_s: float = 0.0
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidProfileError("a profile needs a non-empty name")
        if not isinstance(self.kv_capacity_tokens, int) or self.kv_capacity_tokens < 1:
            raise InvalidProfileError("kv_capacity_tokens must be a positive integer")
        for f in fields(self):
            if f.name.endswith("_s"):
                value = getattr(self, f.name)
                if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                    raise InvalidProfileError(f"{f.name} must be a finite number >= 0")

    def linear_time(self, num_tokens: int) -> float:
        return self.step_base_s + self.per_token_s * num_tokens

    def prefill_attention_time(self, num_tokens: int, num_context_tokens: int) -> float:
        return self.per_prefill_pair_s * num_tokens * (num_context_tokens + (num_tokens + 1) / 2)

    def decode_attention_time(self, num_seqs: int, num_context_tokens: int) -> float:
        return self.per_decode_context_token_s * num_context_tokens

    def sampling_time(self, num_seqs: int) -> float:
        return self.per_sampled_seq_s * num_seqs

    def schedule_overhead(self, num_seqs: int) -> float:
        return self.schedule_base_s + self.schedule_per_seq_s * num_seqs

    def swap_block_time(self) -> float:
        return self.swap_per_block_s

    def swap_transfer_time(self) -> float:
        return self.swap_per_transfer_s

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearCostModel:
        """Build from the JSON schema above; raises ``InvalidProfileError``."""
        if not isinstance(data, dict):
            raise InvalidProfileError("a profile must be a JSON object")
        values = dict(data)
        kind = values.pop("kind", "linear")
        values.pop("schema", None)
        if kind != "linear":
            raise InvalidProfileError(f"unsupported profile kind {kind!r}; expected 'linear'")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidProfileError(f"unknown profile keys: {', '.join(unknown)}")
        if "name" not in values:
            raise InvalidProfileError("a profile needs a 'name'")
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidProfileError(str(exc)) from None

    @classmethod
    def from_json(cls, path: str | Path) -> LinearCostModel:
        """Load a profile file; raises ``InvalidProfileError`` for unreadable or bad content."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidProfileError(f"cannot read profile {str(path)!r}: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "linear", **asdict(self)}
