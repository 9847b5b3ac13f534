"""The engines' KV events into the balancer, and prompts hashed to match them.

Runs only when the balancer reads KV events (``Balancer.uses_kv_events``) and an engine
says where it publishes them (``EngineAdapter.kv_event_source``). Each such engine gets a
``KVEventSubscriber`` whose hashes reach ``Balancer.on_kv_event`` on the gateway's loop;
each model gets the engines' tokenizer, so a call's prompt is hashed the same way
(``token_block_hashes`` of its token ids, in the engine's block size).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from autellix_backend.engines.base import EngineAdapter, RequestKind
from autellix_backend.engines.kv_events import KVEventSubscriber, token_block_hashes
from autellix_backend.routing import Balancer
from autellix_backend.server.prompt_tokens import PromptTokenizer
from autellix_backend.server.prompts import MAX_BLOCKS

log = logging.getLogger("autellix.server.kv_feed")


class KVFeed:
    """Subscribers per engine and a tokenizer per model, for one balancer."""

    def __init__(self, balancer: Balancer, adapters: Sequence[EngineAdapter]) -> None:
        self.balancer = balancer
        self.subscribers: dict[str, KVEventSubscriber] = {}
        """By engine id."""
        self._adapters = list(adapters) if balancer.uses_kv_events else []
        self._by_model: dict[str, list[KVEventSubscriber]] = {}
        self._tokenizers: dict[str, PromptTokenizer] = {}

    async def start(self) -> None:
        """Subscribe to every engine that publishes, and load the models' tokenizers.

        An engine whose events cannot be read (a bad endpoint, pyzmq missing) is logged and
        left to routing by load; the service starts all the same.
        """
        loop = asyncio.get_running_loop()
        for adapter in self._adapters:
            source = adapter.kv_event_source()
            if source is None:
                continue
            listener = functools.partial(self.balancer.on_kv_event, adapter.engine_id)
            subscriber = KVEventSubscriber(
                adapter.engine_id, source, listener, loop.call_soon_threadsafe
            )
            try:
                subscriber.start()
                if adapter.model not in self._tokenizers:
                    tokenizer = await asyncio.to_thread(PromptTokenizer.load, source)
                    self._tokenizers[adapter.model] = tokenizer
            except Exception as exc:
                subscriber.stop()
                log.error("no KV events from engine %s: %s", adapter.engine_id, exc)
                continue
            self.subscribers[adapter.engine_id] = subscriber
            self._by_model.setdefault(adapter.model, []).append(subscriber)
        silent = sorted({a.model for a in self._adapters} - set(self._by_model))
        if silent:
            log.warning(
                "the balancer routes by KV events, but no engine of model(s) %s publishes them "
                "(engine option kv_events or kv_events_endpoint, docs/engines.md): their calls "
                "are routed by load",
                ", ".join(silent),
            )

    def stop(self) -> None:
        for subscriber in self.subscribers.values():
            subscriber.stop()

    def clear(self, engine_id: str) -> None:
        """Forget an engine's blocks (it left rotation; a restart starts with an empty cache)."""
        subscriber = self.subscribers.get(engine_id)
        if subscriber is not None:
            subscriber.clear()

    def block_hashes(
        self, model: str, kind: RequestKind, body: Mapping[str, Any]
    ) -> tuple[int, ...] | None:
        """The prompt's leading block hashes as the model's engines report them; None when
        none of them publishes KV events; empty before the block size is known or when the
        prompt cannot be tokenized (the call is then routed by load)."""
        subscribers = self._by_model.get(model)
        if not subscribers:
            return None
        block_size = next((s.block_size for s in subscribers if s.block_size), None)
        if block_size is None:
            return ()
        try:
            token_ids = self._tokenizers[model].token_ids(kind, body)
        except Exception as exc:  # a template error must not fail the call
            log.debug("prompt not tokenized for routing: %s", exc)
            return ()
        return tuple(token_block_hashes(token_ids, block_size, max_blocks=MAX_BLOCKS))
