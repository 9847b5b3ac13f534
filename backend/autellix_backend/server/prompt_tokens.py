"""A call's prompt as the token ids its vLLM engine will see, for routing by KV events.

vLLM's OpenAI layer renders a chat with the tokenizer's chat template (the generation prompt
added, the request's tools passed in) and tokenizes the text without special tokens; a text
completion is encoded with them. Doing the same here gives the blocks the engine will hash,
so the gateway can look them up in the mirror of its KV events. A template vLLM renders
differently (multimodal parts, a server-side template the gateway is not told of) only
costs cache hits, never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from autellix_backend.engines.base import RequestKind
from autellix_backend.engines.kv_events import KV_EVENTS_MISSING, KVEventSource


class PromptTokenizer:
    """Tokenizes request bodies as a vLLM engine's OpenAI layer does."""

    def __init__(self, tokenizer: Any, *, chat_template: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.chat_template = chat_template

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
        special = bool(body.get("add_special_tokens", False))
        return list(self.tokenizer.encode(text, add_special_tokens=special))


def _flat(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message whose list of content parts is its text parts joined by newlines (vLLM's
    "string" content format)."""
    content = message.get("content")
    if not isinstance(content, Sequence) or isinstance(content, str):
        return dict(message)
    texts = [p.get("text") for p in content if isinstance(p, Mapping)]
    return {**message, "content": "\n".join(t for t in texts if isinstance(t, str))}
