"""Value types that describe a workload: programs as DAGs of LLM calls.

Workload generators produce them; the simulator, the bench command and the real-engine
drivers consume them. Prompts are sequences of segments whose keys identify their content,
so prefix caches and cache-aware routers can see which calls share a prefix.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PromptSegment:
    """A run of prompt tokens with one identity (a system prompt, a tool doc, a past turn)."""

    key: str
    """Content identity: two segments with the same key hold the same tokens."""
    num_tokens: int
    """Length of the segment in tokens."""


@dataclass(frozen=True, slots=True)
class CallSpec:
    """One LLM call of a program."""

    call_id: str
    """Unique within the workload."""
    thread_id: str
    """The program thread that issues the call."""
    parent_ids: tuple[str, ...]
    """Calls that must finish before this one is sent."""
    prompt: tuple[PromptSegment, ...]
    """The prompt, as content segments in order."""
    output_tokens: int
    """Tokens the call generates (known to the workload, hidden from non-oracle policies)."""
    delay_before: float = 0.0
    """Seconds of tool or human time between the last parent finishing and this call's send."""

    @property
    def prompt_tokens(self) -> int:
        return sum(s.num_tokens for s in self.prompt)

    @property
    def output_key(self) -> str:
        """Segment key under which later calls see this call's output."""
        return f"{self.call_id}:out"


@dataclass(frozen=True, slots=True)
class ProgramSpec:
    """One agentic program: a DAG of calls in topological order."""

    program_id: str
    arrival_time: float
    """Seconds from the start of the run."""
    calls: tuple[CallSpec, ...]
    """Calls in a topological order of ``parent_ids``."""
    workload: str = ""
    """Name of the workload that generated it (``sharegpt``, ``bfcl``, ``lats``...)."""
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def num_calls(self) -> int:
        return len(self.calls)

    @property
    def output_tokens(self) -> int:
        return sum(c.output_tokens for c in self.calls)

    @property
    def is_multi_threaded(self) -> bool:
        return len({c.thread_id for c in self.calls}) > 1
