"""A real ``vllm.entrypoints.openai.api_server`` running the plugin, reached over HTTP.

The server also publishes its KV events on a ZMQ PUB socket it binds (``tcp://*:<port>``),
which a ``cache_aware`` gateway configured as docs/engines.md says reads.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio

from autellix_backend.engines.base import EngineRequest, ProgramTag, RequestKind
from autellix_backend.engines.openai_compat import OpenAICompatEngine
from autellix_backend.engines.remote_vllm import RemoteVLLMEngine
from autellix_backend.models import ensure_tiny_model
from autellix_backend.server import EngineSpec, ServerConfig
from autellix_protocol import KEY_AWAY_S, KEY_NEXT_TOOL
from autellix_protocol.snapshot import ProgramSnapshot
from tests.engine.test_kv_events_routing import (
    BLOCK,
    SYSTEM,
    _chat,
    _matched,
    _post,
    _token_ids,
    _until,
)
from tests.server.conftest import LiveServer

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def kv_events_port() -> int:
    """Where the server binds its KV events publisher."""
    return _free_port()


@pytest.fixture(scope="module")
def server(kv_events_port: int) -> Iterator[tuple[str, str]]:
    port, report_port = _free_port(), _free_port()
    kv_events = {
        "enable_kv_cache_events": True,
        "publisher": "zmq",
        "endpoint": f"tcp://*:{kv_events_port}",
    }
    env = {
        **os.environ,
        "AUTELLIX_POLICY": "plas",
        "AUTELLIX_REPORT_PORT": str(report_port),
    }
    # KV retention in ``dag`` mode holds only for calls whose hint says a tool follows (only
    # the program-end test's call does); memory is cheap so its hold outlasts slow steps.
    autellix = {"kv_retention": "dag", "retention_rule": {"memory_value": 1e-4}}
    command = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(ensure_tiny_model()), "--served-model-name", "tiny",
        "--load-format", "dummy", "--dtype", "float32", "--enforce-eager", "--block-size", "32",
        "--max-model-len", "1024", "--max-num-seqs", "2", "--kv-cache-memory-bytes", "8388608",
        "--host", "127.0.0.1", "--port", str(port),
        "--scheduler-cls", "autellix_integrations.vllm.AutellixScheduler",
        "--enable-prefix-caching", "--kv-events-config", json.dumps(kv_events),
        "--enable-prompt-tokens-details",  # usage says how many prompt tokens were cached
        "--additional-config", json.dumps({"autellix": autellix}),
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode()[-3000:] if process.stderr else "")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            raise TimeoutError("vLLM server did not start in 600 s")
        yield base, f"http://127.0.0.1:{report_port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest_asyncio.fixture(loop_scope="session")
async def remote(server: tuple[str, str]) -> AsyncIterator[RemoteVLLMEngine]:
    base, reports = server
    engine = RemoteVLLMEngine(engine_id="remote", base_url=base, report_url=reports)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.aclose()


async def test_remote_server_streams_chat_and_reports_service(remote: RemoteVLLMEngine) -> None:
    assert remote.model == "tiny"
    assert await remote.health()
    tag = ProgramTag(program_id="remote-prog", thread_id="t", call_id="remote-c1")
    request = EngineRequest(
        request_id="remote-c1",
        kind=RequestKind.CHAT,
        body={
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 10,
            "ignore_eos": True,
            "stream": True,
        },
        tag=tag,
    )
    chunks = [chunk async for chunk in remote.generate(request)]
    assert len(chunks) > 2
    last = chunks[-1]
    assert last.finish_reason == "length"
    assert last.usage is not None and last.usage.completion_tokens == 10
    assert last.usage.service > 0


async def test_a_programs_end_releases_the_kv_the_remote_server_holds_for_it(
    remote: RemoteVLLMEngine, server: tuple[str, str]
) -> None:
    """The gateway's program-end notice reaches a remote plugin over its report channel."""
    _, reports = server

    def held(program_id: str) -> int:
        return int(httpx.get(f"{reports}/programs/{program_id}").json()["held_blocks"])

    body = {
        "prompt": [10 + i % 600 for i in range(200)],  # 6 full blocks of 32
        "max_tokens": 2,
        "ignore_eos": True,
        "vllm_xargs": {KEY_NEXT_TOOL: "search", KEY_AWAY_S: "30"},  # held up to 30 s
    }
    request = EngineRequest(
        request_id="ends-c1",
        kind=RequestKind.COMPLETION,
        body=body,
        tag=ProgramTag(program_id="remote-ends", call_id="ends-c1"),
    )
    assert [c async for c in remote.generate(request)][-1].finish_reason == "length"
    assert held("remote-ends") >= 6
    remote.end_program("someone-else")
    await asyncio.sleep(0.5)
    assert held("remote-ends") >= 6
    remote.end_program("remote-ends")
    deadline = asyncio.get_running_loop().time() + 10
    while held("remote-ends"):
        assert asyncio.get_running_loop().time() < deadline, "the hold outlived its program"
        await asyncio.sleep(0.1)


async def test_health_probes_read_the_servers_kv_usage(remote: RemoteVLLMEngine) -> None:
    """The server's ``vllm:kv_cache_usage_perc`` is read with each health probe (the UI's
    Engines view)."""
    assert remote.kv_usage() is None
    assert await remote.health()
    usage = remote.kv_usage()
    assert usage is not None and 0.0 <= usage <= 1.0


async def test_non_streamed_response_carries_the_report_in_band(
    server: tuple[str, str],
) -> None:
    base, _ = server
    tag = ProgramTag(program_id="inband", call_id="inband-c1")
    body = {
        "model": "tiny",
        "prompt": "hello",
        "max_tokens": 5,
        "ignore_eos": True,
        "vllm_xargs": tag.as_xargs(),
    }
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        response = await client.post("/v1/completions", json=body)
    assert response.status_code == 200
    report = response.json()["kv_transfer_params"]["autellix"]
    assert report["call_id"] == "inband-c1"
    assert report["program_id"] == "inband"
    assert report["num_output_tokens"] == 5
    assert report["service"] > 0


async def test_bad_metadata_is_served_as_its_own_program(server: tuple[str, str]) -> None:
    base, _ = server
    body = {
        "model": "tiny",
        "prompt": "hello",
        "max_tokens": 3,
        "vllm_xargs": {"autellix_program_id": "bad", "autellix_service": "-5"},
    }
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        response = await client.post("/v1/completions", json=body)
    assert response.status_code == 200
    report = response.json()["kv_transfer_params"]["autellix"]
    assert report["program_id"].startswith("request:")


async def test_generic_openai_adapter_streams_from_the_same_server(
    server: tuple[str, str],
) -> None:
    base, _ = server
    engine = OpenAICompatEngine(engine_id="generic", base_url=f"{base}/v1", priority_field=None)
    await engine.start()
    try:
        request = EngineRequest(
            request_id="generic-1",
            kind=RequestKind.COMPLETION,
            body={"prompt": "hello", "max_tokens": 6, "ignore_eos": True},
            tag=ProgramTag(program_id="generic", snapshot=ProgramSnapshot(service=3.0)),
        )
        chunks = [chunk async for chunk in engine.generate(request)]
    finally:
        await engine.aclose()
    assert engine.model == "tiny"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].usage.service == 0.0


async def test_a_cache_aware_gateway_mirrors_what_the_server_caches(
    server: tuple[str, str], kv_events_port: int
) -> None:
    """A gateway set up as docs/engines.md says (``remote_vllm`` with ``kv_events_endpoint``
    and ``tokenizer``, ``balancer: cache_aware``) hears the server's own KV events: after a
    call, the balancer matches exactly the prompt's full blocks, as many as vLLM then reports
    cached on a repeat of the call, and nothing of a prompt that differs from its first
    token. The block size is learned from the first event."""
    asked = _chat("Plan a trip: trains from Lyon to Turin, then a night in Milan. " * 2)
    system = {"role": "system", "content": "Answer in French. " + SYSTEM}
    other = {**asked, "messages": [system, *asked["messages"][1:]]}
    tokens = _token_ids(asked)
    full = len(tokens) // BLOCK
    # several blocks, the last one partial: vLLM's cache hit on a repeat is all of them
    assert full >= 8 and len(tokens) % BLOCK
    assert _token_ids(other)[:BLOCK] != tokens[:BLOCK]

    base, reports = server
    options = {
        "report_url": reports,
        "kv_events_endpoint": f"tcp://127.0.0.1:{kv_events_port}",
        "tokenizer": str(ensure_tiny_model()),
    }
    engine = EngineSpec(kind="remote_vllm", engine_id="kv", model="tiny", url=base, options=options)
    live = LiveServer(ServerConfig(engines=(engine,), balancer="cache_aware").validate())
    live.start(timeout=120)
    try:  # the first call right away: its events are the first the gateway hears
        usage = _post(live, "/v1/chat/completions", asked)["usage"]
        assert usage["prompt_tokens"] == len(tokens)  # the gateway tokenizes as the server
        _until(lambda: _matched(live, asked) == full, f"the prompt's {full} blocks")
        assert _matched(live, other) == 0

        usage = _post(live, "/v1/chat/completions", asked)["usage"]
        assert usage["prompt_tokens_details"]["cached_tokens"] == full * BLOCK  # vLLM agrees
        assert _matched(live, asked) == full
        assert _matched(live, other) == 0
    finally:
        live.stop()
