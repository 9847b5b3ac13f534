// Scheduling view of one program: its attained service over time, the queue level that
// service puts it in, the moments the level went down (a service reset), as the gateway
// sampled them, and each call's anti-starvation promotions to Q1, as its engine reported.

import { SAFE_TOOLTIP, makeChart } from "./charts.js";

export class SchedulingView {
  constructor(el) {
    this.chart = makeChart(el);
    this.promotions = [];
  }

  update(trace) {
    const s = trace.schedule;
    const promoted = trace.calls.flatMap((c) => c.promotions.map((t) => ({ call_id: c.call_id, t })));
    promoted.sort((a, b) => a.t - b.t);
    this.promotions = promoted;
    const t0 = Math.min(s.t.length ? s.t[0] : trace.now, ...promoted.map((p) => p.t));
    const service = s.t.map((t, i) => [t - t0, s.service[i]]);
    const level = s.t.map((t, i) => [t - t0, s.level[i]]);
    const promotions = s.promotions.map((t) => ({ xAxis: t - t0 }));
    this.chart.setOption(
      {
        animation: false,
        tooltip: { ...SAFE_TOOLTIP, trigger: "axis" },
        legend: { top: 0 },
        grid: { left: 60, right: 60, top: 30, bottom: 30 },
        xAxis: { type: "value", name: "s", axisLabel: { formatter: (v) => v.toFixed(0) } },
        yAxis: [
          { type: "value", name: "service (s)" },
          {
            type: "value",
            name: "queue level",
            minInterval: 1,
            inverse: true,
            min: 1,
            max: (extent) => Math.max(2, Math.ceil(extent.max)),
            axisLabel: { formatter: (v) => `Q${v}` },
          },
        ],
        series: [
          { type: "line", name: "attained service", data: service, showSymbol: false },
          {
            type: "line",
            name: "queue level",
            step: "end",
            yAxisIndex: 1,
            data: level,
            showSymbol: false,
            markLine: {
              symbol: "none",
              label: { formatter: "promoted" },
              lineStyle: { color: "#d0342c", type: "dashed" },
              data: promotions,
            },
          },
          {
            type: "scatter",
            name: "anti-starvation promotion",
            yAxisIndex: 1,
            symbol: "triangle",
            symbolSize: 11,
            itemStyle: { color: "#d0342c" },
            data: promoted.map((p) => ({ name: p.call_id, value: [p.t - t0, 1] })),
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
