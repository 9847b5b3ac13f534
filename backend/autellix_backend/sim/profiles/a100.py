"""Llama-3-8B on one A100-80GB: measured linear layers, modelled attention.

The non-attention layers come from Vidur's A100 measurements (``data/vidur-a100-llama3-8b-
mlp.csv``, MIT): the median time of each operation per layer at each batched-token count,
summed over the layer, times 32 layers, plus the embedding. Attention is not in that file; it
is modelled from the hardware: decode attention is memory bound (it reads every context token's
K and V once), prefill attention is compute bound (causal QK^T and AV FLOPs). The output head
is modelled the same way. CPU overhead and swap constants are estimates; see docs/simulator.md.
"""

from __future__ import annotations

import bisect
import csv
import io
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from autellix_backend.sim.profiles.base import CostModel

_CSV_NAME = "vidur-a100-llama3-8b-mlp.csv"
_PER_LAYER_OPS = (
    ("input_layernorm", 1),
    ("attn_pre_proj", 1),
    ("attn_rope", 1),
    ("attn_post_proj", 1),
    ("post_attention_layernorm", 1),
    ("mlp_up_proj", 1),
    ("mlp_act", 1),
    ("mlp_down_proj", 1),
    ("add", 2),  # two residual additions per decoder layer
)


@dataclass(frozen=True, slots=True)
class LlamaShape:
    """Model dimensions that the modelled terms need (Llama-3-8B defaults)."""

    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 8
    head_dim: int = 128
    hidden_size: int = 4096
    vocab_size: int = 128256
    num_params: float = 8.03e9
    bytes_per_value: int = 2

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V for every layer: 2 * 8 * 128 * 2 bytes * 32 layers = 128 KiB."""
        return 2 * self.num_kv_heads * self.head_dim * self.bytes_per_value * self.num_layers


@dataclass(frozen=True, slots=True)
class A100Hardware:
    """Device constants (A100-80GB SXM) and the efficiency assumed for each."""

    memory_bandwidth: float = 2.039e12
    """HBM2e bytes per second (datasheet)."""
    bandwidth_efficiency: float = 0.8
    """Fraction of peak bandwidth attention kernels reach (assumption)."""
    peak_flops: float = 312e12
    """Dense BF16 tensor-core FLOP/s (datasheet)."""
    flops_efficiency: float = 0.5
    """Fraction of peak FLOP/s FlashAttention-style prefill reaches (assumption)."""
    memory_bytes: float = 80 * 2**30
    gpu_memory_utilization: float = 0.9
    """vLLM's default share of device memory."""
    activation_reserve_bytes: float = 2 * 2**30
    """Memory kept for activations and CUDA graphs (assumption)."""
    pcie_bandwidth: float = 25e9
    """Effective host-device copy bandwidth, PCIe 4.0 x16 (assumption)."""
    copy_launch_s: float = 5e-6
    """Fixed cost of one async copy launch (assumption)."""
    kernel_launch_s: float = 10e-6
    """Fixed cost of one attention kernel per layer (assumption)."""
    schedule_base_s: float = 0.5e-3
    """Scheduler and input preparation per invocation (assumption)."""
    schedule_per_seq_s: float = 15e-6
    """Per scheduled call, per scheduler invocation (assumption)."""


class A100Llama3Model(CostModel):
    """Cost model of Llama-3-8B on one A100-80GB (see the module docstring)."""

    def __init__(
        self,
        *,
        name: str = "a100-llama3-8b",
        shape: LlamaShape | None = None,
        hardware: A100Hardware | None = None,
        block_size: int = 16,
    ) -> None:
        self.name = name
        self.shape = shape or LlamaShape()
        self.hw = hardware or A100Hardware()
        self._tokens, self._linear_s = _linear_layer_table(self.shape.num_layers)
        self._bandwidth = self.hw.memory_bandwidth * self.hw.bandwidth_efficiency
        self._flops = self.hw.peak_flops * self.hw.flops_efficiency
        weights = self.shape.num_params * self.shape.bytes_per_value
        usable = self.hw.memory_bytes * self.hw.gpu_memory_utilization
        kv_bytes = usable - weights - self.hw.activation_reserve_bytes
        self.kv_capacity_tokens = int(kv_bytes // self.shape.kv_bytes_per_token)
        self._block_bytes = block_size * self.shape.kv_bytes_per_token
        self._attn_launch = self.shape.num_layers * self.hw.kernel_launch_s
        self._head_bytes = self.shape.hidden_size * self.shape.vocab_size * 2
        self._head_flops_per_seq = 2.0 * self.shape.hidden_size * self.shape.vocab_size

    def linear_time(self, num_tokens: int) -> float:
        """Interpolated measured time of all non-attention layers for ``num_tokens``."""
        tokens, times = self._tokens, self._linear_s
        if num_tokens <= tokens[0]:
            return times[0]
        i = bisect.bisect_left(tokens, num_tokens)
        if i == len(tokens):
            i -= 1  # extrapolate along the last segment
        x0, x1, y0, y1 = tokens[i - 1], tokens[i], times[i - 1], times[i]
        return y0 + (y1 - y0) * (num_tokens - x0) / (x1 - x0)

    def prefill_attention_time(self, num_tokens: int, num_context_tokens: int) -> float:
        """Causal attention FLOPs (QK^T and AV) plus reading the cached context's KV."""
        s = self.shape
        pairs = num_tokens * (num_context_tokens + (num_tokens + 1) / 2)
        flops = 4.0 * s.num_heads * s.head_dim * pairs * s.num_layers
        read = num_context_tokens * s.kv_bytes_per_token / self._bandwidth
        return flops / self._flops + read + self._attn_launch

    def decode_attention_time(self, num_seqs: int, num_context_tokens: int) -> float:
        """Memory bound: every context token's K and V read once per step."""
        read = num_context_tokens * self.shape.kv_bytes_per_token / self._bandwidth
        return read + self._attn_launch

    def sampling_time(self, num_seqs: int) -> float:
        """Output head (4096 x 128256): weight read or matmul FLOPs, whichever is longer."""
        if num_seqs <= 0:
            return 0.0
        read = self._head_bytes / self._bandwidth
        compute = num_seqs * self._head_flops_per_seq / self._flops
        return max(read, compute)

    def schedule_overhead(self, num_seqs: int) -> float:
        return self.hw.schedule_base_s + self.hw.schedule_per_seq_s * num_seqs

    def swap_block_time(self) -> float:
        return self._block_bytes / self.hw.pcie_bandwidth

    def swap_transfer_time(self) -> float:
        """One copy launch for K and V of every layer."""
        return 2 * self.shape.num_layers * self.hw.copy_launch_s


@cache
def _linear_layer_table(num_layers: int) -> tuple[list[int], list[float]]:
    """Sorted token counts and seconds for all non-attention layers (TP 1, medians)."""
    text = (files("autellix_backend.sim.profiles.data") / _CSV_NAME).read_text()
    sums: dict[int, list[float]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        if row["num_tensor_parallel_workers"] != "1":
            continue
        per_layer = sum(
            count * float(row[f"time_stats.{op}.median"]) for op, count in _PER_LAYER_OPS
        )
        total_ms = num_layers * per_layer + float(row["time_stats.emb.median"])
        sums.setdefault(int(row["num_tokens"]), []).append(total_ms)
    tokens = sorted(sums)
    return tokens, [sum(sums[t]) / len(sums[t]) / 1000.0 for t in tokens]
