// Timeline (Gantt) of a program's calls: one row per engine and thread, so parallel threads
// sit side by side on their engine; each call is one bar, its waiting part pale and its
// running part solid, with a red mark and count where the engine preempted it.

import { SAFE_TOOLTIP, makeChart } from "./charts.js";

const WAIT_COLOR = "#f5d77f";
const RUN_COLOR = "#4a90d9";
const PREEMPT_COLOR = "#d0342c";

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
      status: c.status,
    };
  });
  return { rows, bars };
}

function renderItem(params, api) {
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
  if (preemptions > 0) {
    children.push({
      type: "polygon",
      shape: {
        points: [
          [x(runStart), top],
          [x(runStart) - 5, top - 8],
          [x(runStart) + 5, top - 8],
        ],
      },
      style: { fill: PREEMPT_COLOR },
    });
    children.push({
      type: "text",
      style: { text: `×${preemptions}`, x: x(runStart) + 6, y: top - 10, fill: PREEMPT_COLOR },
    });
  }
  return { type: "group", children };
}

export class TimelineView {
  constructor(el) {
    this.chart = makeChart(el);
    this.bars = [];
  }

  update(trace) {
    const { rows, bars } = timelineBars(trace);
    this.bars = bars;
    const t0 = Math.min(...bars.map((b) => b.arrival), trace.now);
    this.chart.setOption(
      {
        animation: false,
        tooltip: {
          ...SAFE_TOOLTIP,
          formatter: (p) => {
            const b = bars[p.dataIndex];
            const wait = b.wait.toFixed(3);
            const run = b.start === null ? "–" : (b.end - b.start).toFixed(3);
            return `${b.call_id}\n${b.engine_id || "?"} · ${b.status}\nwait ${wait} s, run ${run} s, preempted ${b.num_preemptions}×`;
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
            renderItem,
            encode: { x: [1, 2, 3], y: 0 },
            data: bars.map((b) => [b.row, b.arrival, b.start ?? NaN, b.end, b.num_preemptions]),
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
