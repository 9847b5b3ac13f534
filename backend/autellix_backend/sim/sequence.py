"""The simulated engine's view of one call: its token stream and the KV it holds."""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from enum import IntEnum

from autellix_backend.sim.hashing import block_hashes
from autellix_backend.sim.kv_cache import BlockTable


class SeqState(IntEnum):
    """Where a call's KV cache is."""

    UNCOMPUTED = 0
    """No KV on the device: never admitted, or dropped by a recompute preemption."""
    RESIDENT = 1
    """Its computed tokens' KV is on the device."""
    SWAPPED = 2
    """Its KV was copied to host memory by a swap preemption."""


@dataclass(slots=True, eq=False)
class SimSequence:
    """A call's token stream (prompt, then generated tokens) and its progress through it.

    A step computes some of the stream's pending tokens; when every known token is computed,
    the step samples a new one (so the step that finishes a prefill yields the first output
    token, as in vLLM). The call is done when it has generated ``max_output`` tokens.
    """

    call_id: str
    program_id: str
    segments: list[tuple[int, int]]
    """The prompt as ``(segment key id, tokens)`` runs."""
    prompt_tokens: int
    """Prompt length in the stream (at least 1: an empty prompt still feeds one token)."""
    reported_prompt_tokens: int
    """Prompt length as the caller gave it."""
    max_output: int
    output_key: int
    """Key id of the generated tokens, so later calls can hit them in the prefix cache."""
    arrival_time: float
    table: BlockTable = field(default_factory=BlockTable)
    hashes: list[int] = field(default_factory=list)
    """Hashes of the stream's full blocks computed so far."""
    state: SeqState = SeqState.UNCOMPUTED
    num_computed: int = 0
    """Stream tokens whose KV is computed."""
    num_generated: int = 0
    num_registered: int = 0
    """Full blocks already published to the prefix cache."""
    num_swapped_blocks: int = 0
    num_dropped_tokens: int = 0
    """Computed tokens lost to a recompute preemption, not yet recomputed."""
    cached_tokens: int = 0
    """Prefix-cache hit at first admission."""
    admitted: bool = False
    first_token_time: float | None = None
    _stream: list[tuple[int, int]] = field(default_factory=list, repr=False)
    """The prompt segments, then the generated tokens as one segment."""
    _starts: list[int] = field(default_factory=list, repr=False)
    """Stream offset where each segment of ``_stream`` starts."""

    def __post_init__(self) -> None:
        self._stream = [*self.segments, (self.output_key, 0)]
        self._starts = list(itertools.accumulate((n for _, n in self._stream), initial=0))[:-1]

    @property
    def stream_len(self) -> int:
        return self.prompt_tokens + self.num_generated

    @property
    def num_pending(self) -> int:
        return self.prompt_tokens + self.num_generated - self.num_computed

    @property
    def is_decoding(self) -> bool:
        """True when the next step computes just the last generated token."""
        generated = self.num_generated
        return generated > 0 and self.num_computed == self.prompt_tokens + generated - 1

    @property
    def is_done(self) -> bool:
        return self.num_generated >= self.max_output and self.num_computed >= self.stream_len - (
            1 if self.num_generated else 0
        )

    @property
    def stream(self) -> list[tuple[int, int]]:
        """The token stream as segments: the prompt's, then the generated tokens."""
        stream = list(self._stream)
        stream[-1] = (self.output_key, self.num_generated)
        return stream

    def ensure_hashes(self, num_tokens: int, block_size: int) -> list[int]:
        """Hashes of every full block among the first ``num_tokens`` stream tokens."""
        have = len(self.hashes)
        if num_tokens // block_size > have:
            stream = self._stream
            stream[-1] = (self.output_key, self.num_generated)
            first = bisect.bisect_right(self._starts, have * block_size) - 1
            self.hashes += block_hashes(
                stream,
                block_size,
                start_block=have,
                parent=self.hashes[-1] if have else 0,
                num_tokens=num_tokens,
                first_segment=first,
                first_offset=self._starts[first],
            )
        return self.hashes
