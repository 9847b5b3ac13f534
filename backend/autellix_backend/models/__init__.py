"""Models the project generates locally, for machines with no GPU and no internet."""

from __future__ import annotations

from autellix_backend.models.tiny import TinyModelSpec, default_cache_dir, ensure_tiny_model

__all__ = ["TinyModelSpec", "default_cache_dir", "ensure_tiny_model"]
