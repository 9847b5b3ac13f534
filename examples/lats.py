"""Tree search in the style of LATS: expand candidates in parallel, reflect, select, repeat.

Each iteration sends ``k`` candidate tasks from the best node so far; every candidate makes two
calls in sequence (propose an answer, then reflect on it and score it). The best candidate
becomes the next node to expand; the search stops at a good enough score or the depth limit,
and a final call writes the answer. Replay mode takes the branching factor, the scores and the
stopping point from a seeded policy; model mode reads the scores from the reflections.

    python -m examples.lats --base-url http://127.0.0.1:8000
"""

from __future__ import annotations

import operator
import random
import re
import sys
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from examples._common import ExampleRun, RunContext, chain, new_program_id, shape, timed

QUESTION = "Design a caching strategy for a read-heavy API whose data changes every few minutes."
PROPOSE_TOKENS, REFLECT_TOKENS, ANSWER_TOKENS = 128, 48, 256
MAX_DEPTH = 4
GOOD_ENOUGH = 0.9


class Candidate(TypedDict):
    answer: str
    score: float
    depth: int


class Search(TypedDict):
    best: Candidate
    frontier: Annotated[list[Candidate], operator.add]
    depth: int
    widths: Annotated[list[int], operator.add]
    answer: str


class Branch(TypedDict):
    parent: Candidate
    index: int


def build_graph(ctx: RunContext) -> Any:
    proposer, reflector, writer = (
        ctx.llm(n) for n in (PROPOSE_TOKENS, REFLECT_TOKENS, ANSWER_TOKENS)
    )
    policy = random.Random(ctx.seed)

    def expand(state: Search) -> dict[str, Any]:
        return {"widths": [policy.randint(2, 4)], "frontier": []}

    def branch_out(state: Search) -> list[Send]:
        width = state["widths"][-1]
        return [Send("candidate", {"parent": state["best"], "index": i}) for i in range(width)]

    def candidate(state: Branch) -> dict[str, Any]:
        parent = state["parent"]
        proposal = str(
            proposer.invoke(
                f"Question: {QUESTION}\nImprove on: {parent['answer'] or '(nothing yet)'}\n"
                f"Variant {state['index']}:"
            ).content
        )
        reflection = str(
            reflector.invoke(
                f"Score from 0 to 1 how well this answers {QUESTION!r}: {proposal}"
            ).content
        )
        seed = hash((ctx.seed, parent["depth"], state["index"])) & 0xFFFF
        score = _score(reflection) if ctx.mode == "model" else random.Random(seed).random()
        return {"frontier": [Candidate(answer=proposal, score=score, depth=parent["depth"] + 1)]}

    def select(state: Search) -> dict[str, Any]:
        newest = state["frontier"][-state["widths"][-1] :]
        best = max(newest, key=lambda c: c["score"])
        return {"best": best, "depth": state["depth"] + 1}

    def stop_or_continue(state: Search) -> str:
        if state["best"]["score"] >= GOOD_ENOUGH or state["depth"] >= MAX_DEPTH:
            return "finish"
        return "expand"

    def finish(state: Search) -> dict[str, Any]:
        text = writer.invoke(
            f"Write the final answer to {QUESTION!r} from: {state['best']['answer']}"
        )
        return {"answer": str(text.content)}

    builder = StateGraph(Search)
    builder.add_node("expand", expand)
    builder.add_node("candidate", candidate)
    builder.add_node("select", select)
    builder.add_node("finish", finish)
    builder.add_edge(START, "expand")
    builder.add_conditional_edges("expand", branch_out, ["candidate"])
    builder.add_edge("candidate", "select")
    builder.add_conditional_edges("select", stop_or_continue, ["expand", "finish"])
    builder.add_edge("finish", END)
    return builder.compile()


def _score(reflection: str) -> float:
    match = re.search(r"(?<![\d.])(0(?:\.\d+)?|1(?:\.0+)?)(?![\d.])", reflection)
    return float(match.group(1)) if match else 0.0


def run(ctx: RunContext) -> ExampleRun:
    program_id = new_program_id("lats")
    inputs = {
        "best": Candidate(answer="", score=0.0, depth=0),
        "frontier": [],
        "depth": 0,
        "widths": [],
        "answer": "",
    }
    graph = build_graph(ctx)
    result, seconds = timed(lambda: graph.invoke(inputs, ctx.config(program_id)))
    items: list[tuple[str, list[str]]] = []
    previous: list[str] = []
    done = 0
    for width in result["widths"]:
        labels = [f"candidate[{done + i}]" for i in range(1, width + 1)]
        for label in labels:
            items += chain(label, 2, previous)
        previous = [f"{label}#2" for label in labels]
        done += width
    items.append(("finish[1]#1", previous))
    return ExampleRun(
        "lats",
        program_id,
        2 * done + 1,
        shape(*items),
        seconds,
        f"depth {result['depth']}, widths {result['widths']}, best score "
        f"{result['best']['score']:.2f}",
    )


if __name__ == "__main__":
    from examples.run_all import main

    sys.exit(main(["--only", "lats", *sys.argv[1:]]))
