"""The one rule every framework hook follows: a tracing bug must never break the user's app."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec

_P = ParamSpec("_P")
_log = logging.getLogger("autellix_graph")


def guarded(method: Callable[_P, None]) -> Callable[_P, None]:
    """Run a hook; log and swallow anything it raises."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception:
            _log.debug("autellix hook %s failed", method.__qualname__, exc_info=True)

    return wrapper
