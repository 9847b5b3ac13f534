"""Autellix backend: the program-aware serving layer (scheduling core, simulator, service)."""

from __future__ import annotations

__version__ = "0.1.0"
