"""The tracing UI in a real headless Chromium against a known run (see conftest.py): each
view shows what the process table holds, updates live, keeps API keys apart, and shows
untrusted text as text."""

from __future__ import annotations

import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

import autellix_graph
from autellix_graph import protocol
from examples import map_reduce
from examples._common import RunContext
from tests.ui._page import open_ui, program_page
from tests.ui.conftest import KEYS, KnownRun

pytestmark = pytest.mark.timeout(300)

XSS = "<img src=x onerror=alert(1)>"
XSS_ID = "<img/src=x/onerror=alert(1)>"
"""The same attack as a program id (ids are printable ASCII without spaces or commas)."""


def table_program(run: KnownRun, program_id: str) -> dict[str, Any]:
    """The program as ``GET /v1/programs/{id}`` (the table's own API) returns it."""
    with run.api() as client:
        response = client.get(f"/v1/programs/{program_id}")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def ui_trace(run: KnownRun, program_id: str) -> dict[str, Any]:
    with run.api() as client:
        response = client.get("/v1/ui/program", params={"program_id": program_id})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize("which", ["map_reduce", "loop"])
def test_dag_draws_every_node_and_edge_of_the_table(
    known_run: KnownRun, browser: Any, output_dir: Path, which: str
) -> None:
    program_id = (
        known_run.map_reduce.program_id if which == "map_reduce" else known_run.loop_program_id
    )
    table = table_program(known_run, program_id)["dag"]
    ui = program_page(browser, known_run.server.url, "alice", program_id, "alice")
    counts = ui.evaluate("window.autellixUI.view.dag.counts()")
    node_ids = {n["node_id"] for n in table["nodes"]}
    ends = {end for e in table["edges"] for end in (e["source"], e["target"])}
    assert counts["nodes"] == len(table["nodes"])
    assert counts["ghosts"] == len(ends - node_ids)
    assert counts["edges"] == len(table["edges"])
    assert counts["groups"] > 0, "threads and subgraphs are drawn as groups"

    parents: dict[str, set[str]] = defaultdict(set)
    for edge in table["edges"]:
        parents[edge["target"]].add(edge["source"])
    joins = {n: p for n, p in parents.items() if len(p) > 1}
    if which == "map_reduce":
        width = (known_run.map_reduce.num_llm_calls - 2) // 2
        assert any(len(p) >= width for p in joins.values()), "the reduce call joins every map"
    for node_id, expected in joins.items():
        shown = ui.evaluate("id => window.autellixUI.view.dag.parentsOf(id)", node_id)
        assert set(shown) == expected, node_id
    ui.screenshot(output_dir / f"program-{which}.png")
    ui.assert_clean()


def test_dag_layout_is_the_same_across_refreshes_and_runs(
    known_run: KnownRun, browser: Any
) -> None:
    """A second run of the same map-reduce (same documents, new ids, its own arrival order)
    draws the same picture, and a refresh moves nothing."""
    patch = pytest.MonkeyPatch()
    patch.setenv("AUTELLIX_API_KEY", KEYS["alice"])
    autellix_graph.instrument(base_url=known_run.server.url, api_key=KEYS["alice"])
    try:
        again = map_reduce.run(RunContext(known_run.server.url, seed=3, token_scale=0.25))
        autellix_graph.force_flush()
    finally:
        autellix_graph.uninstrument()
        patch.undo()
    layouts = []
    for program_id in (known_run.map_reduce.program_id, again.program_id):
        ui = program_page(browser, known_run.server.url, "alice", program_id, "alice")
        before = ui.evaluate("window.autellixUI.view.dag.positions()")
        ui.wait_refreshed()
        assert ui.evaluate("window.autellixUI.view.dag.positions()") == before
        layouts.append(sorted(map(tuple, before)))
        ui.assert_clean()
    assert layouts[0] == layouts[1]


@pytest.mark.parametrize("which", ["map_reduce", "burst"])
def test_timeline_has_one_bar_per_call_on_its_engine(
    known_run: KnownRun, browser: Any, output_dir: Path, which: str
) -> None:
    program_id = (
        known_run.map_reduce.program_id if which == "map_reduce" else known_run.burst_program_id
    )
    calls = {c["call_id"]: c for c in ui_trace(known_run, program_id)["calls"]}
    table_calls = {c["call_id"]: c for c in table_program(known_run, program_id)["calls"]}
    assert calls.keys() == table_calls.keys()
    ui = program_page(browser, known_run.server.url, "alice", program_id, "alice")
    bars = ui.evaluate("window.autellixUI.view.timeline.bars")
    rows = ui.evaluate("window.autellixUI.view.timeline.chart.getOption().yAxis[0].data")
    assert sorted(b["call_id"] for b in bars) == sorted(table_calls)
    for bar in bars:
        call = table_calls[bar["call_id"]]
        assert bar["engine_id"] == call["engine_id"]
        assert rows[bar["row"]].startswith(f"{call['engine_id']} ·")
        assert bar["wait"] == pytest.approx(call["wait"], abs=1e-6)
        assert bar["num_preemptions"] == calls[bar["call_id"]]["num_preemptions"]
        assert bar["start"] is not None and bar["start"] >= bar["arrival"]
    assert any(b["wait"] > 0 for b in bars), "calls queued behind each other"
    if which == "burst":
        assert any(b["num_preemptions"] > 0 for b in bars), "the KV cache overflowed"
    ui.page.locator("#timeline").screenshot(path=str(output_dir / f"timeline-{which}.png"))
    ui.assert_clean()


def test_programs_view_updates_live_without_reload(
    known_run: KnownRun, browser: Any, output_dir: Path
) -> None:
    ui = open_ui(browser, known_run.server.url, "alice")
    ui.wait_for("() => document.querySelectorAll('#programs-table tbody tr').length >= 2")
    shown = ui.evaluate(
        "[...document.querySelectorAll('#programs-table tbody tr')].map(r => r.dataset.programId)"
    )
    assert {known_run.map_reduce.program_id, known_run.loop_program_id} <= set(shown)
    ui.screenshot(output_dir / "programs.png")
    ui.evaluate("window.__sameDocument = true")
    new_id = f"live-{uuid.uuid4().hex[:8]}"
    with known_run.api() as client:
        client.post("/v1/programs", json={"program_id": new_id}).raise_for_status()
    ui.wait_for(
        "id => [...document.querySelectorAll('#programs-table tbody tr')]"
        ".some(r => r.dataset.programId === id)",
        new_id,
    )
    # Ended, it stays listed from the table's history.
    with known_run.api() as client:
        client.delete(f"/v1/programs/{new_id}").raise_for_status()
    ui.wait_for(
        "id => [...document.querySelectorAll('#programs-table tbody tr')]"
        ".some(r => r.dataset.programId === id && r.className === 'state-finished')",
        new_id,
    )
    assert ui.evaluate("window.__sameDocument") is True, "the page was reloaded"
    ui.assert_clean()


def test_programs_view_filters_and_sorts(known_run: KnownRun, browser: Any) -> None:
    ui = open_ui(browser, known_run.server.url, "alice")
    rows = "[...document.querySelectorAll('#programs-table tbody tr')]"
    ui.wait_for(f"() => {rows}.length >= 3")
    ui.page.fill("#program-filter", "loop-")
    assert ui.evaluate(f"{rows}.map(r => r.dataset.programId)") == [known_run.loop_program_id]
    ui.page.fill("#program-filter", "")
    calls = f"{rows}.map(r => Number(r.children[4].textContent))"
    ui.page.click("th[data-key=num_calls]")
    ascending = ui.evaluate(calls)
    assert ascending == sorted(ascending) and len(ascending) >= 3
    ui.page.click("th[data-key=num_calls]")
    assert ui.evaluate(calls) == sorted(ascending, reverse=True)
    ui.assert_clean()


def test_a_key_sees_only_its_programs_and_the_admin_sees_all(
    known_run: KnownRun, browser: Any
) -> None:
    bob_id = f"bob-{uuid.uuid4().hex[:8]}"
    with known_run.api("bob") as client:
        client.post("/v1/programs", json={"program_id": bob_id}).raise_for_status()
    rows = (
        "[...document.querySelectorAll('#programs-table tbody tr')].map(r => r.dataset.programId)"
    )

    bob = open_ui(browser, known_run.server.url, "bob")
    bob.wait_for(f"() => {rows}.length > 0")
    assert bob.evaluate(rows) == [bob_id]
    assert known_run.map_reduce.program_id not in bob.page.inner_text("body")

    admin = open_ui(browser, known_run.server.url, "admin")
    admin.wait_for(f"() => {rows}.length >= 3")
    assert {bob_id, known_run.map_reduce.program_id} <= set(admin.evaluate(rows))
    # Bob cannot open alice's program, even by naming its owner.
    with known_run.api("bob") as client:
        response = client.get(
            "/v1/ui/program",
            params={"program_id": known_run.map_reduce.program_id, "owner": "alice"},
        )
    assert response.status_code == 404
    bob.assert_clean()
    admin.assert_clean()


def _xss_program(run: KnownRun) -> None:
    """A program whose id, node name and tool name are an HTML injection."""
    with run.api() as client:
        client.post("/v1/programs", json={"program_id": XSS_ID}).raise_for_status()
        spans = []
        for kind, node_id in ((protocol.SPAN_KIND_NODE, "n1"), (protocol.SPAN_KIND_TOOL, "t1")):
            attributes = {
                protocol.ATTR_PROGRAM_ID: XSS_ID,
                protocol.ATTR_SPAN_KIND: kind,
                protocol.ATTR_NODE_ID: node_id,
                protocol.ATTR_NODE_NAME: XSS,
                protocol.ATTR_THREAD_ID: XSS_ID,
            }
            if kind == protocol.SPAN_KIND_TOOL:
                attributes[protocol.ATTR_PARENT_IDS] = "n1"
            spans.append(
                {
                    "traceId": "0" * 31 + "1",
                    "spanId": uuid.uuid4().hex[:16],
                    "name": XSS,
                    "startTimeUnixNano": "1",
                    "endTimeUnixNano": "2",
                    "attributes": [
                        {"key": k, "value": {"stringValue": v}} for k, v in attributes.items()
                    ],
                }
            )
        body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
        client.post("/v1/traces", json=body).raise_for_status()


def test_untrusted_text_is_shown_as_text(known_run: KnownRun, browser: Any) -> None:
    _xss_program(known_run)
    ui = open_ui(browser, known_run.server.url, "alice")
    link = "[...document.querySelectorAll('#programs-table td.id a')]"
    ui.wait_for(f"id => {link}.some(a => a.textContent === id)", XSS_ID)
    assert ui.evaluate("document.querySelectorAll('img').length") == 0

    page = program_page(browser, known_run.server.url, "alice", XSS_ID, "alice")
    assert page.page.inner_text("#program-id") == XSS_ID
    labels = page.evaluate(
        "window.autellixUI.view.dag.cy.nodes('node.call').map(n => n.data('label'))"
    )
    assert XSS in labels
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    page.wait_refreshed()
    ui.assert_clean()
    page.assert_clean()


def test_engines_view_charts_every_engine(
    known_run: KnownRun, browser: Any, output_dir: Path
) -> None:
    ui = open_ui(browser, known_run.server.url, "alice", "/engines")
    ui.wait_for("() => document.querySelectorAll('section.engine').length === 2")
    ui.wait_refreshed()
    engines = ui.evaluate("[...document.querySelectorAll('section.engine')].map(s => s.innerText)")
    assert all("healthy" in text for text in engines)
    series = ui.evaluate(
        "window.autellixUI.view.view.panels.get('sim-0').chart.getOption().series.map(s => s.name)"
    )
    assert {"Q1", "running", "KV usage", "cache hit rate", "preemptions", "healthy"} <= set(series)
    ui.screenshot(output_dir / "engines.png")
    ui.assert_clean()


def test_page_forbids_inline_scripts(known_run: KnownRun) -> None:
    response = httpx.get(f"{known_run.server.url}/ui")
    policy = response.headers["content-security-policy"]
    script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert script_src.split() == ["script-src", "'self'"]
    assert "<script>" not in response.text
    assert httpx.get(f"{known_run.server.url}/ui/static/../app.py").status_code == 404


def test_json_api_is_in_the_openapi_schema(known_run: KnownRun) -> None:
    paths = httpx.get(f"{known_run.server.url}/openapi.json").json()["paths"]
    assert {"/v1/ui/programs", "/v1/ui/program", "/v1/ui/engines"} <= set(paths)
    assert "/ui" not in paths


def test_engines_view_shows_an_engine_leave_and_rejoin_rotation(
    known_run: KnownRun, browser: Any
) -> None:
    """Runs last in this module: it takes sim-1 out of rotation for a moment."""
    ui = open_ui(browser, known_run.server.url, "alice", "/engines")
    status = "document.querySelector('section.engine[data-engine-id=\"sim-1\"] h3 span')"
    ui.wait_for(f"() => {status} && {status}.textContent.startsWith('healthy · 0 restarts')")
    series = "window.autellixUI.view.view.data.engines.find(e => e.engine_id === 'sim-1').series"
    engine = known_run.server.engine("sim-1")
    known_run.server.run(engine.fail, "taken down by the test")
    try:  # down until a sample of the health series has seen it
        ui.wait_for(f"() => {status}.textContent.startsWith('unhealthy')")
        ui.wait_for(f"() => {series}.healthy.includes(false)")
    finally:
        known_run.server.run(engine.recover)
    ui.wait_for(f"() => {status}.textContent.startsWith('healthy · 1 restarts')")
    ui.wait_for(f"() => {series}.healthy.at(-1) === true")
    ui.assert_clean()
