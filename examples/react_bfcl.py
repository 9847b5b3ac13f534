"""A ReAct tool agent on BFCL multi-turn tasks, with BFCL's own executable tool classes.

Per user turn the agent calls the model, runs the tool calls it asked for (each one a tool node
of the DAG), feeds back the results, and calls the model again until it asks for no tool; then
the next user turn comes. Replay mode takes the tool calls from the task's ground truth, one per
step, then a final answer per turn; model mode parses BFCL's ``[func(arg=value)]`` format from
the model's reply. Tasks, ground truth and tool classes are vendored from bfcl-eval (Apache-2.0,
see ``examples/bfcl/NOTICE``).

    python -m examples.react_bfcl --base-url http://127.0.0.1:8000
"""

from __future__ import annotations

import ast
import inspect
import json
import operator
import random
import sys
from functools import cache
from importlib import resources
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, SystemMessage
from langchain_core.tools import StructuredTool
from langgraph.graph import END, START, StateGraph

from examples._common import ExampleRun, RunContext, chain, new_program_id, shape, timed
from examples.bfcl.vendor import CLASSES

STEP_TOKENS, ANSWER_TOKENS = 64, 96
MAX_STEPS_PER_TURN = 8
SYSTEM_PROMPT = (
    "You are an expert in composing functions. You are given a question and a set of possible "
    "functions. Based on the question, you will need to make one or more function/tool calls to "
    "achieve the purpose. If you decide to invoke any of the function(s), you MUST put it in the "
    "format of [func_name1(params_name1=params_value1, params_name2=params_value2...), "
    "func_name2(params)]. You SHOULD NOT include any other text in the response. Once you have "
    "no more functions to call, answer the user in one sentence.\n\nHere is a list of functions "
    "in JSON format that you can invoke.\n"
)
"""BFCL's prompting system prompt (shortened)."""

Call = tuple[str, tuple[Any, ...], dict[str, Any]]


@cache
def load_tasks() -> dict[str, Any]:
    text = resources.files("examples.bfcl").joinpath("tasks.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def parse_calls(text: str) -> list[Call]:
    """``[f(a=1), g('x')]`` (BFCL's format) -> calls; [] if the text is not such a list."""
    text = text.strip()
    if not text.startswith("["):
        text = f"[{text}]"
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return []
    if not isinstance(tree, ast.List):
        return []
    calls: list[Call] = []
    for item in tree.elts:
        if not (isinstance(item, ast.Call) and isinstance(item.func, ast.Name)):
            return []
        try:
            args = tuple(ast.literal_eval(a) for a in item.args)
            kwargs = {k.arg: ast.literal_eval(k.value) for k in item.keywords if k.arg}
        except ValueError:
            return []
        calls.append((item.func.id, args, kwargs))
    return calls


class Agent(TypedDict):
    messages: Annotated[list[AnyMessage], operator.add]
    turn: int
    steps_in_turn: int
    pending: list[str]
    """Calls decided by the last model step, in BFCL's text form."""


class Task:
    """One BFCL task: its tool instances, its LangChain tools and its ground truth."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.task = task
        self.instances: dict[str, Any] = {}
        for name in task["involved_classes"]:
            instance = CLASSES[name]()
            instance._load_scenario(task["initial_config"].get(name, {}))
            self.instances[name] = instance
        docs = load_tasks()["function_docs"]
        self.docs = [doc for name in task["involved_classes"] for doc in docs[name]]
        self.tools = {doc["name"]: self._tool(doc) for doc in self.docs}

    def _method(self, name: str) -> Any:
        for instance in self.instances.values():
            method = getattr(instance, name, None)
            if method is not None and not name.startswith("_"):
                return method
        raise KeyError(name)

    def _tool(self, doc: dict[str, Any]) -> StructuredTool:
        method = self._method(doc["name"])

        def execute(arguments: dict[str, Any]) -> str:
            try:
                return json.dumps(method(**arguments), default=str)
            except Exception as exc:  # a bad call is the model's problem, reported to it
                return json.dumps({"error": f"{type(exc).__name__}: {exc}"})

        return StructuredTool.from_function(
            execute, name=doc["name"], description=str(doc.get("description", ""))[:1000]
        )

    def run_call(self, text: str) -> str:
        """Run one call given as BFCL text; the result (or the error) as JSON text."""
        parsed = parse_calls(text)
        if len(parsed) != 1 or parsed[0][0] not in self.tools:
            return json.dumps({"error": f"cannot run {text!r}"})
        name, args, kwargs = parsed[0]
        try:
            bound = inspect.signature(self._method(name)).bind(*args, **kwargs)
        except TypeError as exc:
            return json.dumps({"error": str(exc)})
        return str(self.tools[name].invoke({"arguments": dict(bound.arguments)}))


def build_graph(ctx: RunContext, task: Task) -> Any:
    stepper, answerer = ctx.llm(STEP_TOKENS), ctx.llm(ANSWER_TOKENS)
    questions = task.task["question"]
    truth = task.task["ground_truth"]
    system = SystemMessage(SYSTEM_PROMPT + json.dumps(task.docs))

    def agent(state: Agent) -> dict[str, Any]:
        turn, step = state["turn"], state["steps_in_turn"]
        if ctx.mode == "replay":
            calls = truth[turn][step : step + 1]
            model = stepper if calls else answerer
            reply = model.invoke([system, *state["messages"]])
            text = f"[{calls[0]}]" if calls else str(reply.content)
        else:
            reply = stepper.invoke([system, *state["messages"]])
            text = str(reply.content)
            calls = [] if step >= MAX_STEPS_PER_TURN else _as_texts(parse_calls(text))
        return {
            "messages": [AIMessage(text)],
            "pending": calls,
            "steps_in_turn": step + 1,
        }

    def tools(state: Agent) -> dict[str, Any]:
        results = [task.run_call(call) for call in state["pending"]]
        return {"messages": [HumanMessage("Execution results: " + "; ".join(results))]}

    def next_turn(state: Agent) -> dict[str, Any]:
        turn = state["turn"] + 1
        return {
            "turn": turn,
            "steps_in_turn": 0,
            "messages": [HumanMessage(_question(questions[turn]))],
        }

    def after_agent(state: Agent) -> str:
        if state["pending"]:
            return "tools"
        return "next_turn" if state["turn"] + 1 < len(questions) else END

    builder = StateGraph(Agent)
    builder.add_node("agent", agent)
    builder.add_node("tools", tools)
    builder.add_node("next_turn", next_turn)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", after_agent, ["tools", "next_turn", END])
    builder.add_edge("tools", "agent")
    builder.add_edge("next_turn", "agent")
    return builder.compile()


def _question(turn: list[dict[str, str]]) -> str:
    return " ".join(m["content"] for m in turn if m.get("role") == "user") or "Continue."


def _as_texts(calls: list[Call]) -> list[str]:
    texts = []
    for name, args, kwargs in calls:
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        texts.append(f"{name}({', '.join(parts)})")
    return texts


def run(ctx: RunContext) -> ExampleRun:
    tasks = load_tasks()["tasks"]
    raw = tasks[random.Random(ctx.seed).randrange(len(tasks))]
    task = Task(raw)
    program_id = new_program_id("react-bfcl")
    inputs = {
        "messages": [HumanMessage(_question(raw["question"][0]))],
        "turn": 0,
        "steps_in_turn": 0,
        "pending": [],
    }
    graph = build_graph(ctx, task)
    config = ctx.config(program_id, recursion_limit=400)
    result, seconds = timed(lambda: graph.invoke(inputs, config))
    steps = sum(len(turn) + 1 for turn in raw["ground_truth"])
    items: list[tuple[str, list[str]]] = []
    for k in range(1, steps + 1):
        items += chain(f"agent[{k}]", 1, [f"agent[{k - 1}]#1"] if k > 1 else [])
    num_calls = sum(isinstance(m, AIMessage) for m in result["messages"])
    results = [str(m.content) for m in result["messages"] if isinstance(m, HumanMessage)]
    failed = sum(r.startswith("Execution results") and '"error"' in r for r in results)
    return ExampleRun(
        "react_bfcl",
        program_id,
        num_calls,
        shape(*items),
        seconds,
        f"{raw['id']}: {len(raw['question'])} turns, {steps - len(raw['question'])} tool calls "
        f"({failed} failed)",
    )


if __name__ == "__main__":
    from examples.run_all import main

    sys.exit(main(["--only", "react_bfcl", *sys.argv[1:]]))
