// ECharts, with only the parts the UI draws (keeps the bundle small), on the canvas renderer:
// text drawn on a canvas can never become markup.

import { BarChart, CustomChart, LineChart, ScatterChart } from "echarts/charts";
import {
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TitleComponent,
  TooltipComponent,
} from "echarts/components";
import * as echarts from "echarts/core";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([
  BarChart,
  CustomChart,
  LineChart,
  ScatterChart,
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TitleComponent,
  TooltipComponent,
  CanvasRenderer,
]);

export { echarts };

/** Tooltips as rich text on the canvas, not HTML: labels come from untrusted ids. */
export const SAFE_TOOLTIP = { trigger: "item", renderMode: "richText", confine: true };

export function makeChart(el) {
  return echarts.init(el, null, { renderer: "canvas" });
}
