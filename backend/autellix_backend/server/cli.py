"""``autellix serve``: run the service (flags override the config file)."""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from autellix_backend.server.config import ENGINE_KINDS, ConfigError, load_config
from autellix_backend.server.openai_layer import OpenAILayerOptions, apply_openai_layer


def serve(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML or TOML settings file.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8000).")] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            help=f"Engine kind ({', '.join(ENGINE_KINDS)}); default: local_vllm, tiny model."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model to serve (vLLM kinds) or to name (sim).")
    ] = None,
    url: Annotated[str | None, typer.Option(help="Base URL of a remote engine.")] = None,
    num_engines: Annotated[
        int, typer.Option(min=1, help="Engines of --engine to run behind the balancer.")
    ] = 1,
    policy: Annotated[str | None, typer.Option(help="Scheduling policy (default plas).")] = None,
    num_queues: Annotated[
        int | None, typer.Option(min=1, help="K, the number of priority queues (default 8).")
    ] = None,
    base_quantum: Annotated[
        float | None, typer.Option(help="Quantum of the top queue, engine seconds (default 0.25).")
    ] = None,
    starvation_beta: Annotated[
        float | None, typer.Option(help="Anti-starvation ratio beta (default 8).")
    ] = None,
    balancer: Annotated[str | None, typer.Option(help="Load balancer (default locality).")] = None,
    api_key: Annotated[
        list[str] | None, typer.Option(help="Accepted API key (repeatable); none: no auth.")
    ] = None,
    idle_timeout: Annotated[
        float | None, typer.Option(help="Seconds before an idle program is ended (default 600).")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="Log level (default info).")] = None,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Run the engines as Ray actors on this cluster (auto, ray://head:10001, local)."
        ),
    ] = None,
    enable_auto_tool_choice: Annotated[
        bool, typer.Option(help="vLLM: let the model choose tool calls (needs a parser).")
    ] = False,
    tool_call_parser: Annotated[
        str | None, typer.Option(help="vLLM tool-call parser (hermes, llama3_json, ...).")
    ] = None,
    reasoning_parser: Annotated[
        str | None, typer.Option(help="vLLM reasoning parser (deepseek_r1, qwen3, ...).")
    ] = None,
    chat_template: Annotated[
        str | None, typer.Option(help="vLLM chat template (path or template) for the model.")
    ] = None,
    structured_outputs_backend: Annotated[
        str | None, typer.Option(help="vLLM structured-output backend (auto, xgrammar, ...).")
    ] = None,
) -> None:
    """Run the program-aware, OpenAI-compatible service."""
    import uvicorn

    from autellix_backend.server.app import create_app
    from autellix_backend.server.logs import configure_logging

    overrides: dict[str, Any] = {
        "host": host,
        "port": port,
        "policy": policy,
        "balancer": balancer,
        "idle_timeout_s": idle_timeout,
        "log_level": log_level,
        "api_keys": list(api_key) if api_key else None,
        "ray_address": None if ray_address in (None, "local") else ray_address,
    }
    if engine is not None or model is not None or url is not None or num_engines > 1:
        kind = engine or ("local_vllm" if url is None else "remote_vllm")
        overrides["engines"] = [
            {"kind": kind, "model": model or "", "url": url or "", "id": f"{kind}-{i}"}
            for i in range(num_engines)
        ]
    if ray_address is not None and (config is None or "engines" in overrides):
        # engines from flags (or the default one) go on Ray; a file's engines say per engine
        engines = overrides.get("engines") or [{"kind": "local_vllm"}]
        if num_engines > 1:  # one entry of N replicas: one placement group, same engine ids
            engines = [{**engines[0], "id": engines[0]["kind"], "num_engines": num_engines}]
        overrides["engines"] = [{**e, "placement": "ray"} for e in engines]
    try:
        settings = load_config(config, **overrides)
        layer = OpenAILayerOptions(
            enable_auto_tool_choice=enable_auto_tool_choice,
            tool_call_parser=tool_call_parser,
            reasoning_parser=reasoning_parser,
            chat_template=chat_template,
            structured_outputs_backend=structured_outputs_backend,
        )
        settings = apply_openai_layer(settings, layer)
        tuning: dict[str, Any] = {
            "num_queues": num_queues,
            "base_quantum": base_quantum,
            "starvation_beta": starvation_beta,
        }
        chosen = {k: v for k, v in tuning.items() if v is not None}
        if chosen:
            try:
                settings = replace(settings, scheduler=replace(settings.scheduler, **chosen))
            except ValueError as exc:
                raise ConfigError(f"scheduler: {exc}") from None
        configure_logging(settings.log_level)
        service = create_app(settings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _tune_gc()
    uvicorn.run(
        service,
        http=http_protocol(),
        host=settings.host,
        port=settings.port,
        log_config=None,
        timeout_keep_alive=int(settings.keep_alive_s),
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) + 1,
    )


def http_protocol() -> Any:
    """uvicorn's httptools protocol writing head and body at once, when httptools is there."""
    try:
        from autellix_backend.server.http_protocol import CoalescingHttpToolsProtocol
    except ImportError:
        return "auto"
    return CoalescingHttpToolsProtocol


GC_YOUNG_FACTOR = 10
"""How many times Python's default young-generation threshold (700 allocations) ``autellix
serve`` collects at."""


def _tune_gc() -> None:
    """Keep the cyclic garbage collector off the call path.

    Profiled under load (BENCHMARKS.md, issue 14), the collector took about a quarter of the
    gateway's CPU per call: every full collection walked the ~100,000 objects of the imported
    framework, and young collections ran every 700 allocations. The objects alive at startup
    are frozen out of it (``gc.freeze``, after one collection) and the young generation is
    collected ten times less often, which cost about the same per object.
    """
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(young * GC_YOUNG_FACTOR, middle, old)
