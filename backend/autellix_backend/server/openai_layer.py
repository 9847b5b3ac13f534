"""Options of vLLM's OpenAI layer (tool calls, reasoning, chat template, structured outputs),
named as ``vllm serve`` names them, and how they reach each kind of engine.

``autellix serve --enable-auto-tool-choice --tool-call-parser hermes`` means what it means to
``vllm serve``. The in-process engine builds vLLM's serving layer with them; a remote vLLM
engine records them in its config (the remote server must be started with the same flags,
see docs/engines.md); the simulated engine produces no tool calls and ignores them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from autellix_backend.server.config import EngineSpec, ServerConfig


@dataclass(frozen=True, slots=True)
class OpenAILayerOptions:
    """``vllm serve`` flags of the OpenAI layer; None leaves vLLM's default."""

    enable_auto_tool_choice: bool = False
    """Let the model choose tool calls (``tool_choice="auto"``); needs ``tool_call_parser``."""
    tool_call_parser: str | None = None
    """vLLM tool-call parser (``hermes``, ``llama3_json``, ``mistral``...)."""
    reasoning_parser: str | None = None
    """vLLM reasoning parser (``deepseek_r1``, ``qwen3``...)."""
    chat_template: str | None = None
    """Chat template (a file path or the template itself) replacing the model's."""
    structured_outputs_backend: str | None = None
    """Structured-output backend (``auto``, ``xgrammar``, ``guidance``, ``outlines``)."""

    def is_default(self) -> bool:
        return self == OpenAILayerOptions()

    def serving_options(self) -> dict[str, Any]:
        """``vllm serve`` frontend fields, for ``LocalVLLMEngine(serving_options=...)``."""
        options: dict[str, Any] = {}
        if self.enable_auto_tool_choice:
            options["enable_auto_tool_choice"] = True
        if self.tool_call_parser is not None:
            options["tool_call_parser"] = self.tool_call_parser
        if self.chat_template is not None:
            options["chat_template"] = self.chat_template
        return options

    def engine_args(self) -> dict[str, Any]:
        """``AsyncEngineArgs`` fields (reasoning and structured outputs live in the engine)."""
        args: dict[str, Any] = {}
        if self.reasoning_parser is not None:
            args["reasoning_parser"] = self.reasoning_parser
        if self.structured_outputs_backend is not None:
            args["structured_outputs_config"] = {"backend": self.structured_outputs_backend}
        return args


def apply_openai_layer(config: ServerConfig, layer: OpenAILayerOptions) -> ServerConfig:
    """``config`` with ``layer`` in every vLLM engine's options (flags override the file)."""
    if layer.is_default():
        return config
    engines = tuple(_with_layer(spec, layer) for spec in config.engines)
    return replace(config, engines=engines)


def _with_layer(spec: EngineSpec, layer: OpenAILayerOptions) -> EngineSpec:
    options = dict(spec.options)
    if spec.kind == "local_vllm":
        options["serving_options"] = _merged(
            layer.serving_options(), options.get("serving_options")
        )
        options["engine_args"] = _merged(layer.engine_args(), options.get("engine_args"))
    elif spec.kind in ("remote_vllm", "openai"):
        given = {**layer.serving_options(), **layer.engine_args()}
        options["serving_options"] = _merged(given, options.get("serving_options"))
    else:
        return spec
    return replace(spec, options=options)


def _merged(flags: Mapping[str, Any], given: Any) -> dict[str, Any]:
    return {**dict(given or {}), **flags}
