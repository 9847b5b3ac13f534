"""The known runs the UI tests look at: the map-reduce example (``Send`` fan-out, a nested
subgraph per document, a join), a program with a nested subgraph that loops, and one that
runs a slow tool between two calls."""

from __future__ import annotations

import time
from typing import Any, TypedDict

from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph

from examples._common import RunContext, new_program_id

LOOP_ROUNDS = 3


class Research(TypedDict):
    question: str
    notes: list[str]
    rounds: int


class Outer(TypedDict):
    question: str
    notes: list[str]
    rounds: int
    answer: str


def run_loop_program(ctx: RunContext) -> str:
    """plan -> research (subgraph: think -> act, looping ``LOOP_ROUNDS`` times) -> answer."""
    llm = ctx.llm(24)

    def think(state: Research) -> dict[str, Any]:
        text = llm.invoke(f"Think about {state['question']} (round {state['rounds']})").content
        return {"notes": [*state["notes"], str(text)]}

    def act(state: Research) -> dict[str, Any]:
        llm.invoke(f"Act on: {state['notes'][-1]}")
        return {"rounds": state["rounds"] + 1}

    def again(state: Research) -> str:
        return "think" if state["rounds"] < LOOP_ROUNDS else END

    inner = StateGraph(Research)
    inner.add_node("think", think)
    inner.add_node("act", act)
    inner.add_edge(START, "think")
    inner.add_edge("think", "act")
    inner.add_conditional_edges("act", again, ["think", END])

    def plan(state: Outer) -> dict[str, Any]:
        return {"notes": [str(llm.invoke(f"Plan: {state['question']}").content)]}

    def answer(state: Outer) -> dict[str, Any]:
        return {"answer": str(llm.invoke("Answer from: " + " ".join(state["notes"])).content)}

    outer = StateGraph(Outer)
    outer.add_node("plan", plan)
    outer.add_node("research", inner.compile())
    outer.add_node("answer", answer)
    outer.add_edge(START, "plan")
    outer.add_edge("plan", "research")
    outer.add_edge("research", "answer")
    outer.add_edge("answer", END)
    program_id = new_program_id("loop")
    inputs: Outer = {"question": "why do agents wait?", "notes": [], "rounds": 0, "answer": ""}
    outer.compile().invoke(inputs, ctx.config(program_id))  # type: ignore[call-overload]
    return program_id


TOOL_SECONDS = 0.5
"""How long the tool program's tool runs (a gap the timeline must show between its calls)."""


class Lookup(TypedDict):
    question: str
    facts: str
    answer: str


@tool
def lookup_facts(query: str) -> str:
    """Look facts up in a slow store."""
    time.sleep(TOOL_SECONDS)
    return f"facts about {query}"


def run_tool_program(ctx: RunContext) -> str:
    """ask (LLM) -> act (runs the ``lookup_facts`` tool) -> answer (LLM)."""
    llm = ctx.llm(16)

    def ask(state: Lookup) -> dict[str, Any]:
        return {"question": str(llm.invoke(f"What to look up for {state['question']}?").content)}

    def act(state: Lookup) -> dict[str, Any]:
        return {"facts": lookup_facts.invoke({"query": state["question"][:40]})}

    def answer(state: Lookup) -> dict[str, Any]:
        return {"answer": str(llm.invoke(f"Answer from: {state['facts']}").content)}

    graph = StateGraph(Lookup)
    graph.add_node("ask", ask)
    graph.add_node("act", act)
    graph.add_node("answer", answer)
    graph.add_edge(START, "ask")
    graph.add_edge("ask", "act")
    graph.add_edge("act", "answer")
    graph.add_edge("answer", END)
    program_id = new_program_id("tool")
    inputs: Lookup = {"question": "why do agents wait?", "facts": "", "answer": ""}
    graph.compile().invoke(inputs, ctx.config(program_id))  # type: ignore[call-overload]
    return program_id
