"""Chained hashes of full KV blocks over a token stream described by content segments.

A block's hash covers its own content (which segments, which token ranges) and the hash of
the block before it, so equal hashes mean equal prefixes: the prefix cache and cache-aware
routers match prompts block by block. Hashes are stable across processes (segment keys are
hashed with BLAKE2b once; the chain hashes tuples of ints).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

from autellix_backend.workloads.spec import PromptSegment


@lru_cache(maxsize=1 << 16)
def key_id(key: str) -> int:
    """A stable 64-bit integer for a segment key."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")


def block_hashes(
    segments: Sequence[tuple[int, int]],
    block_size: int,
    *,
    start_block: int = 0,
    parent: int = 0,
    num_tokens: int | None = None,
) -> list[int]:
    """Hashes of the full blocks of a stream, from block ``start_block`` on.

    Args:
        segments: ``(key id, tokens)`` runs that make up the stream, in order.
        block_size: tokens per block.
        start_block: first block to hash (earlier ones are already known).
        parent: hash of block ``start_block - 1`` (0 for the first block).
        num_tokens: hash only blocks inside the first ``num_tokens`` tokens (default: all).
    """
    total = sum(n for _, n in segments)
    if num_tokens is not None:
        total = min(total, num_tokens)
    end_block = total // block_size
    hashes: list[int] = []
    if start_block >= end_block:
        return hashes
    block_start = start_block * block_size
    seg_index = 0
    seg_offset = 0  # stream offset of the segment at seg_index
    while seg_index < len(segments) and seg_offset + segments[seg_index][1] <= block_start:
        seg_offset += segments[seg_index][1]
        seg_index += 1
    for _ in range(start_block, end_block):
        block_end = block_start + block_size
        pieces: list[int] = [parent]
        i, offset = seg_index, seg_offset
        while offset < block_end:
            key, length = segments[i]
            lo = max(block_start, offset) - offset
            hi = min(block_end, offset + length) - offset
            pieces += (key, lo, hi)
            if offset + length > block_end:
                break
            offset += length
            i += 1
        while seg_index < len(segments) and seg_offset + segments[seg_index][1] <= block_end:
            seg_offset += segments[seg_index][1]
            seg_index += 1
        parent = hash(tuple(pieces))
        hashes.append(parent)
        block_start = block_end
    return hashes


def prompt_segments(prompt: Sequence[PromptSegment]) -> list[tuple[int, int]]:
    """``(key id, tokens)`` runs of a prompt, empty segments dropped."""
    return [(key_id(s.key), s.num_tokens) for s in prompt if s.num_tokens > 0]


def prompt_block_hashes(prompt: Sequence[PromptSegment], block_size: int) -> tuple[int, ...]:
    """Hashes of the full blocks of a prompt (what a cache-aware router matches on)."""
    return tuple(block_hashes(prompt_segments(prompt), block_size))
