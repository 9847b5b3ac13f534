"""The Autellix scheduler plugin for vLLM's V1 engine.

Remote server::

    python -m vllm.entrypoints.openai.api_server --model MODEL \\
        --scheduler-cls autellix_integrations.vllm.AutellixScheduler

In process: ``AsyncEngineArgs(..., scheduler_cls=AutellixScheduler)``. Settings come from
``AUTELLIX_*`` environment variables or ``--additional-config '{"autellix": {...}}'``.
``AutellixScheduler`` becomes ``AutellixAsyncScheduler`` when vLLM's config turns async
scheduling on (its default on GPUs).
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
    from autellix_integrations.vllm._scheduler import AutellixAsyncScheduler, AutellixScheduler

_SCHEDULERS = ("AutellixScheduler", "AutellixAsyncScheduler")


def __getattr__(name: str) -> Any:
    """Import the schedulers (and vLLM) only when one is asked for."""
    if name in _SCHEDULERS:
        from autellix_integrations.vllm import _scheduler

        return getattr(_scheduler, name)
    raise AttributeError(name)


__all__ = [
    "KEY_CALL_ID",
    "KEY_PARENT_IDS",
    "KEY_PROGRAM_ID",
    "KEY_SERVICE",
    "KEY_THREAD_ID",
    "REPORT_KEY",
    "SUPPORTED_VLLM",
    "AutellixAsyncScheduler",
    "AutellixScheduler",
    "MetadataError",
    "PluginSettings",
    "ServiceReport",
    "SettingsError",
    "arrival_from_xargs",
    "check_vllm_version",
]
