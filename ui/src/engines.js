// Engines view: per engine over time, its queue occupancy per priority level, running batch,
// KV usage and prefix-cache hit rate, preemptions, and health with its restarts.

import { SAFE_TOOLTIP, makeChart } from "./charts.js";
import { clear, h } from "./dom.js";

function engineOption(engine, now) {
  const s = engine.series;
  const t0 = s.t.length ? s.t[0] : now;
  const at = (values) => s.t.map((t, i) => [t - t0, values[i]]);
  const levels = s.queues.map((values, i) => ({
    type: "line",
    name: `Q${i + 1}`,
    stack: "queue",
    areaStyle: {},
    showSymbol: false,
    data: at(values),
  }));
  const grid = (top, height) => ({ left: 50, right: 20, top: `${top}%`, height: `${height}%` });
  const axis = (index) => ({ type: "value", gridIndex: index, axisLabel: { show: index === 2 } });
  return {
    animation: false,
    tooltip: { ...SAFE_TOOLTIP, trigger: "axis" },
    legend: { top: 0, type: "scroll" },
    grid: [grid(10, 24), grid(42, 22), grid(72, 20)],
    xAxis: [axis(0), axis(1), axis(2)],
    yAxis: [
      { type: "value", gridIndex: 0, name: "calls", minInterval: 1 },
      { type: "value", gridIndex: 1, name: "share", min: 0, max: 1 },
      { type: "value", gridIndex: 2, name: "count", minInterval: 1 },
    ],
    series: [
      ...levels,
      { type: "line", name: "running", data: at(s.running), showSymbol: false, lineStyle: { width: 2 } },
      { type: "line", name: "KV usage", xAxisIndex: 1, yAxisIndex: 1, data: at(s.kv_usage), showSymbol: false },
      { type: "line", name: "cache hit rate", xAxisIndex: 1, yAxisIndex: 1, data: at(s.cache_hit_rate), showSymbol: false },
      { type: "bar", name: "preemptions", xAxisIndex: 2, yAxisIndex: 2, data: at(s.preemptions) },
      { type: "line", name: "healthy", step: "end", xAxisIndex: 2, yAxisIndex: 2, data: at(s.healthy.map(Number)), showSymbol: false },
    ],
  };
}

export class EnginesView {
  constructor(root) {
    this.root = root;
    this.panels = new Map();
    this.data = null;
  }

  update(body) {
    this.data = body;
    const ids = body.engines.map((e) => e.engine_id);
    if (ids.join("\n") !== [...this.panels.keys()].join("\n")) this.rebuild(body.engines);
    for (const engine of body.engines) {
      const panel = this.panels.get(engine.engine_id);
      panel.status.textContent = `${engine.healthy ? "healthy" : "unhealthy"} · ${engine.restarts} restarts · ${engine.num_running} running, ${engine.num_waiting} waiting`;
      panel.status.className = engine.healthy ? "ok" : "bad";
      panel.chart.setOption(engineOption(engine, body.now), { notMerge: true });
    }
  }

  rebuild(engines) {
    for (const p of this.panels.values()) p.chart.dispose();
    this.panels.clear();
    clear(this.root);
    for (const engine of engines) {
      const status = h("span");
      const box = h("div", { className: "engine-chart" });
      this.root.append(
        h("section", { className: "engine", "data-engine-id": engine.engine_id },
          h("h3", {}, engine.engine_id, " ", status),
          box),
      );
      this.panels.set(engine.engine_id, { status, chart: makeChart(box) });
    }
  }

  resize() {
    for (const p of this.panels.values()) p.chart.resize();
  }
}
