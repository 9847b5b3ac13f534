"""``autellix serve``'s vLLM OpenAI-layer flags reach every vLLM engine's options."""

from __future__ import annotations

from autellix_backend.server.config import EngineSpec, ServerConfig
from autellix_backend.server.openai_layer import OpenAILayerOptions, apply_openai_layer

LAYER = OpenAILayerOptions(
    enable_auto_tool_choice=True,
    tool_call_parser="hermes",
    reasoning_parser="qwen3",
    structured_outputs_backend="xgrammar",
)


def test_flags_go_to_the_serving_layer_and_engine_args_of_each_kind() -> None:
    config = ServerConfig(
        engines=(
            EngineSpec(kind="local_vllm", engine_id="a", options={"engine_args": {"seed": 3}}),
            EngineSpec(kind="remote_vllm", engine_id="b", url="http://127.0.0.1:9"),
            EngineSpec(kind="sim", engine_id="c"),
        )
    )
    local, remote, sim = apply_openai_layer(config, LAYER).engines
    assert local.options["serving_options"] == {
        "enable_auto_tool_choice": True,
        "tool_call_parser": "hermes",
    }
    assert local.options["engine_args"] == {
        "seed": 3,
        "reasoning_parser": "qwen3",
        "structured_outputs_config": {"backend": "xgrammar"},
    }
    assert remote.options["serving_options"]["reasoning_parser"] == "qwen3"
    assert sim.options == {}


def test_flags_override_the_config_file() -> None:
    given = {"serving_options": {"tool_call_parser": "llama3_json", "chat_template": "t.jinja"}}
    config = ServerConfig(engines=(EngineSpec(kind="local_vllm", engine_id="a", options=given),))
    (local,) = apply_openai_layer(config, LAYER).engines
    assert local.options["serving_options"]["tool_call_parser"] == "hermes"
    assert local.options["serving_options"]["chat_template"] == "t.jinja"


def test_no_flags_change_nothing() -> None:
    config = ServerConfig()
    assert apply_openai_layer(config, OpenAILayerOptions()) is config
