"""``openai_like()``: a LlamaIndex LLM pointed at Autellix with both of its clients tagged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autellix_graph._clients import ServiceTarget, async_http_client, http_client

if TYPE_CHECKING:
    from llama_index.llms.openai_like import OpenAILike


def openai_like(
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 600.0,
    **kwargs: Any,
) -> OpenAILike:
    """A LlamaIndex ``OpenAILike`` chat model on Autellix, the twin of
    ``autellix_graph.chat_openai()``: its sync *and* async httpx clients tag every request
    with the call's program, thread and parent ids (an ``http_client`` alone leaves the async
    calls of async steps untagged).

    ``base_url`` and ``api_key`` default to ``AUTELLIX_BASE_URL`` / ``AUTELLIX_API_KEY``;
    ``model`` to ``AUTELLIX_MODEL``, else the first model the service serves. Other keyword
    arguments go to ``OpenAILike`` (``max_tokens``, ``temperature``...). Needs
    ``llama-index-llms-openai-like`` (the ``llamaindex`` extra).

    >>> llm = openai_like(base_url="http://127.0.0.1:8000", max_tokens=64)  # doctest: +SKIP
    """
    try:
        from llama_index.llms.openai_like import OpenAILike
    except ImportError as exc:  # pragma: no cover - depends on the environment
        message = (
            "openai_like needs llama-index-llms-openai-like: pip install 'autellix[llamaindex]'"
        )
        raise ImportError(message) from exc

    target = ServiceTarget.resolve("openai_like", model, base_url, api_key)
    options: dict[str, Any] = {"is_chat_model": True, "context_window": 16_384, **kwargs}
    return OpenAILike(
        model=target.model,
        api_base=target.openai_base_url,
        api_key=target.api_key,
        timeout=timeout,
        http_client=http_client(timeout=timeout),
        async_http_client=async_http_client(timeout=timeout),
        **options,
    )
