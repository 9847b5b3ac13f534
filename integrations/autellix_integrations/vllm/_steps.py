"""Per-step records of what the engine ran and how long it took (for calibration).

With the ``step_log`` setting (``AUTELLIX_STEP_LOG=path``) the plugin appends one JSON line
per engine step; ``autellix calibrate`` fits the simulator's cost model to them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import IO


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One engine step."""

    schedule_s: float
    """Time spent in ``schedule()`` (the core's decision plus vLLM's bookkeeping)."""
    model_s: float
    """From the end of ``schedule()`` to the start of ``update_from_output()``: the forward."""
    prefill_chunks: list[tuple[int, int]] = field(default_factory=list)
    """(new tokens, tokens already cached before them) of every prefill or recompute chunk."""
    num_decode_seqs: int = 0
    num_decode_context_tokens: int = 0
    """KV tokens the decoding calls attended to."""
    num_sampled: int = 0
    """Calls that produced a token in the step."""
    update_s: float = 0.0
    """Time spent in ``update_from_output()`` (output processing, the previous step's)."""
    loop_s: float = 0.0
    """Engine-loop time between the previous ``update_from_output()`` and this ``schedule()``
    while requests were pending (input and output IPC); 0 after an idle wait."""

    @property
    def num_tokens(self) -> int:
        return sum(n for n, _ in self.prefill_chunks) + self.num_decode_seqs

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, line: str) -> StepRecord:
        data = json.loads(line)
        data["prefill_chunks"] = [tuple(c) for c in data.get("prefill_chunks", [])]
        return cls(**data)


class StepLog:
    """Appends ``StepRecord`` lines to a file (line-buffered, so a crash loses little)."""

    def __init__(self, path: str) -> None:
        self._file: IO[str] = open(path, "a", buffering=1)  # noqa: SIM115

    def write(self, record: StepRecord) -> None:
        self._file.write(record.to_json() + "\n")

    def close(self) -> None:
        self._file.close()
