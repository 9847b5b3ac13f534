// The tracing UI's entry point: navigation, the API key, and a 1 s refresh of the view on
// screen (paused while the tab is hidden). The page keeps no state of its own beyond the
// view's widgets: everything shown comes from the last /v1/ui answer.

import { ApiError, api, apiKey, setApiKey } from "./api.js";
import { DagView } from "./dag.js";
import { clear, fmtSeconds, h } from "./dom.js";
import { EnginesView } from "./engines.js";
import { ProgramsView } from "./programs.js";
import { parseRoute } from "./route.js";
import { SchedulingView } from "./scheduling.js";
import { TimelineView } from "./timeline.js";

const REFRESH_MS = 1000;

class ProgramView {
  constructor(root, programId, owner) {
    this.programId = programId;
    this.owner = owner;
    this.trace = null;
    this.header = h("div", { id: "program-header", className: "summary" });
    const dagBox = h("div", { id: "dag", className: "panel tall" });
    const timelineBox = h("div", { id: "timeline", className: "panel" });
    const scheduleBox = h("div", { id: "scheduling", className: "panel short" });
    this.details = h("div", { id: "node-details", className: "summary details" }, "Click a node for its details.");
    this.selected = null;
    root.append(
      h("h2", {}, "Program ", h("code", { id: "program-id" }, programId)),
      this.header,
      h("h3", {}, "DAG ", h("small", {}, "click a group to collapse it, a node for its details; red: critical path")),
      dagBox,
      this.details,
      h("h3", {}, "Timeline ", h("small", {}, "pale: waiting, solid: running, red: preempted (▼ count), green: tool time, grey: other time between calls")),
      timelineBox,
      h("h3", {}, "Scheduling"),
      scheduleBox,
    );
    this.dag = new DagView(dagBox);
    this.dag.onSelect = (nodeId) => {
      this.selected = nodeId;
      this.showDetails();
    };
    this.timeline = new TimelineView(timelineBox);
    this.scheduling = new SchedulingView(scheduleBox);
  }

  async refresh() {
    const trace = await api.program(this.programId, this.owner);
    this.trace = trace;
    const p = trace.program;
    clear(this.header).append(
      h("span", {}, `state ${p.state}`),
      h("span", {}, `owner ${p.owner || "–"}`),
      h("span", {}, `${p.num_threads} threads`),
      h("span", {}, `${p.num_calls} calls`),
      h("span", {}, `service ${fmtSeconds(p.service)}`),
      h("span", {}, `wait ${fmtSeconds(p.total_wait)}`),
      h("span", {}, `queue ${p.level === null ? "–" : `Q${p.level}`}`),
      h("span", {}, `engines ${p.engine_ids.join(", ") || "–"}`),
    );
    await this.dag.update(trace);
    this.timeline.update(trace);
    this.scheduling.update(trace);
    if (this.selected !== null) this.showDetails();
  }

  /** The selected node's facts: kind, state, times, and for an LLM call its wait, run,
   * preemptions and the tool time before it; for a tool, the gap between calls it ran in. */
  showDetails() {
    const trace = this.trace;
    const node = trace && trace.nodes.find((n) => n.node_id === this.selected);
    if (!node) return;
    const span = (label, value) => h("span", {}, h("b", {}, `${label} `), value);
    const t0 = trace.program.created;
    const at = (t) => (t === null || t === undefined ? "–" : `+${fmtSeconds(Math.max(0, t - t0))}`);
    const items = [
      span(node.kind, node.name || node.node_id),
      span("id", node.node_id),
      span("status", node.status),
      span("thread", node.thread_id),
      span("start", at(node.start)),
      span("end", at(node.end)),
      span("took", node.start !== null && node.end !== null ? fmtSeconds(node.end - node.start) : "–"),
    ];
    const call = trace.calls.find((c) => c.call_id === node.node_id);
    if (call) {
      const run = call.start !== null && call.end !== null ? fmtSeconds(call.end - call.start) : "–";
      items.push(span("engine", call.engine_id || "–"), span("wait", fmtSeconds(call.wait)), span("run", run));
      const timed = call.preemptions.map(([a, b]) => `${at(a)} for ${b === null ? "…" : fmtSeconds(b - a)}`);
      items.push(span("preempted", `${call.num_preemptions}×${timed.length ? ` (${timed.join(", ")})` : ""}`));
      if (call.promotions.length) items.push(span("promoted to Q1", call.promotions.map(at).join(", ")));
    }
    const gaps = (trace.gaps || []).filter((g) => g.call_id === node.node_id || g.tool_node_ids.includes(node.node_id));
    for (const g of gaps) {
      const tools = g.tool_names.length ? g.tool_names.join(", ") : "no tool reported";
      items.push(span("tool time", `${fmtSeconds(g.end - g.start)} after ${g.after_call_id} before ${g.call_id} (${tools})`));
    }
    clear(this.details).append(...items);
  }

  resize() {
    this.dag.resize();
    this.timeline.resize();
    this.scheduling.resize();
  }
}

class EnginesPage {
  constructor(root) {
    this.view = new EnginesView(h("div", { id: "engines" }));
    root.append(h("h2", {}, "Engines"), this.view.root);
  }

  async refresh() {
    this.view.update(await api.engines());
  }

  resize() {
    this.view.resize();
  }
}

class App {
  constructor() {
    this.main = document.getElementById("view");
    this.status = document.getElementById("status");
    this.view = null;
    this.busy = false;
    this.takeKeyFromHash();
    this.buildKeyForm();
    window.addEventListener("hashchange", () => this.route());
    window.addEventListener("resize", () => this.view && this.view.resize && this.view.resize());
    document.addEventListener("visibilitychange", () => this.tick());
    setInterval(() => this.tick(), REFRESH_MS);
    this.route();
  }

  /** ``#...&key=SECRET`` sets the key once and is removed from the address bar. */
  takeKeyFromHash() {
    const route = parseRoute(location.hash);
    const key = route.params.get("key");
    if (key === null) return;
    setApiKey(key);
    route.params.delete("key");
    const rest = route.params.toString();
    history.replaceState(null, "", `#${route.path}${rest ? `?${rest}` : ""}`);
  }

  buildKeyForm() {
    const input = h("input", {
      id: "api-key",
      type: "password",
      placeholder: "API key",
      autocomplete: "off",
      value: apiKey(),
    });
    const form = h(
      "form",
      {
        id: "key-form",
        onsubmit: (e) => {
          e.preventDefault();
          setApiKey(input.value.trim());
          this.route();
        },
      },
      input,
      h("button", { type: "submit" }, "Use key"),
    );
    document.getElementById("key-slot").append(form);
  }

  route() {
    const { path, params } = parseRoute(location.hash);
    clear(this.main);
    for (const a of document.querySelectorAll("nav a")) {
      a.classList.toggle("active", a.getAttribute("href") === `#${path}`);
    }
    if (path === "/program" && params.get("id") !== null) {
      this.view = new ProgramView(this.main, params.get("id"), params.get("owner"));
    } else if (path === "/engines") {
      this.view = new EnginesPage(this.main);
    } else {
      this.view = new ProgramsView(this.main);
    }
    window.autellixUI.view = this.view;
    this.busy = false;
    this.tick();
  }

  async tick() {
    if (this.busy || document.hidden || !this.view) return;
    this.busy = true;
    const view = this.view;
    try {
      await view.refresh();
      this.setStatus(`updated ${new Date().toLocaleTimeString()}`, "ok");
      window.autellixUI.refreshes += 1;
    } catch (error) {
      const auth = error instanceof ApiError && error.status === 401;
      this.setStatus(auth ? "enter a valid API key" : String(error.message || error), "bad");
    } finally {
      if (view === this.view) this.busy = false;
    }
  }

  setStatus(text, kind) {
    this.status.textContent = text;
    this.status.className = kind;
  }
}

// A read-only handle for tests and for the curious: the view on screen and its widgets.
window.autellixUI = { view: null, refreshes: 0 };
window.addEventListener("DOMContentLoaded", () => new App());
