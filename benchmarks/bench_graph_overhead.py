"""Overhead of the LangGraph middleware: the same 1,000-node graph with and without it.

Each node calls a fake chat model (langchain-core's ``FakeListChatModel``), so the graph's own
work is LangGraph's scheduling and the model's callback plumbing, which is the worst case for
a tracer: any cost the middleware adds shows in full. Runs of the configurations alternate so
drift affects all alike; times are CPU seconds of the process (steadier than wall time on a
shared machine, and they include a span exporter's background thread); the figure is the
ratio of the medians.

    python benchmarks/bench_graph_overhead.py --runs 7
"""

from __future__ import annotations

import argparse
import gc
import itertools
import operator
import statistics
import time
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
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


class _NoopHandler(BaseCallbackHandler):
    """A LangChain handler that does nothing: the floor any callback-based tracer pays."""

    run_inline = True


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


CONFIGS: dict[str, Callable[[], Callable[[Any, int], float]]] = {
    "plain": lambda: time_once,
    "no-op LangChain handler": lambda: lambda g, n: time_once(g, n, [_NoopHandler()]),
    "instrument()": lambda: _instrumented(None),
    "instrument() + SDK spans": lambda: _instrumented(sdk_provider()),
}
"""How each run attaches: not at all; a do-nothing callback handler (what LangChain itself
costs once any handler is attached); ``instrument()`` with no tracer provider configured
(DAG, call tagging, no-op spans); ``instrument()`` recording every span with the SDK."""


def measure(make: Callable[[int], Any], num_nodes: int, runs: int) -> dict[str, float]:
    """Median CPU seconds per configuration, the configurations' runs interleaved."""
    graph = make(num_nodes)
    time_once(graph, num_nodes)  # warm up imports and caches
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(runs):
        for name, factory in CONFIGS.items():
            times[name].append(factory()(graph, num_nodes))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    names = list(CONFIGS)
    print(
        f"| graph ({args.nodes} LLM nodes) | "
        + " | ".join(f"{n} (s)" for n in names)
        + " | "
        + " | ".join(f"{n} / plain" for n in names[1:])
        + " |"
    )
    print("|---" + "|---:" * (2 * len(names) - 1) + "|")
    for label, make in (("chain", chain_graph), ("Send fan-out x100", fan_out_graph)):
        medians = measure(make, args.nodes, args.runs)
        plain = medians["plain"]
        cells = [f"{medians[n]:.3f}" for n in names] + [
            f"{medians[n] / plain:.3f}" for n in names[1:]
        ]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
