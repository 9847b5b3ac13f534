"""A call's prompt as the token ids its vLLM engine will see, for routing by KV events.

vLLM's OpenAI layer renders a chat with the tokenizer's chat template (the generation prompt
added, the request's tools passed in) and tokenizes the text without special tokens; a text
completion is encoded with them. Doing the same here gives the blocks the engine will hash,
so the gateway can look them up in the mirror of its KV events. A template vLLM renders
differently (multimodal parts, a server-side template the gateway is not told of) only
costs cache hits, never a wrong answer.

Encoding is the cost (issue 14: the call path). An agent's prompts repeat the same long
pieces (tool docs, earlier turns) between the chat template's special tokens, and a fast
tokenizer encodes the text between added tokens piece by piece, so pieces are encoded once
and cached (``PieceCache``). The first calls are checked against a whole encode; a
tokenizer whose pieces do not add up (added tokens that strip spaces, a prefix added only
to the first piece) is then encoded whole.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autellix_backend.engines.base import RequestKind
from autellix_backend.engines.kv_events import KV_EVENTS_MISSING, KVEventSource

log = logging.getLogger("autellix.server.prompt_tokens")

CHECKED_CALLS = 16
"""Calls whose piecewise encoding is compared with a whole encode before it is trusted."""
MIN_CACHED_CHARS = 256
"""Shorter pieces are encoded each time (cheap, and rarely repeated)."""


class PieceCache:
    """Token ids of text pieces, least recently used first out, bounded in characters."""

    def __init__(self, max_chars: int = 8_000_000) -> None:
        self.max_chars = max_chars
        self.num_chars = 0
        self._ids: OrderedDict[str, list[int]] = OrderedDict()

    def get(self, piece: str) -> list[int] | None:
        ids = self._ids.get(piece)
        if ids is not None:
            self._ids.move_to_end(piece)
        return ids

    def put(self, piece: str, ids: list[int]) -> None:
        if len(piece) > self.max_chars or piece in self._ids:
            return
        self._ids[piece] = ids
        self.num_chars += len(piece)
        while self.num_chars > self.max_chars:
            old, _ = self._ids.popitem(last=False)
            self.num_chars -= len(old)


class PromptTokenizer:
    """Tokenizes request bodies as a vLLM engine's OpenAI layer does."""

    def __init__(self, tokenizer: Any, *, chat_template: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.pieces = PieceCache()
        self._added, self._split = _added_tokens(tokenizer)
        self._checks_left = CHECKED_CALLS

    @classmethod
    def load(cls, source: KVEventSource) -> PromptTokenizer:
        """The engine's tokenizer (``transformers.AutoTokenizer``; reads files: call it off
        the event loop)."""
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise RuntimeError(KV_EVENTS_MISSING) from None
        tokenizer = AutoTokenizer.from_pretrained(source.tokenizer)
        template = source.chat_template
        if template is not None and Path(template).is_file():  # vLLM takes a path or the text
            template = Path(template).read_text()
        return cls(tokenizer, chat_template=template)

    def token_ids(self, kind: RequestKind, body: Mapping[str, Any]) -> list[int]:
        """The prompt's token ids; a batch of completion prompts gives its first one."""
        if kind is RequestKind.CHAT:
            return self._chat(body)
        prompt = body.get("prompt")
        if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
            prompt = prompt[0]
        if isinstance(prompt, list):
            return list(prompt)
        special = bool(body.get("add_special_tokens", True))
        return list(self.tokenizer.encode(str(prompt), add_special_tokens=special))

    def _chat(self, body: Mapping[str, Any]) -> list[int]:
        kwargs = dict(body.get("chat_template_kwargs") or {})
        text = self.tokenizer.apply_chat_template(
            [_flat(m) for m in body.get("messages") or ()],
            tools=body.get("tools") or None,
            chat_template=body.get("chat_template") or self.chat_template,
            add_generation_prompt=bool(body.get("add_generation_prompt", True)),
            continue_final_message=bool(body.get("continue_final_message", False)),
            tokenize=False,
            **kwargs,
        )
        if body.get("add_special_tokens", False) or self._split is None:
            special = bool(body.get("add_special_tokens", False))
            return list(self.tokenizer.encode(text, add_special_tokens=special))
        return self._piecewise(text)

    def _piecewise(self, text: str) -> list[int]:
        """``text``'s token ids, piece by piece between added tokens; checked on the first
        calls against a whole encode, and given up if they ever differ."""
        assert self._split is not None
        ids: list[int] = []
        for i, piece in enumerate(self._split.split(text)):
            if i % 2:
                ids.append(self._added[piece])
            elif piece:
                ids.extend(self._encode_piece(piece))
        if self._checks_left > 0:
            self._checks_left -= 1
            whole = list(self.tokenizer.encode(text, add_special_tokens=False))
            if whole != ids:
                log.warning("the tokenizer's pieces do not add up; prompts are encoded whole")
                self._split = None
                return whole
        return ids

    def _encode_piece(self, piece: str) -> list[int]:
        if len(piece) < MIN_CACHED_CHARS:
            return list(
                self.tokenizer.backend_tokenizer.encode(piece, add_special_tokens=False).ids
            )
        ids = self.pieces.get(piece)
        if ids is None:
            ids = list(self.tokenizer.backend_tokenizer.encode(piece, add_special_tokens=False).ids)
            self.pieces.put(piece, ids)
        return ids


def _added_tokens(tokenizer: Any) -> tuple[dict[str, int], re.Pattern[str] | None]:
    """The tokenizer's added tokens by text, and a pattern that splits text around them
    (longest first, as the tokenizer matches them); no pattern when the pieces could not be
    encoded apart: a slow tokenizer, or added tokens that strip spaces or match normalized."""
    added = getattr(tokenizer, "added_tokens_decoder", None)
    if not getattr(tokenizer, "is_fast", False) or not isinstance(added, Mapping) or not added:
        return {}, None
    by_text: dict[str, int] = {}
    for token_id, token in added.items():
        if token.lstrip or token.rstrip or token.single_word or token.normalized:
            return {}, None
        by_text[str(token.content)] = int(token_id)
    names = sorted(by_text, key=len, reverse=True)
    return by_text, re.compile("(" + "|".join(re.escape(n) for n in names) + ")")


def _flat(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message whose list of content parts is its text parts joined by newlines (vLLM's
    "string" content format)."""
    content = message.get("content")
    if not isinstance(content, Sequence) or isinstance(content, str):
        return dict(message)
    texts = [p.get("text") for p in content if isinstance(p, Mapping)]
    return {**message, "content": "\n".join(t for t in texts if isinstance(t, str))}
