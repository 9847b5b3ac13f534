"""What the engines and the front end report between and inside calls, drawn in a real
headless Chromium: tool time between two calls (timeline bar and DAG node details), each
preemption's time and length, and the anti-starvation rule's promotions per call."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import autellix_graph
from autellix_backend.core import SchedulerConfig
from autellix_backend.server import EngineSpec, ServerConfig
from autellix_protocol.headers import HEADER_CALL_ID, HEADER_PROGRAM_ID
from examples._common import RunContext
from tests.server.conftest import LiveServer
from tests.ui._page import program_page
from tests.ui._programs import TOOL_SECONDS, run_tool_program
from tests.ui.conftest import KEYS

pytestmark = pytest.mark.timeout(300)

STARVED = "starved"
LONG_CALL = "long"
TAP = (
    "id => { window.autellixUI.view.dag.cy.nodes('node.call')"
    ".filter(n => n.data('nodeId') === id).emit('tap'); }"
)
"""Click the DAG node with table id ``id`` (returns nothing: a Cytoscape collection is big)."""


@dataclass(frozen=True, slots=True)
class EventsRun:
    server: LiveServer
    tool_program_id: str

    def trace(self, program_id: str) -> dict[str, Any]:
        with self.server.client(api_key=KEYS["alice"]) as client:
            response = client.get("/v1/ui/program", params={"program_id": program_id})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


def _starve(server: LiveServer) -> None:
    """One long call on a one-seat engine, then fresh programs that keep taking its seat:
    the long call is preempted again and again, and with beta 0.5 its waiting soon earns it
    Q1 back (each time, until the next fresh program arrives)."""

    def call(program_id: str, call_id: str, max_tokens: int) -> None:
        headers = {HEADER_PROGRAM_ID: program_id, HEADER_CALL_ID: call_id}
        body = {"model": "sim", "messages": [{"role": "user", "content": "go"}]}
        with server.client(api_key=KEYS["alice"]) as client:
            response = client.post(
                "/v1/chat/completions", json={**body, "max_tokens": max_tokens}, headers=headers
            )
            response.raise_for_status()

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(call, STARVED, LONG_CALL, 400)]
        time.sleep(0.5)
        for i in range(4):
            futures.append(pool.submit(call, f"fresh-{i}", "c", 150))
            time.sleep(0.1)
        for future in futures:
            future.result()


@pytest.fixture(scope="module")
def events_run() -> Iterator[EventsRun]:
    """One simulated engine with one seat and an eager anti-starvation rule; alice runs the
    tool program (alone on the engine), then the starvation scenario."""
    engine = EngineSpec(
        kind="sim", engine_id="sim-0", model="sim", options={"time_scale": 0.2, "max_num_seqs": 1}
    )
    config = ServerConfig(
        engines=(engine,),
        api_keys=KEYS,
        admin_key="admin",
        scheduler=SchedulerConfig(starvation_beta=0.5),
    ).validate()
    server = LiveServer(config).start()
    patch = pytest.MonkeyPatch()
    patch.setenv("AUTELLIX_API_KEY", KEYS["alice"])
    autellix_graph.instrument(base_url=server.url, api_key=KEYS["alice"], sessions=False)
    try:
        tool_program_id = run_tool_program(RunContext(server.url, seed=3, token_scale=0.25))
        autellix_graph.force_flush()
    finally:
        autellix_graph.uninstrument()
        patch.undo()
    _starve(server)
    yield EventsRun(server, tool_program_id)
    server.stop()


def test_tool_time_between_calls_is_a_timeline_bar_and_in_the_node_details(
    events_run: EventsRun, browser: Any, output_dir: Path
) -> None:
    trace = events_run.trace(events_run.tool_program_id)
    calls = sorted(trace["calls"], key=lambda c: c["arrival"])
    assert len(calls) == 2
    first, second = calls
    [tool] = [n for n in trace["nodes"] if n["kind"] == "tool"]
    assert tool["name"] == "lookup_facts"
    assert tool["end"] - tool["start"] >= TOOL_SECONDS
    [gap] = trace["gaps"]
    assert gap["after_call_id"] == first["call_id"] and gap["call_id"] == second["call_id"]
    assert gap["start"] == first["end"] and gap["end"] == second["arrival"]
    assert gap["end"] - gap["start"] >= TOOL_SECONDS
    assert gap["tool_node_ids"] == [tool["node_id"]] and gap["tool_names"] == ["lookup_facts"]
    assert gap["start"] <= tool["start"] and tool["end"] <= gap["end"]

    ui = program_page(browser, events_run.server.url, "alice", events_run.tool_program_id, "alice")
    timeline = "window.autellixUI.view.timeline"
    [bar_gap] = ui.evaluate(f"{timeline}.gaps")
    rows = {b["call_id"]: b["row"] for b in ui.evaluate(f"{timeline}.bars")}
    assert bar_gap["row"] == rows[second["call_id"]], "drawn on the row of the call it delayed"
    assert bar_gap["tools"] == ["lookup_facts"]
    # Each answer converts the table's clock to Unix time anew: equal to a microsecond.
    assert bar_gap["start"] == pytest.approx(gap["start"], abs=1e-3)
    assert bar_gap["end"] == pytest.approx(gap["end"], abs=1e-3)
    series = ui.evaluate(f"{timeline}.chart.getOption().series.map(s => [s.name, s.data.length])")
    assert ["tool time", 1] in series

    # A click on the tool node shows its times and the gap it ran in.
    ui.evaluate(TAP, tool["node_id"])
    details = ui.page.inner_text("#node-details")
    assert "lookup_facts" in details and "tool time" in details and "took" in details
    assert first["call_id"] in details and second["call_id"] in details
    ui.evaluate(TAP, second["call_id"])
    details = ui.page.inner_text("#node-details")
    assert "tool time" in details and "engine sim-0" in details.replace("\n", " ")
    ui.evaluate(TAP, tool["node_id"])
    ui.wait_refreshed()  # the details stay and follow the refreshes
    assert "lookup_facts" in ui.page.inner_text("#node-details")
    ui.screenshot(output_dir / "program-tool.png")
    ui.page.locator("#timeline").screenshot(path=str(output_dir / "timeline-tool.png"))
    ui.assert_clean()


def test_preemptions_are_drawn_at_their_times(
    events_run: EventsRun, browser: Any, output_dir: Path
) -> None:
    [call] = [c for c in events_run.trace(STARVED)["calls"] if c["call_id"] == LONG_CALL]
    spans = call["preemptions"]
    assert call["num_preemptions"] >= 2, "fresh programs took the long call's seat"
    assert len(spans) == call["num_preemptions"]
    for start, end in spans:
        assert call["start"] <= start < end <= call["end"]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans)), "in order"

    ui = program_page(browser, events_run.server.url, "alice", STARVED, "alice")
    [bar] = ui.evaluate("window.autellixUI.view.timeline.bars")
    assert len(bar["preemptions"]) == len(spans)
    for shown, span in zip(bar["preemptions"], spans, strict=True):
        assert shown == pytest.approx(span, abs=1e-3)
    assert bar["num_preemptions"] == call["num_preemptions"]
    ui.page.locator("#timeline").screenshot(path=str(output_dir / "timeline-preemptions.png"))
    ui.assert_clean()


def test_anti_starvation_promotions_are_charted_per_call(
    events_run: EventsRun, browser: Any, output_dir: Path
) -> None:
    [call] = [c for c in events_run.trace(STARVED)["calls"] if c["call_id"] == LONG_CALL]
    promotions = call["promotions"]
    assert promotions, "the long call waited past beta times its service"
    assert all(call["arrival"] <= t <= call["end"] for t in promotions)
    assert promotions == sorted(promotions)

    ui = program_page(browser, events_run.server.url, "alice", STARVED, "alice")
    shown = ui.evaluate("window.autellixUI.view.scheduling.promotions")
    assert [p["t"] for p in shown] == pytest.approx(promotions, abs=1e-3)
    assert {p["call_id"] for p in shown} == {LONG_CALL}
    series = ui.evaluate(
        "window.autellixUI.view.scheduling.chart.getOption().series"
        ".map(s => [s.name, s.data.length])"
    )
    assert ["anti-starvation promotion", len(promotions)] in series
    ui.evaluate(TAP, LONG_CALL)
    details = ui.page.inner_text("#node-details")
    assert "promoted to Q1" in details and f"preempted {call['num_preemptions']}\u00d7" in details
    ui.page.locator("#scheduling").screenshot(path=str(output_dir / "scheduling-promotions.png"))
    ui.assert_clean()
