"""Settings of the simulated engine and of a simulation run."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from autellix_backend.core import SchedulerConfig


class PreemptionMode(StrEnum):
    """What happens to a preempted call's KV cache."""

    RECOMPUTE = "recompute"
    """Drop the KV blocks; the call re-prefills its prompt and output when it resumes."""
    SWAP = "swap"
    """Copy the KV blocks to host memory and back when the call resumes (the paper's choice)."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Settings of one simulated continuously batching engine (vLLM-like)."""

    profile: str = "a100-llama3-8b"
    """Cost-model profile: a registered name or the path of a JSON profile file."""
    max_num_seqs: int = 256
    """Most calls in one batch (vLLM ``max_num_seqs``)."""
    max_num_batched_tokens: int = 2048
    """Token budget of one step: prefill chunk tokens plus one token per decoding call."""
    block_size: int = 16
    """Tokens per KV-cache block."""
    num_kv_blocks: int | None = None
    """GPU KV-cache blocks; None derives them from the profile's KV memory."""
    num_cpu_blocks: int | None = None
    """Host blocks available for swapped-out calls; None means unlimited."""
    enable_prefix_caching: bool = True
    """Reuse cached KV blocks of identical prompt prefixes (hash-chained blocks, LRU eviction)."""
    enable_chunked_prefill: bool = True
    """Split long prefills across steps to fit the token budget."""
    preemption_mode: PreemptionMode = PreemptionMode.SWAP
    """Recompute or swap the KV cache of preempted calls."""
    swap_batched: bool = True
    """Swap all of a call's blocks in one transfer (the paper) instead of one per block."""
    schedule_every_n_steps: int = 1
    """Multi-step scheduling: run the scheduler once every N steps; others continue the batch."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "preemption_mode", PreemptionMode(self.preemption_mode))
        if self.max_num_seqs < 1:
            raise ValueError("max_num_seqs must be at least 1")
        if self.max_num_batched_tokens < 1:
            raise ValueError("max_num_batched_tokens must be at least 1")
        if self.block_size < 1:
            raise ValueError("block_size must be at least 1")
        if self.num_kv_blocks is not None and self.num_kv_blocks < 1:
            raise ValueError("num_kv_blocks must be at least 1 or None")
        if self.num_cpu_blocks is not None and self.num_cpu_blocks < 0:
            raise ValueError("num_cpu_blocks must be >= 0 or None")
        if self.schedule_every_n_steps < 1:
            raise ValueError("schedule_every_n_steps must be at least 1")


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Settings of a simulation run: the scheduler, the engines and the balancer."""

    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    """Scheduling-core settings, shared by every engine."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Settings of each engine (all engines are alike)."""
    num_engines: int = 1
    """Number of engine replicas; they share one global process table."""
    balancer: str = "locality"
    """Balancer across engines: ``round_robin``, ``least_used``, ``locality``, ``prefix_aware``,
    ``cache_aware``."""
    locality_threshold: int = 2048
    """Locality balancer: calls with more prompt tokens than this go to their program's engine."""
    seed: int = 0
    """Seed of every random choice the run makes (the run is deterministic for a seed)."""

    def __post_init__(self) -> None:
        if self.num_engines < 1:
            raise ValueError("num_engines must be at least 1")
        if self.locality_threshold < 0:
            raise ValueError("locality_threshold must be >= 0")
