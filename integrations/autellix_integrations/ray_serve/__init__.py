"""Autellix for Ray Serve (LLM) users: a request router with Autellix's locality rule.

>>> from ray.serve.config import RequestRouterConfig  # doctest: +SKIP
>>> RequestRouterConfig(request_router_class=AutellixRequestRouter)  # doctest: +SKIP

See docs/deploy.md ("Ray Serve LLM") for the whole recipe and what this mode gives up.
"""

from __future__ import annotations

from typing import Any

from autellix_integrations.ray_serve._router import AutellixRequestRouter, request_facts

SCHEDULER_CLS = "autellix_integrations.vllm.AutellixScheduler"


def engine_kwargs(policy: str = "plas", **settings: Any) -> dict[str, Any]:
    """``LLMConfig.engine_kwargs`` that install the Autellix scheduler plugin in each replica's
    vLLM engine; ``settings`` are the plugin's (``num_queues``, ``base_quantum``...)."""
    return {
        "scheduler_cls": SCHEDULER_CLS,
        "additional_config": {"autellix": {"policy": policy, **settings}},
    }


__all__ = ["SCHEDULER_CLS", "AutellixRequestRouter", "engine_kwargs", "request_facts"]
