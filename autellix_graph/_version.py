"""Package version (kept apart so that modules can import it without cycles)."""

from __future__ import annotations

__version__ = "0.1.0"
