"""The self-hosted service behind ``autellix serve``: OpenAI-compatible API, program sessions,
OTLP receiver, engine pool, metrics and auth.

>>> from autellix_backend.server import ServerConfig, create_app
>>> app = create_app(ServerConfig(engines=(EngineSpec(kind="sim"),)))  # doctest: +SKIP
"""

from __future__ import annotations

from autellix_backend.server.app import create_app
from autellix_backend.server.config import (
    ConfigError,
    EngineSpec,
    Limits,
    ServerConfig,
    load_config,
)

__all__ = ["ConfigError", "EngineSpec", "Limits", "ServerConfig", "create_app", "load_config"]
