"""The gateway's view of a prompt: an estimated token count and prefix block hashes.

The gateway does not tokenize (engines may use different tokenizers); it estimates tokens
from UTF-8 bytes, the usual four bytes per token, which is enough for routing and limits.
Engines report exact counts in their usage.
"""

from __future__ import annotations

import hashlib

BYTES_PER_TOKEN = 4
BLOCK_TOKENS = 16
"""Tokens per hashed block, as in vLLM's prefix cache."""
MAX_BLOCKS = 512
"""Only the first blocks are hashed: prefix sharing lives at the start of a prompt."""


def estimate_tokens(text: str) -> int:
    """Approximate token count of ``text`` (at least 1 for a non-empty text)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    return -(-size // BYTES_PER_TOKEN)


def block_hashes(text: str) -> tuple[int, ...]:
    """Chained hashes of the prompt's full blocks: equal prefixes give equal leading hashes."""
    data = text.encode("utf-8", "surrogatepass")
    step = BLOCK_TOKENS * BYTES_PER_TOKEN
    hashes: list[int] = []
    previous = b""
    for start in range(0, min(len(data) - step + 1, MAX_BLOCKS * step), step):
        digest = hashlib.blake2b(previous + data[start : start + step], digest_size=8).digest()
        hashes.append(int.from_bytes(digest, "big"))
        previous = digest
    return tuple(hashes)
