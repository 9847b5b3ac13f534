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

from autellix_backend.spec import PromptSegment


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
    first_segment: int = 0,
    first_offset: int = 0,
) -> list[int]:
    """Hashes of the full blocks of a stream, from block ``start_block`` on.

    Args:
        segments: ``(key id, tokens)`` runs that make up the stream, in order.
        block_size: tokens per block.
        start_block: first block to hash (earlier ones are already known).
        parent: hash of block ``start_block - 1`` (0 for the first block).
        num_tokens: hash only blocks inside the first ``num_tokens`` tokens (default: all).
        first_segment: index of a segment that starts at or before block ``start_block``.
        first_offset: stream offset where ``segments[first_segment]`` starts.
    """
    total = first_offset + sum(n for _, n in segments[first_segment:])
    if num_tokens is not None and num_tokens < total:
        total = num_tokens
    end_block = total // block_size
    hashes: list[int] = []
    block_start = start_block * block_size
    i, offset = first_segment, first_offset
    n_segments = len(segments)
    while i < n_segments and offset + segments[i][1] <= block_start:
        offset += segments[i][1]
        i += 1
    for _ in range(start_block, end_block):
        block_end = block_start + block_size
        pieces: list[int] = [parent]
        j, seg_start = i, offset
        while seg_start < block_end and j < n_segments:
            key, length = segments[j]
            seg_end = seg_start + length
            lo = block_start - seg_start if block_start > seg_start else 0
            hi = (block_end if block_end < seg_end else seg_end) - seg_start
            pieces += (key, lo, hi)
            seg_start = seg_end
            j += 1
        while i < n_segments and offset + segments[i][1] <= block_end:
            offset += segments[i][1]
            i += 1
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
