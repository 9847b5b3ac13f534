// Programs view: a live, filterable and sortable table of the caller's programs.

import { api } from "./api.js";
import { clear, fmtSeconds, h } from "./dom.js";
import { programHref } from "./route.js";

const COLUMNS = [
  ["program_id", "Program"],
  ["owner", "Owner"],
  ["state", "State"],
  ["num_threads", "Threads"],
  ["num_calls", "Calls"],
  ["num_active_calls", "Active"],
  ["service", "Attained service"],
  ["total_wait", "Total wait"],
  ["level", "Queue level"],
  ["engine_ids", "Engines"],
  ["age_s", "Age"],
];

export class ProgramsView {
  constructor(root) {
    this.root = root;
    this.sortKey = "age_s";
    this.sortAsc = true;
    this.filter = "";
    this.showFinished = true;
    this.rows = [];
    this.build();
  }

  build() {
    const filter = h("input", {
      id: "program-filter",
      type: "search",
      placeholder: "filter by id, owner, state or engine",
      oninput: (e) => {
        this.filter = e.target.value.toLowerCase();
        this.render();
      },
    });
    const finished = h("input", {
      id: "show-finished",
      type: "checkbox",
      checked: true,
      onchange: (e) => {
        this.showFinished = e.target.checked;
        this.refresh();
      },
    });
    this.tbody = h("tbody");
    const head = h(
      "tr",
      {},
      COLUMNS.map(([key, label]) =>
        h("th", { "data-key": key, onclick: () => this.sortBy(key) }, label),
      ),
    );
    this.count = h("span", { id: "program-count" });
    this.root.append(
      h("div", { className: "toolbar" }, filter, h("label", {}, finished, " finished"), this.count),
      h("table", { id: "programs-table", className: "grid" }, h("thead", {}, head), this.tbody),
    );
  }

  sortBy(key) {
    this.sortAsc = this.sortKey === key ? !this.sortAsc : true;
    this.sortKey = key;
    this.render();
  }

  async refresh() {
    const body = await api.programs(this.showFinished);
    this.rows = body.data;
    this.render();
  }

  visibleRows() {
    const f = this.filter;
    const rows = this.rows.filter((r) => {
      if (!f) return true;
      const text = [r.program_id, r.owner || "", r.state, r.engine_ids.join(" ")].join(" ");
      return text.toLowerCase().includes(f);
    });
    const key = this.sortKey;
    const sign = this.sortAsc ? 1 : -1;
    rows.sort((a, b) => {
      const x = Array.isArray(a[key]) ? a[key].join(",") : a[key];
      const y = Array.isArray(b[key]) ? b[key].join(",") : b[key];
      if (x === y) return a.program_id < b.program_id ? -1 : 1;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sign;
    });
    return rows;
  }

  render() {
    const rows = this.visibleRows();
    clear(this.tbody);
    for (const r of rows) {
      const link = h("a", { href: programHref(r.program_id, r.owner) }, r.program_id);
      this.tbody.append(
        h(
          "tr",
          { className: `state-${r.state}`, "data-program-id": r.program_id },
          h("td", { className: "id" }, link),
          h("td", {}, r.owner || "–"),
          h("td", {}, h("span", { className: `badge ${r.state}` }, r.state)),
          h("td", {}, r.num_threads),
          h("td", {}, r.num_calls),
          h("td", {}, r.num_active_calls),
          h("td", {}, fmtSeconds(r.service)),
          h("td", {}, fmtSeconds(r.total_wait)),
          h("td", {}, r.level === null ? "–" : `Q${r.level}`),
          h("td", {}, r.engine_ids.join(", ")),
          h("td", {}, fmtSeconds(r.age_s)),
        ),
      );
    }
    this.count.textContent = `${rows.length} of ${this.rows.length} programs`;
  }
}
