"""Overhead of the LangGraph middleware beside its peers, on the same 1,000-node graphs.

Three graphs (a chain, a ``Send`` fan-out, subgraphs nested two deep) run plain, with a
do-nothing callback handler (the floor any callback-based tracer pays), with a handler that
only records the same spans as ``instrument()`` without attributes (the OpenTelemetry SDK's own
cost, a second floor for tracers that record spans), with ``instrument()`` (no tracer
provider, then with OpenTelemetry SDK spans), with Phoenix's
``openinference-instrumentation-langchain`` and with langfuse's LangChain ``CallbackHandler``.
Every tracer records its spans with the SDK into an in-memory exporter, so no network is
involved; the peers come from the ``bench`` extra and are skipped (with a note) if missing.

Each node calls a fake chat model (langchain-core's ``FakeListChatModel``), so the graph's own
work is LangGraph's scheduling and the model's callback plumbing, which is the worst case for
a tracer: any cost the middleware adds shows in full. Runs of the configurations alternate so
drift affects all alike; times are CPU seconds of the process (steadier than wall time on a
shared machine, and they include a span exporter's background thread). The table gives each
configuration's median and, per ratio, the median over rounds of the two runs' ratio within
the round. The last line drives the handlers' hooks directly, without LangGraph.

    python benchmarks/bench_graph_overhead.py --runs 7
"""

from __future__ import annotations

import argparse
import gc
import itertools
import logging
import operator
import os
import statistics
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypedDict
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import autellix_graph


class State(TypedDict):
    count: Annotated[int, operator.add]


def _llm() -> FakeListChatModel:
    return FakeListChatModel(responses=["ok"])


def chain_graph(num_nodes: int) -> Any:
    """``num_nodes`` nodes in a line, one LLM call each (1,000 supersteps)."""
    llm = _llm()

    def node(state: State) -> dict[str, int]:
        llm.invoke("hi")
        return {"count": 1}

    builder = StateGraph(State)
    names = [f"n{i}" for i in range(num_nodes)]
    for name in names:
        builder.add_node(name, node)
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    builder.add_edge(names[-1], END)
    return builder.compile()


def fan_out_graph(num_nodes: int, width: int = 100) -> Any:
    """``num_nodes`` tasks as ``num_nodes / width`` rounds of ``width`` parallel ``Send``s."""
    llm = _llm()
    rounds = num_nodes // width

    def dispatch(state: State) -> dict[str, int]:
        return {"count": 0}

    def fan(state: State) -> list[Send] | str:
        if state["count"] >= rounds * width:
            return END
        return [Send("work", {"count": 0}) for _ in range(width)]

    def work(state: State) -> dict[str, int]:
        llm.invoke("hi")
        return {"count": 1}

    builder = StateGraph(State)
    builder.add_node("dispatch", dispatch)
    builder.add_node("work", work)
    builder.add_edge(START, "dispatch")
    builder.add_conditional_edges("dispatch", fan, ["work", END])
    builder.add_edge("work", "dispatch")
    return builder.compile()


def nested_graph(num_nodes: int, width: int = 10) -> Any:
    """``num_nodes`` LLM nodes in subgraphs nested two deep: a chain of ``width`` subgraphs,
    each a chain of ``width`` subgraphs of ``num_nodes / width**2`` LLM nodes."""
    inner = chain_graph(max(1, num_nodes // (width * width)))

    def chain_of(child: Any) -> Any:
        builder = StateGraph(State)
        names = [f"s{i}" for i in range(width)]
        for name in names:
            builder.add_node(name, child)
        builder.add_edge(START, names[0])
        for a, b in itertools.pairwise(names):
            builder.add_edge(a, b)
        builder.add_edge(names[-1], END)
        return builder.compile()

    return chain_of(chain_of(inner))


class _NoopHandler(BaseCallbackHandler):
    """A LangChain handler that does nothing: the floor any callback-based tracer pays."""

    run_inline = True


class _SpanFloorHandler(BaseCallbackHandler):
    """Records the spans ``instrument()`` records (the program, one per LangGraph task, one per
    LLM call) with no attributes and nothing else: what the OpenTelemetry SDK itself costs
    any tracer that records spans, the second floor."""

    run_inline = True

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._runs: dict[UUID, tuple[trace.Span | None, Context, str | None]] = {}
        """run id -> its span (None for a nested run that is not a task), the context its
        children start in, its LangGraph namespace."""

    def _start(self, name: str, run_id: UUID, context: Context | None, ns: str | None) -> None:
        span = self._tracer.start_span(name, context=context)
        self._runs[run_id] = (span, trace.set_span_in_context(span), ns)

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if parent_run_id is None:
            self._start("program", run_id, None, None)
            return
        parent = self._runs.get(parent_run_id)
        if parent is None:
            return
        namespace = (metadata or {}).get("langgraph_checkpoint_ns")
        if namespace and namespace != parent[2]:
            self._start("node", run_id, parent[1], namespace)
        else:
            self._runs[run_id] = (None, parent[1], parent[2])

    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        if parent is not None:
            self._start("chat", run_id, parent[1], parent[2])

    def _end(self, run_id: UUID) -> None:
        span = self._runs.pop(run_id, (None,))[0]
        if span is not None:
            span.end()

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)


def time_once(graph: Any, num_nodes: int, callbacks: list[Any] | None = None) -> float:
    """CPU seconds (all threads, so a span exporter's thread counts) of one run."""
    config: dict[str, Any] = {"recursion_limit": 4 * num_nodes + 10}
    if callbacks:
        config["callbacks"] = callbacks
    gc.collect()
    start = time.process_time()
    graph.invoke({"count": 0}, config)
    return time.process_time() - start


def sdk_provider() -> TracerProvider:
    """An OpenTelemetry SDK provider batching spans to memory (the OTLP exporter's work
    minus the network)."""
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=1 << 16))
    return provider


def _instrumented(provider: TracerProvider | None) -> Callable[[Any, int], float]:
    def run(graph: Any, num_nodes: int) -> float:
        autellix_graph.instrument(tracer_provider=provider, sessions=False)
        try:
            elapsed = time_once(graph, num_nodes)
            if provider is not None:  # exporting what the run produced is part of its cost
                start = time.process_time()
                provider.force_flush()
                elapsed += time.process_time() - start
            return elapsed
        finally:
            autellix_graph.uninstrument()
            if provider is not None:
                provider.shutdown()

    return run


def _flushed(provider: TracerProvider, run: Callable[[], float]) -> float:
    """CPU seconds of ``run`` plus exporting what it produced (part of a tracer's cost)."""
    elapsed = run()
    start = time.process_time()
    provider.force_flush()
    return elapsed + time.process_time() - start


def _span_floor() -> Callable[[Any, int], float]:
    def run(graph: Any, num_nodes: int) -> float:
        provider = sdk_provider()
        try:
            handler = _SpanFloorHandler(provider.get_tracer("floor"))
            return _flushed(provider, lambda: time_once(graph, num_nodes, [handler]))
        finally:
            provider.shutdown()

    return run


def _openinference() -> Callable[[Any, int], float]:
    from openinference.instrumentation.langchain import LangChainInstrumentor

    def run(graph: Any, num_nodes: int) -> float:
        provider = sdk_provider()
        instrumentor = LangChainInstrumentor()
        instrumentor.instrument(tracer_provider=provider)
        try:
            return _flushed(provider, lambda: time_once(graph, num_nodes))
        finally:
            instrumentor.uninstrument()
            provider.shutdown()

    return run


def _langfuse() -> Callable[[Any, int], float]:
    from langfuse import Langfuse
    from langfuse.langchain import CallbackHandler

    # The client batches spans on its own SDK provider (given here: by default it would also
    # become the process's global provider, and ``instrument()`` without one would record
    # into it); an in-memory exporter replaces OTLP.
    # It warns once per run that a fake model has no model name: not our concern here.
    logging.getLogger("langfuse").setLevel(logging.ERROR)
    client = Langfuse(
        public_key="pk-bench",
        secret_key="sk-bench",
        base_url="http://127.0.0.1:9",
        span_exporter=InMemorySpanExporter(),
        tracer_provider=TracerProvider(),
    )

    def run(graph: Any, num_nodes: int) -> float:
        handler = CallbackHandler(public_key="pk-bench")
        elapsed = time_once(graph, num_nodes, [handler])
        start = time.process_time()
        client.flush()
        return elapsed + time.process_time() - start

    return run


def _peer_available(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        print(f"note: {module} is not installed (pip install -e '.[bench]'); its column is skipped")
        return False
    return True


def configs() -> dict[str, Callable[[], Callable[[Any, int], float]]]:
    """How each run attaches: not at all; a do-nothing callback handler (what LangChain itself
    costs once any handler is attached); bare SDK spans (what recording spans costs any
    tracer); ``instrument()`` with no tracer provider configured (DAG, call tagging, no-op
    spans); ``instrument()`` recording every span with the SDK; the two peers, each recording
    spans with the SDK."""
    table: dict[str, Callable[[], Callable[[Any, int], float]]] = {
        "plain": lambda: time_once,
        "no-op handler": lambda: lambda g, n: time_once(g, n, [_NoopHandler()]),
        "SDK spans": _span_floor,
        "autellix": lambda: _instrumented(None),
        "autellix + spans": lambda: _instrumented(sdk_provider()),
    }
    if _peer_available("openinference.instrumentation.langchain"):
        table["openinference"] = lambda: _openinference()
    if _peer_available("langfuse.langchain"):
        langfuse_run = _langfuse()  # one client per process, as langfuse expects
        table["langfuse"] = lambda: langfuse_run
    return table


def measure(
    make: Callable[[int], Any],
    num_nodes: int,
    runs: int,
    table: dict[str, Callable[[], Callable[[Any, int], float]]],
) -> dict[str, list[float]]:
    """CPU seconds of each configuration's runs, the configurations' runs interleaved (round
    ``i`` of every configuration ran back to back)."""
    graph = make(num_nodes)
    for factory in table.values():  # warm up imports and caches of every configuration
        factory()(graph, num_nodes)
    times: dict[str, list[float]] = {name: [] for name in table}
    for _ in range(runs):
        for name, factory in table.items():
            times[name].append(factory()(graph, num_nodes))
    return times


def paired_ratio(times: dict[str, list[float]], name: str, floor: str) -> float:
    """Median over rounds of ``name``'s run divided by ``floor``'s run of the same round:
    drift on a shared machine moves both alike."""
    return statistics.median(a / b for a, b in zip(times[name], times[floor], strict=True))


def hook_cost_us(num_nodes: int, runs: int, spans: str | None = None) -> float:
    """CPU microseconds per LLM node of a handler's own hooks, driven directly with the events
    a chain of ``num_nodes`` LLM nodes sends (task start, chat-model start, LLM end, task end),
    minimum over ``runs``: steadier on a loaded machine than the whole graph's ratio.
    ``spans``: None for ``instrument()``'s handler with no tracer provider, ``"autellix"`` for
    it recording SDK spans, ``"floor"`` for the bare SDK spans of ``_SpanFloorHandler``; with
    spans each run has its own provider and includes exporting them."""
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration, LLMResult

    result = LLMResult(generations=[[ChatGeneration(message=AIMessage("ok"))]])
    messages = [[HumanMessage("hi")]]
    serialized = {"id": ["langchain", "FakeListChatModel"]}
    params = {"_type": "fake-list-chat-model"}

    def run() -> float:
        provider = None if spans is None else sdk_provider()
        handler: Any
        if spans == "floor":
            assert provider is not None
            handler = _SpanFloorHandler(provider.get_tracer("floor"))
        else:
            handler = autellix_graph.AutellixCallbackHandler(
                sessions=False, tracer_provider=provider
            )
        start = time.process_time()
        root = uuid.uuid4()
        handler.on_chain_start({}, {}, run_id=root, metadata={}, name="LangGraph")
        for i in range(num_nodes):
            task, call = uuid.uuid4(), uuid.uuid4()
            meta = {
                "langgraph_step": i + 1,
                "langgraph_node": "n",
                "langgraph_checkpoint_ns": f"n:{task}",
            }
            handler.on_chain_start({}, {}, run_id=task, parent_run_id=root, metadata=meta)
            handler.on_chat_model_start(
                serialized,
                messages,
                run_id=call,
                parent_run_id=task,
                metadata=meta,
                invocation_params=params,
            )
            handler.on_llm_end(result, run_id=call, parent_run_id=task)
            handler.on_chain_end({}, run_id=task, parent_run_id=root)
        handler.on_chain_end({}, run_id=root)
        if provider is not None:
            provider.force_flush()
        elapsed = time.process_time() - start
        if provider is not None:
            provider.shutdown()
        return elapsed

    run()
    return min(run() for _ in range(runs)) / num_nodes * 1e6


GRAPHS: dict[str, Callable[[int], Any]] = {
    "chain": chain_graph,
    "Send fan-out x100": fan_out_graph,
    "nested subgraphs": nested_graph,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--graphs", nargs="*", default=list(GRAPHS), choices=list(GRAPHS))
    parser.add_argument(
        "--configs",
        nargs="*",
        help="run only these configurations (names as in the table; the no-op handler and "
        "the bare SDK spans always run, as the floors)",
    )
    args = parser.parse_args()
    table = configs()
    if args.configs:
        keep = {*args.configs, "no-op handler", "SDK spans"}
        table = {name: factory for name, factory in table.items() if name in keep}
    names = list(table)
    floors = ("plain", "no-op handler")
    ratios = [(n, "no-op handler") for n in names if n not in floors]
    if "autellix + spans" in table:
        ratios.append(("autellix + spans", "SDK spans"))
    print(f"load: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"| graph ({args.nodes} LLM nodes) | "
        + " | ".join(f"{n} (s)" for n in names)
        + " | "
        + " | ".join(f"{n} / {floor.split()[0]}" for n, floor in ratios)
        + " |"
    )
    print("|---" + "|---:" * (len(names) + len(ratios)) + "|")
    for label in args.graphs:
        times = measure(GRAPHS[label], args.nodes, args.runs, table)
        cells = [f"{statistics.median(times[n]):.3f}" for n in names] + [
            f"{paired_ratio(times, n, floor):.3f}" for n, floor in ratios
        ]
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    costs = {
        spans: hook_cost_us(args.nodes, args.runs, spans) for spans in (None, "autellix", "floor")
    }
    print(
        f"hooks alone, driven directly (4 events per LLM node, min of {args.runs} runs): "
        f"autellix {costs[None]:.1f} us CPU per node without spans, "
        f"{costs['autellix']:.1f} us with SDK spans; bare SDK spans {costs['floor']:.1f} us"
    )


if __name__ == "__main__":
    main()
