"""HTTP clients whose requests carry the current call's ``X-Autellix-*`` headers."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from autellix_graph import protocol
from autellix_graph._context import current_call
from autellix_graph._settings import Settings

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

_DEFAULT_MODEL = "autellix"


def tag_request(request: httpx.Request) -> None:
    """httpx request hook: add the headers of the LLM call in flight, if any."""
    tag = current_call.get()
    if tag is not None:
        request.headers.update(tag.headers())


async def atag_request(request: httpx.Request) -> None:
    """Async twin of :func:`tag_request`, for ``httpx.AsyncClient``."""
    tag_request(request)


def _hooks(
    given: Mapping[str, list[Callable[..., Any]]] | None, hook: Callable[..., Any]
) -> dict[str, list[Callable[..., Any]]]:
    hooks = {name: list(fns) for name, fns in (given or {}).items()}
    hooks["request"] = [hook, *hooks.get("request", [])]
    return hooks


def http_client(**kwargs: Any) -> httpx.Client:
    """An ``httpx.Client`` that tags every request with the current call's ids.

    Takes the same keyword arguments as ``httpx.Client``; your own ``event_hooks`` are kept.

    >>> with http_client(timeout=30) as client:
    ...     pass
    """
    kwargs["event_hooks"] = _hooks(kwargs.get("event_hooks"), tag_request)
    return httpx.Client(**kwargs)


def async_http_client(**kwargs: Any) -> httpx.AsyncClient:
    """Async twin of :func:`http_client`."""
    kwargs["event_hooks"] = _hooks(kwargs.get("event_hooks"), atag_request)
    return httpx.AsyncClient(**kwargs)


@functools.cache
def served_model(openai_base_url: str, api_key: str | None = None) -> str:
    """The first model the service lists at ``GET /v1/models`` (``"autellix"`` if it cannot
    be asked). Called once per URL, when a client is built, never per request."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(f"{openai_base_url}/models", headers=headers, timeout=5.0)
        response.raise_for_status()
        return str(response.json()["data"][0]["id"])
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError):
        return _DEFAULT_MODEL


def chat_openai(
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 600.0,
    **kwargs: Any,
) -> ChatOpenAI:
    """A LangChain ``ChatOpenAI`` pointed at Autellix, its requests tagged with call ids.

    ``base_url`` and ``api_key`` default to ``AUTELLIX_BASE_URL`` / ``AUTELLIX_API_KEY``;
    ``model`` to ``AUTELLIX_MODEL``, else the first model the service serves. Other keyword
    arguments go to ``ChatOpenAI`` (``max_tokens``, ``temperature``...). Streamed calls ask for
    usage too (``stream_usage=True`` unless given), so every LLM span gets the token counts the
    service measured. Needs ``langchain-openai``.

    >>> llm = chat_openai(base_url="http://127.0.0.1:8000", max_tokens=64)  # doctest: +SKIP
    """
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as exc:  # pragma: no cover - depends on the environment
        message = "chat_openai needs langchain-openai: pip install langchain-openai"
        raise ImportError(message) from exc

    target = ServiceTarget.resolve("chat_openai", model, base_url, api_key)
    kwargs.setdefault("stream_usage", True)
    return ChatOpenAI(
        model=target.model,
        base_url=target.openai_base_url,
        api_key=target.api_key,  # type: ignore[arg-type]
        http_client=http_client(timeout=timeout),
        http_async_client=async_http_client(timeout=timeout),
        **kwargs,
    )


@dataclass(frozen=True, slots=True)
class ServiceTarget:
    """Where a model client made by a helper (``chat_openai``, ``openai_like``) points."""

    model: str
    openai_base_url: str
    """``<service root>/v1``."""
    api_key: str
    """The service's key, or a placeholder the OpenAI clients accept when it has none."""

    @classmethod
    def resolve(
        cls, helper: str, model: str | None, base_url: str | None, api_key: str | None
    ) -> ServiceTarget:
        """Arguments first, then ``AUTELLIX_*`` variables, then the first model served."""
        settings = Settings.from_env(base_url=base_url, api_key=api_key)
        openai_base = settings.openai_base_url
        if openai_base is None:
            raise ValueError(f"{helper} needs base_url or AUTELLIX_BASE_URL")
        model = (
            model
            or os.environ.get(protocol.ENV_MODEL)
            or served_model(openai_base, settings.api_key)
        )
        return cls(model, openai_base, settings.api_key or "autellix")
