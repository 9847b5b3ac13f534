"""Engine adapters: one interface, one module per kind of engine."""

from __future__ import annotations

from autellix_backend.engines.base import (
    EngineAdapter,
    EngineChunk,
    EngineError,
    EngineLoad,
    EngineRequest,
    EngineUsage,
    ProgramTag,
    RequestKind,
    RequestRejected,
)

__all__ = [
    "EngineAdapter",
    "EngineChunk",
    "EngineError",
    "EngineLoad",
    "EngineRequest",
    "EngineUsage",
    "ProgramTag",
    "RequestKind",
    "RequestRejected",
]
