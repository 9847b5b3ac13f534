"""Map-reduce with ``Send``: plan, summarise each document in parallel, then combine.

Each map task runs a nested subgraph (draft, then refine), so the program has parallel threads
and nested ones. Replay mode picks how many documents from a seeded policy.

    python -m examples.map_reduce --base-url http://127.0.0.1:8000
"""

from __future__ import annotations

import operator
import random
import sys
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from examples._common import ExampleRun, RunContext, new_program_id, shape, timed

DOCUMENTS = (
    "Quarterly revenue grew 12% on strong subscription renewals in Europe.",
    "The new data centre in Ohio cut median API latency from 180 ms to 95 ms.",
    "Support tickets fell 20% after the onboarding guide was rewritten.",
    "Two enterprise customers churned, citing missing single sign-on.",
    "Hiring slowed: 14 of 30 planned engineering roles were filled.",
    "The mobile app reached 4.7 stars after the offline-mode release.",
    "Cloud costs rose 8%, mostly from storage of raw event logs.",
    "A partnership with a payments provider launches next quarter.",
)
PLAN_TOKENS, DRAFT_TOKENS, REFINE_TOKENS, REDUCE_TOKENS = 64, 128, 96, 256


class Report(TypedDict):
    documents: list[str]
    summaries: Annotated[list[str], operator.add]
    plan: str
    report: str


class Summary(TypedDict):
    document: str
    draft: str
    summaries: Annotated[list[str], operator.add]


def build_graph(ctx: RunContext) -> Any:
    planner, drafter, refiner, reducer = (
        ctx.llm(n) for n in (PLAN_TOKENS, DRAFT_TOKENS, REFINE_TOKENS, REDUCE_TOKENS)
    )

    def plan(state: Report) -> dict[str, Any]:
        prompt = "Plan a one-page status report from these notes:\n" + "\n".join(state["documents"])
        return {"plan": str(planner.invoke(prompt).content)}

    def fan_out(state: Report) -> list[Send]:
        return [Send("summarize", {"document": d, "summaries": []}) for d in state["documents"]]

    def draft(state: Summary) -> dict[str, Any]:
        return {
            "draft": str(drafter.invoke(f"Summarise in two sentences: {state['document']}").content)
        }

    def refine(state: Summary) -> dict[str, Any]:
        text = refiner.invoke(f"Tighten this summary to one sentence: {state['draft']}").content
        return {"summaries": [str(text)]}

    def reduce(state: Report) -> dict[str, Any]:
        prompt = f"Plan: {state['plan']}\nWrite the report from:\n" + "\n".join(state["summaries"])
        return {"report": str(reducer.invoke(prompt).content)}

    inner = StateGraph(Summary)
    inner.add_node("draft", draft)
    inner.add_node("refine", refine)
    inner.add_edge(START, "draft")
    inner.add_edge("draft", "refine")

    outer = StateGraph(Report)
    outer.add_node("plan", plan)
    outer.add_node("summarize", inner.compile())
    outer.add_node("reduce", reduce)
    outer.add_edge(START, "plan")
    outer.add_conditional_edges("plan", fan_out, ["summarize"])
    outer.add_edge("summarize", "reduce")
    outer.add_edge("reduce", END)
    return outer.compile()


def run(ctx: RunContext) -> ExampleRun:
    rng = random.Random(ctx.seed)
    documents = rng.sample(DOCUMENTS, rng.randint(3, 6))
    program_id = new_program_id("map-reduce")
    inputs = {"documents": documents, "summaries": [], "plan": "", "report": ""}
    result, seconds = timed(lambda: build_graph(ctx).invoke(inputs, ctx.config(program_id)))
    width = len(documents)
    items: list[tuple[str, list[str]]] = [("plan[1]#1", [])]
    for k in range(1, width + 1):
        items.append((f"summarize[{k}]/draft[1]#1", ["plan[1]#1"]))
        items.append((f"summarize[{k}]/refine[1]#1", [f"summarize[{k}]/draft[1]#1"]))
    items.append(("reduce[1]#1", [f"summarize[{k}]/refine[1]#1" for k in range(1, width + 1)]))
    return ExampleRun(
        "map_reduce",
        program_id,
        2 + 2 * width,
        shape(*items),
        seconds,
        f"{width} documents; report of {len(result['report'])} chars",
    )


if __name__ == "__main__":
    from examples.run_all import main

    sys.exit(main(["--only", "map_reduce", *sys.argv[1:]]))
