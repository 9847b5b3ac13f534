// Timeline (Gantt) of a program's calls: one row per engine and thread, so parallel threads
// sit side by side on their engine; each call is one bar, its waiting part pale and its
// running part solid, with a red mark and count where the engine preempted it and a red
// stretch for each preemption the engine timed. Tool time (the program running a tool, or
// other non-LLM work, between a call and the call that depends on it) is a bar ahead of the
// dependent call: green and named after the tools the spans reported, grey when they named
// none (the program's own code ran there).

import { SAFE_TOOLTIP, makeChart } from "./charts.js";

const WAIT_COLOR = "#f5d77f";
const RUN_COLOR = "#4a90d9";
const PREEMPT_COLOR = "#d0342c";
const TOOL_COLOR = "#6cbf84";
const GAP_COLOR = "#c3cad5";

/** Rows and bars of the chart, one bar per call of ``trace``, one row per engine and thread.
 * A thread is named by its path of ``node[k]`` segments, ``k`` numbering the tasks of that
 * node under the same parent in the order of their first call (as ``examples/_common.py``
 * labels DAG shapes), so parallel tasks get rows of their own, ``summarize[2]/draft[1]``. */
export function timelineBars(trace) {
  const now = trace.now;
  const labels = new Map([["main", "main"]]);
  const ordinals = new Map();
  const labelOf = (threadId) => {
    if (labels.has(threadId)) return labels.get(threadId);
    const cut = threadId.lastIndexOf("|");
    const parent = cut >= 0 ? labelOf(threadId.slice(0, cut)) : "";
    const name = threadId.slice(cut + 1).split(":")[0];
    const key = `${parent}\u0000${name}`;
    const k = (ordinals.get(key) || 0) + 1;
    ordinals.set(key, k);
    const label = `${parent ? `${parent}/` : ""}${name}[${k}]`;
    labels.set(threadId, label);
    return label;
  };
  for (const c of [...trace.calls].sort((a, b) => a.arrival - b.arrival)) labelOf(c.thread_id);
  const name = (threadId) => labels.get(threadId);
  const rowKey = (c) => `${c.engine_id || "unrouted"} · ${name(c.thread_id)}`;
  const rows = [...new Set(trace.calls.map(rowKey))].sort();
  const rowIndex = new Map(rows.map((r, i) => [r, i]));
  const bars = trace.calls.map((c) => {
    const start = c.start ?? null;
    const end = c.end ?? now;
    return {
      call_id: c.call_id,
      engine_id: c.engine_id,
      thread_id: c.thread_id,
      row: rowIndex.get(rowKey(c)),
      arrival: c.arrival,
      start,
      end,
      wait: c.wait,
      num_preemptions: c.num_preemptions,
      preemptions: (c.preemptions || []).map(([from, to]) => [from, to ?? end]),
      promotions: c.promotions || [],
      status: c.status,
    };
  });
  const rowOfCall = new Map(bars.map((b) => [b.call_id, b.row]));
  const gaps = (trace.gaps || [])
    .filter((g) => rowOfCall.has(g.call_id))
    .map((g) => ({
      call_id: g.call_id,
      after_call_id: g.after_call_id,
      row: rowOfCall.get(g.call_id),
      start: g.start,
      end: g.end,
      tools: g.tool_names,
    }));
  return { rows, bars, gaps };
}

function toolLabel(gap) {
  return gap.tools.length ? gap.tools.join(", ") : "between calls";
}

function renderGap(params, api, gap) {
  const row = api.value(0);
  const start = api.value(1);
  const end = api.value(2);
  const height = api.size([0, 1])[1] * 0.36;
  const top = api.coord([start, row])[1] - height / 2;
  const x0 = api.coord([start, row])[0];
  const width = Math.max(2, api.coord([end, row])[0] - x0);
  const label = toolLabel(gap);
  const children = [
    {
      type: "rect",
      shape: { x: x0, y: top, width, height },
      style: { fill: gap.tools.length ? TOOL_COLOR : GAP_COLOR },
    },
  ];
  if (width > 7 * String(label).length) {
    children.push({
      type: "text",
      style: { text: label, x: x0 + 3, y: top + 1, fill: "#143d22", fontSize: 10 },
    });
  }
  return { type: "group", children };
}

function renderItem(params, api, spans) {
  const row = api.value(0);
  const arrival = api.value(1);
  const start = api.value(2);
  const end = api.value(3);
  const preemptions = api.value(4);
  const height = api.size([0, 1])[1] * 0.6;
  const top = api.coord([arrival, row])[1] - height / 2;
  const x = (t) => api.coord([t, row])[0];
  const runStart = Number.isNaN(start) ? end : start;
  const children = [
    {
      type: "rect",
      shape: { x: x(arrival), y: top, width: Math.max(1, x(runStart) - x(arrival)), height },
      style: { fill: WAIT_COLOR },
    },
  ];
  if (!Number.isNaN(start)) {
    children.push({
      type: "rect",
      shape: { x: x(start), y: top, width: Math.max(2, x(end) - x(start)), height },
      style: { fill: RUN_COLOR },
    });
  }
  for (const [from, to] of spans) {
    children.push({
      type: "rect",
      shape: { x: x(from), y: top + height * 0.2, width: Math.max(2, x(to) - x(from)), height: height * 0.6 },
      style: { fill: PREEMPT_COLOR, opacity: 0.75 },
    });
  }
  if (preemptions > 0) {
    const at = spans.length ? spans[0][0] : runStart;
    children.push({
      type: "polygon",
      shape: {
        points: [
          [x(at), top],
          [x(at) - 5, top - 8],
          [x(at) + 5, top - 8],
        ],
      },
      style: { fill: PREEMPT_COLOR },
    });
    children.push({
      type: "text",
      style: { text: `×${preemptions}`, x: x(at) + 6, y: top - 10, fill: PREEMPT_COLOR },
    });
  }
  return { type: "group", children };
}

function fmtSpans(spans) {
  return spans.map(([from, to]) => `${(to - from).toFixed(3)} s`).join(", ");
}

export class TimelineView {
  constructor(el) {
    this.chart = makeChart(el);
    this.bars = [];
    this.gaps = [];
  }

  update(trace) {
    const { rows, bars, gaps } = timelineBars(trace);
    this.bars = bars;
    this.gaps = gaps;
    const t0 = Math.min(...bars.map((b) => b.arrival), ...gaps.map((g) => g.start), trace.now);
    const spans = bars.map((b) => b.preemptions);
    this.chart.setOption(
      {
        animation: false,
        tooltip: {
          ...SAFE_TOOLTIP,
          formatter: (p) => {
            if (p.seriesName === "tool time") {
              const g = gaps[p.dataIndex];
              return `${toolLabel(g)}\n${(g.end - g.start).toFixed(3)} s between ${g.after_call_id} and ${g.call_id}`;
            }
            const b = bars[p.dataIndex];
            const wait = b.wait.toFixed(3);
            const run = b.start === null ? "–" : (b.end - b.start).toFixed(3);
            const timed = b.preemptions.length ? ` (${fmtSpans(b.preemptions)})` : "";
            return `${b.call_id}\n${b.engine_id || "?"} · ${b.status}\nwait ${wait} s, run ${run} s, preempted ${b.num_preemptions}×${timed}`;
          },
        },
        grid: { left: 170, right: 30, top: 20, bottom: 50 },
        xAxis: {
          type: "value",
          min: t0,
          axisLabel: { formatter: (v) => `${(v - t0).toFixed(1)} s` },
        },
        yAxis: { type: "category", data: rows, inverse: true },
        dataZoom: [{ type: "slider", xAxisIndex: 0, height: 16, bottom: 8 }, { type: "inside" }],
        series: [
          {
            type: "custom",
            name: "calls",
            renderItem: (params, api) => renderItem(params, api, spans[params.dataIndex]),
            encode: { x: [1, 2, 3], y: 0 },
            data: bars.map((b) => [b.row, b.arrival, b.start ?? NaN, b.end, b.num_preemptions]),
          },
          {
            type: "custom",
            name: "tool time",
            renderItem: (params, api) => renderGap(params, api, gaps[params.dataIndex]),
            encode: { x: [1, 2], y: 0 },
            data: gaps.map((g) => [g.row, g.start, g.end]),
          },
        ],
      },
      { notMerge: true },
    );
  }

  resize() {
    this.chart.resize();
  }
}
