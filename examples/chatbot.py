"""A chatbot: the assistant answers, a scripted user follows up, until the script ends.

One program per conversation, one thread per assistant turn, each turn depending on the last.
Replay mode takes the number of turns from a seeded policy; the answers are the model's.

    python -m examples.chatbot --base-url http://127.0.0.1:8000
"""

from __future__ import annotations

import operator
import random
import sys
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph

from examples._common import ExampleRun, RunContext, chain, new_program_id, shape, timed

USER_TURNS = (
    "Hi! I am planning a three-day trip to Lisbon in spring. Where should I start?",
    "What neighbourhoods are best to stay in for a first visit, and why?",
    "Could you suggest a day trip outside the city that is easy by train?",
    "Which local dishes should I try, and where would I find them?",
    "Give me a short packing list for the weather that time of year.",
    "Thanks! Can you summarise the plan in five bullet points?",
)
ANSWER_TOKENS = 192
SYSTEM = "You are a helpful, concise travel assistant."


class Chat(TypedDict):
    messages: Annotated[list[AnyMessage], operator.add]
    turns_left: int


def build_graph(ctx: RunContext) -> Any:
    llm = ctx.llm(ANSWER_TOKENS)

    def assistant(state: Chat) -> dict[str, Any]:
        reply = llm.invoke([("system", SYSTEM), *state["messages"]])
        return {"messages": [reply]}

    def user(state: Chat) -> dict[str, Any]:
        asked = sum(isinstance(m, HumanMessage) for m in state["messages"])
        return {
            "messages": [HumanMessage(USER_TURNS[asked % len(USER_TURNS)])],
            "turns_left": state["turns_left"] - 1,
        }

    def more(state: Chat) -> str:
        return "user" if state["turns_left"] > 0 else END

    builder = StateGraph(Chat)
    builder.add_node("assistant", assistant)
    builder.add_node("user", user)
    builder.add_edge(START, "assistant")
    builder.add_conditional_edges("assistant", more, ["user", END])
    builder.add_edge("user", "assistant")
    return builder.compile()


def run(ctx: RunContext) -> ExampleRun:
    turns = random.Random(ctx.seed).randint(3, 5)
    program_id = new_program_id("chatbot")
    inputs = {"messages": [HumanMessage(USER_TURNS[0])], "turns_left": turns - 1}
    result, seconds = timed(lambda: build_graph(ctx).invoke(inputs, ctx.config(program_id)))
    items = chain("assistant[1]", 1, [])
    for turn in range(2, turns + 1):
        items += chain(f"assistant[{turn}]", 1, [f"assistant[{turn - 1}]#1"])
    last = str(result["messages"][-1].content).replace("\n", " ")
    return ExampleRun(
        "chatbot", program_id, turns, shape(*items), seconds, f"{turns} turns; last: {last[:40]!r}"
    )


if __name__ == "__main__":
    from examples.run_all import main

    sys.exit(main(["--only", "chatbot", *sys.argv[1:]]))
