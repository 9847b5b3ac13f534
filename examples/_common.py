"""What the example programs share: run settings, the model client, and DAG shapes.

Every example is a real LangGraph app whose LLM calls go to Autellix through
``autellix_graph.chat_openai``. In *replay* mode the decisions a model would make (which tool
with which arguments, how many branches, when to stop) come from the task's ground truth or a
seeded policy, while every LLM call is still made for real with a realistic ``max_tokens``;
so the tiny dummy-weight model that writes noise still drives the full program. In *model*
mode the examples act on the model's own output.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import autellix_graph
from autellix_graph import protocol

Mode = Literal["replay", "model"]
Shape = Counter[tuple[str, frozenset[str]]]
"""Multiset of (call label, labels of the calls it depends on); see :func:`dag_shape`."""


@dataclass(frozen=True, slots=True)
class RunContext:
    """How to run an example."""

    base_url: str
    """Autellix service root."""
    mode: Mode = "replay"
    seed: int = 0
    token_scale: float = 1.0
    """Multiplies every ``max_tokens`` (tests use a small scale to run fast)."""
    model: str | None = None
    """Model name to request (default: ``AUTELLIX_MODEL`` or the service's default)."""

    def llm(self, max_tokens: int) -> Any:
        """A ``ChatOpenAI`` on the service, tagged by the middleware, capped at ``max_tokens``."""
        return autellix_graph.chat_openai(
            base_url=self.base_url,
            model=self.model,
            max_tokens=max(1, round(max_tokens * self.token_scale)),
            temperature=0.7,
            max_retries=2,
        )

    def config(self, program_id: str, **extra: Any) -> dict[str, Any]:
        """A run config naming the program, so callers can look it up in the service."""
        return {"metadata": {protocol.PROGRAM_ID_METADATA_KEY: program_id}, **extra}


@dataclass(frozen=True, slots=True)
class ExampleRun:
    """What one example run did."""

    name: str
    program_id: str
    num_llm_calls: int
    expected: Shape
    """The LLM-call DAG the graph should produce, from the decisions taken."""
    seconds: float
    summary: str
    """One line about the outcome (the answer, the task's state...)."""


@dataclass(slots=True)
class CallCounter:
    """Counts the LLM calls an example makes (for the summary)."""

    count: int = 0
    names: list[str] = field(default_factory=list)

    def __call__(self, name: str) -> None:
        self.count += 1
        self.names.append(name)


def new_program_id(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def shape(*items: tuple[str, Iterable[str]]) -> Shape:
    """An expected shape: ``shape(("plan[1]#1", []), ("map[1]#1", ["plan[1]#1"]))``."""
    return Counter((label, frozenset(parents)) for label, parents in items)


def _segment_name(segment: str) -> str:
    return segment.split(":", 1)[0]


def dag_shape(calls: Sequence[tuple[str, str, Sequence[str]]]) -> Shape:
    """Shape of an LLM-call DAG given (call id, thread id, parent ids) in arrival order.

    A thread (a LangGraph task, ``node:task_id`` segments joined by ``|``) is labelled by its
    path of ``node[k]`` segments, ``k`` numbering the tasks of that node under the same parent
    in the order their first call arrived; a call is ``<thread label>#<n>``, its n-th call.
    Parallel tasks of one node may arrive in any order, and the shape does not change.
    """
    thread_labels: dict[str, str] = {"main": "main"}
    ordinals: Counter[tuple[str, str]] = Counter()

    def label_of(thread_id: str) -> str:
        known = thread_labels.get(thread_id)
        if known is not None:
            return known
        head, _, last = thread_id.rpartition("|")
        parent = label_of(head) if head else ""
        name = _segment_name(last)
        ordinals[(parent, name)] += 1
        label = f"{parent}/{name}[{ordinals[(parent, name)]}]".lstrip("/")
        thread_labels[thread_id] = label
        return label

    per_thread: Counter[str] = Counter()
    labels: dict[str, str] = {}
    for call_id, thread_id, _ in calls:
        per_thread[thread_id] += 1
        labels[call_id] = f"{label_of(thread_id)}#{per_thread[thread_id]}"
    return Counter(
        (labels[call_id], frozenset(labels.get(p, p) for p in parents))
        for call_id, _, parents in calls
    )


def shape_from_program(detail: Mapping[str, Any]) -> Shape:
    """The shape of the DAG the service holds for a program (``GET /v1/programs/{id}``)."""
    calls = [(c["call_id"], c["thread_id"], c["parent_ids"]) for c in detail["calls"]]
    return dag_shape(calls)


def chain(label: str, n: int, first_parents: Iterable[str]) -> list[tuple[str, list[str]]]:
    """``n`` sequential calls of one thread: ``label#1`` (after ``first_parents``) ... ``#n``."""
    items = [(f"{label}#1", list(first_parents))]
    items += [(f"{label}#{i + 1}", [f"{label}#{i}"]) for i in range(1, n)]
    return items
