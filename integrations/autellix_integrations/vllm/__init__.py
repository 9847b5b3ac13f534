"""The Autellix scheduler plugin for vLLM's V1 engine.

Remote server::

    python -m vllm.entrypoints.openai.api_server --model MODEL \\
        --scheduler-cls autellix_integrations.vllm.AutellixScheduler

In process: ``AsyncEngineArgs(..., scheduler_cls=AutellixScheduler)``. Settings come from
``AUTELLIX_*`` environment variables or ``--additional-config '{"autellix": {...}}'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autellix_integrations.vllm._metadata import (
    KEY_CALL_ID,
    KEY_PARENT_IDS,
    KEY_PROGRAM_ID,
    KEY_SERVICE,
    KEY_THREAD_ID,
    REPORT_KEY,
    MetadataError,
    arrival_from_xargs,
)
from autellix_integrations.vllm._reports import ServiceReport
from autellix_integrations.vllm._settings import PluginSettings, SettingsError
from autellix_integrations.vllm._versions import SUPPORTED_VLLM, check_vllm_version

if TYPE_CHECKING:
    from autellix_integrations.vllm._scheduler import AutellixScheduler


def __getattr__(name: str) -> Any:
    """Import the scheduler (and vLLM) only when it is asked for."""
    if name == "AutellixScheduler":
        from autellix_integrations.vllm._scheduler import AutellixScheduler

        return AutellixScheduler
    raise AttributeError(name)


__all__ = [
    "KEY_CALL_ID",
    "KEY_PARENT_IDS",
    "KEY_PROGRAM_ID",
    "KEY_SERVICE",
    "KEY_THREAD_ID",
    "REPORT_KEY",
    "SUPPORTED_VLLM",
    "AutellixScheduler",
    "MetadataError",
    "PluginSettings",
    "ServiceReport",
    "SettingsError",
    "arrival_from_xargs",
    "check_vllm_version",
]
