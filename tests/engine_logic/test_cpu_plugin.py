"""The vLLM general plugin that asks Linux for the AMX tile state (docs/engines.md)."""

from __future__ import annotations


def test_the_amx_plugin_is_registered_with_vllm() -> None:
    from importlib.metadata import entry_points

    from autellix_integrations.vllm._cpu import request_amx_permission

    plugins = {e.name: e.value for e in entry_points(group="vllm.general_plugins")}
    assert plugins.get("autellix_cpu") == "autellix_integrations.vllm._cpu:request_amx_permission"
    request_amx_permission()  # never raises, with or without AMX on this CPU
