"""Middleware settings, from keyword arguments and ``AUTELLIX_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from autellix_graph import protocol

_TRUE = frozenset({"1", "true", "yes", "on"})
_CAPTURE = _TRUE | {"span_only", "span_and_event"}
"""Values of ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` that put content on spans."""

ENV_CAPTURE_CONTENT = "AUTELLIX_CAPTURE_CONTENT"
ENV_OTEL_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""OpenTelemetry GenAI instrumentations' switch, honoured when ``AUTELLIX_*`` is unset."""
ENV_PROJECT_NAME = "AUTELLIX_PROJECT_NAME"
ENV_PHOENIX_PROJECT_NAME = "PHOENIX_PROJECT_NAME"
"""Phoenix's own project variable, honoured when ``AUTELLIX_PROJECT_NAME`` is unset."""


class SettingsError(ValueError):
    """A setting has a value the middleware cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What the middleware talks to and how. Every field has a safe default: with none set,
    the middleware only traces (to the process's global tracer provider)."""

    base_url: str | None = None
    """Autellix service root, e.g. ``http://127.0.0.1:8000`` (env ``AUTELLIX_BASE_URL``).
    When set, programs open and close sessions there and spans are exported to its
    ``/v1/traces`` unless ``otlp_endpoint`` says otherwise."""
    api_key: str | None = field(default=None, repr=False)
    """Bearer token for the service (env ``AUTELLIX_API_KEY``). Never written to spans."""
    otlp_endpoint: str | None = None
    """OTLP/HTTP traces endpoint, e.g. ``http://127.0.0.1:4318/v1/traces`` for Jaeger or Phoenix
    (env ``AUTELLIX_OTLP_ENDPOINT``). Ignored when a ``tracer_provider`` is passed."""
    disabled: bool = False
    """Attach nothing (env ``AUTELLIX_DISABLED=1``): a kill switch for production."""
    sessions: bool = True
    """Open a program session with the service on a program's first call and close it when
    the run ends or fails (needs ``base_url``)."""
    timeout: float = 2.0
    """Seconds the background session calls may take; they never block the app."""
    capture_content: bool = False
    """Record prompts, completions, tool arguments and results, and graph inputs and outputs
    on spans (env ``AUTELLIX_CAPTURE_CONTENT=1``, or OpenTelemetry's
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``). Off by default: content may
    hold personal data."""
    project_name: str | None = None
    """Project the exported spans belong to, as the ``openinference.project.name`` resource
    attribute Phoenix and Arize group traces by (env ``AUTELLIX_PROJECT_NAME``, else
    ``PHOENIX_PROJECT_NAME``). Applies to the provider the middleware makes for
    ``otlp_endpoint`` / ``base_url``; your own ``tracer_provider`` keeps its resource."""

    def __post_init__(self) -> None:
        for name in ("base_url", "otlp_endpoint"):
            url = getattr(self, name)
            if url is not None and not url.startswith(("http://", "https://")):
                raise SettingsError(f"{name} must be an http(s) URL, got {url!r}")
        if not self.timeout > 0:
            raise SettingsError(f"timeout must be > 0, got {self.timeout}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``environ`` (default ``os.environ``), then ``overrides`` not None."""
        env = os.environ if environ is None else environ
        settings = cls(
            base_url=env.get(protocol.ENV_BACKEND_URL) or None,
            api_key=env.get(protocol.ENV_API_KEY) or None,
            otlp_endpoint=env.get(protocol.ENV_OTLP_ENDPOINT) or None,
            disabled=env.get(protocol.ENV_DISABLED, "").strip().lower() in _TRUE,
            capture_content=_capture_content(env),
            project_name=env.get(ENV_PROJECT_NAME) or env.get(ENV_PHOENIX_PROJECT_NAME) or None,
        )
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given) if given else settings

    @property
    def service_root(self) -> str | None:
        """``base_url`` without a trailing ``/`` or ``/v1``."""
        if self.base_url is None:
            return None
        root = self.base_url.rstrip("/")
        return root.removesuffix("/v1")

    @property
    def openai_base_url(self) -> str | None:
        """The OpenAI-compatible base URL (``<root>/v1``)."""
        root = self.service_root
        return None if root is None else f"{root}/v1"

    @property
    def traces_endpoint(self) -> str | None:
        """Where spans go: ``otlp_endpoint``, else the service's ``/v1/traces``, else nowhere."""
        if self.otlp_endpoint is not None:
            return self.otlp_endpoint
        root = self.service_root
        return None if root is None else f"{root}/v1/traces"


def _capture_content(env: Mapping[str, str]) -> bool:
    """``AUTELLIX_CAPTURE_CONTENT`` if set, else OpenTelemetry's GenAI capture switch."""
    own = env.get(ENV_CAPTURE_CONTENT)
    if own is not None and own.strip():
        return own.strip().lower() in _TRUE
    return env.get(ENV_OTEL_CAPTURE_CONTENT, "").strip().lower() in _CAPTURE
