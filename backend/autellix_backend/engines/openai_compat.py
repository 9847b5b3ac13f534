"""A generic OpenAI-compatible engine: program-aware only through a priority hint.

The engine runs its own scheduler; Autellix can only suggest an order. Each request carries
``priority`` = the program's attained service in milliseconds (lower runs first), which stock
vLLM started with ``--scheduling-policy priority`` honours. This is weaker than the plugin:
no preemption for a waiting call, no queue discretisation or anti-starvation, and service
is not measured (reported as 0). Servers that reject unknown fields: set
``priority_field=None``.
"""

from __future__ import annotations

from typing import Any

from autellix_backend.engines.base import EngineRequest
from autellix_backend.engines.openai_http import OpenAIHTTPEngine


class OpenAICompatEngine(OpenAIHTTPEngine):
    """``OpenAIHTTPEngine`` that sends a priority hint (or nothing).

    Args:
        priority_field: body field for the hint, or None to send none.
        priority_scale: hint = ``int(service_at_arrival * priority_scale)``.
        **options: see ``OpenAIHTTPEngine``.
    """

    program_aware = False

    def __init__(
        self,
        *,
        priority_field: str | None = "priority",
        priority_scale: float = 1000.0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if priority_scale <= 0:
            raise ValueError("priority_scale must be positive")
        self.priority_field = priority_field
        self.priority_scale = priority_scale

    def decorate(self, body: dict[str, Any], request: EngineRequest) -> dict[str, Any]:
        if self.priority_field is None:
            return body
        hint = int(request.tag.service_at_arrival * self.priority_scale)
        return {**body, self.priority_field: hint}
