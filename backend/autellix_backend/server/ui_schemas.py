"""Response models of the tracing UI's read-only JSON API (``/v1/ui/...``).

Times are Unix seconds; durations are seconds. Ids are as their owner knows them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class UiProgramRow(BaseModel):
    """One program in the Programs view."""

    program_id: str
    owner: str | None = Field(description="Name of the API key that owns it (None: no auth).")
    state: str = Field(description="``running`` (calls in flight), ``idle`` or ``finished``.")
    num_threads: int
    num_calls: int
    num_active_calls: int
    service: float = Field(description="Attained service: the program's scheduling priority.")
    total_wait: float = Field(description="Summed waiting time of its finished calls.")
    level: int | None = Field(description="Queue level its service puts it in (1 is Q1).")
    engine_ids: list[str]
    created: float
    age_s: float


class UiProgramList(BaseModel):
    now: float
    data: list[UiProgramRow]


class UiNode(BaseModel):
    node_id: str
    kind: str = Field(description="``node``, ``llm``, ``tool`` or ``interrupt``.")
    name: str
    thread_id: str
    status: str
    on_critical_path: bool
    start: float | None = Field(
        default=None, description="When it started (an LLM call: its arrival; others: its span)."
    )
    end: float | None = Field(default=None, description="When it ended (None: running, unknown).")


class UiEdge(BaseModel):
    source: str
    target: str
    on_critical_path: bool


class UiThread(BaseModel):
    thread_id: str
    parent_thread_id: str | None


class UiCall(BaseModel):
    """One LLM call, as the timeline draws it."""

    call_id: str
    thread_id: str
    engine_id: str | None
    status: str
    arrival: float
    start: float | None = Field(description="First output from the engine (its wait ended).")
    end: float | None
    wait: float
    service: float
    num_preemptions: int
    level: int = Field(description="Queue level the call started in (1 is Q1).")
    preemptions: list[tuple[float, float | None]] = Field(
        default_factory=list,
        description="Each preemption's start and end, as its engine reported (end None: "
        "still preempted); empty when the engine reports counts only.",
    )
    promotions: list[float] = Field(
        default_factory=list,
        description="Times the engine's anti-starvation rule moved the call to Q1.",
    )


class UiToolGap(BaseModel):
    """Time between an LLM call's end and the arrival of the call that depends on it: the
    program ran a tool (or other non-LLM work) there, not the engines."""

    call_id: str = Field(description="The call that came after the gap.")
    after_call_id: str = Field(description="Its latest-ending parent call (where the gap began).")
    thread_id: str
    start: float
    end: float
    tool_node_ids: list[str] = Field(description="Tool nodes between the two calls in the DAG.")
    tool_names: list[str]


class UiSchedule(BaseModel):
    """The program's attained service and queue level over time, as the gateway sampled."""

    t: list[float]
    service: list[float]
    level: list[int]
    promotions: list[float] = Field(description="Times its queue level went down.")


class UiProgramTrace(BaseModel):
    """Everything the Program view draws: its row, DAG, calls and scheduling history."""

    now: float
    program: UiProgramRow
    nodes: list[UiNode]
    edges: list[UiEdge]
    threads: list[UiThread]
    calls: list[UiCall]
    critical_path: list[str] = Field(description="Node ids on the longest service path.")
    gaps: list[UiToolGap] = Field(
        default_factory=list, description="Tool (non-LLM) time between dependent calls."
    )
    num_dropped_nodes: int
    schedule: UiSchedule


class UiEngineSeries(BaseModel):
    """Samples of one engine, oldest first; all lists have the length of ``t``."""

    t: list[float]
    running: list[int]
    waiting: list[int]
    queues: list[list[int]] = Field(description="Per priority level (Q1 first), calls queued.")
    kv_usage: list[float | None]
    cache_hit_rate: list[float | None] = Field(description="Over each sampling interval.")
    preemptions: list[int] = Field(description="Preemptions reported in each interval.")
    healthy: list[bool]


class UiEngine(BaseModel):
    engine_id: str
    model: str
    healthy: bool
    restarts: int = Field(description="Times the engine came back into rotation.")
    num_running: int
    num_waiting: int
    series: UiEngineSeries


class UiEngineList(BaseModel):
    now: float
    engines: list[UiEngine]
