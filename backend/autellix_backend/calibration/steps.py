"""Step samples read from the plugin's step log (one JSON object per line).

The plugin (``autellix_integrations.vllm``) writes the log; this module reads it without
importing vLLM, so fitting and its tests need no engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StepSample:
    """What one engine step ran and how long it took."""

    model_s: float
    """Forward time: end of ``schedule()`` to start of ``update_from_output()``."""
    overhead_s: float
    """Scheduler, output-processing and engine-loop time around it."""
    prefill_chunks: tuple[tuple[int, int], ...]
    """(new tokens, cached tokens before them) of each prefill chunk."""
    num_decode_seqs: int
    num_decode_context_tokens: int
    num_sampled: int

    @property
    def num_tokens(self) -> int:
        return sum(n for n, _ in self.prefill_chunks) + self.num_decode_seqs

    @property
    def num_seqs(self) -> int:
        return len(self.prefill_chunks) + self.num_decode_seqs

    @property
    def prefill_pairs(self) -> float:
        """Sum of new x attended token pairs (the simulator's prefill attention term)."""
        return sum(n * (ctx + (n + 1) / 2) for n, ctx in self.prefill_chunks)


def read_step_log(path: str | Path) -> list[StepSample]:
    """Parse a step log; malformed lines raise ``ValueError`` naming the line."""
    samples: list[StepSample] = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            samples.append(
                StepSample(
                    model_s=float(data["model_s"]),
                    overhead_s=float(data.get("schedule_s", 0.0))
                    + float(data.get("update_s", 0.0))
                    + float(data.get("loop_s", 0.0)),
                    prefill_chunks=tuple((int(n), int(c)) for n, c in data["prefill_chunks"]),
                    num_decode_seqs=int(data["num_decode_seqs"]),
                    num_decode_context_tokens=int(data["num_decode_context_tokens"]),
                    num_sampled=int(data["num_sampled"]),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}:{number}: not a step record ({exc})") from None
    return samples
