"""HTTP headers every LLM request carries from the app to the backend (and back)."""

from __future__ import annotations

from typing import Final

HEADER_PROGRAM_ID: Final = "X-Autellix-Program-Id"
HEADER_THREAD_ID: Final = "X-Autellix-Thread-Id"
HEADER_CALL_ID: Final = "X-Autellix-Call-Id"
HEADER_PARENT_IDS: Final = "X-Autellix-Parent-Ids"
"""Comma-separated call ids this call depends on."""
HEADER_ENGINE_ID: Final = "X-Autellix-Engine-Id"
"""Response header: the engine the backend sent the call to."""
