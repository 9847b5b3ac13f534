// The program's DAG: layered layout by ELK (hierarchical, so nested threads and subgraphs
// are laid out inside their groups), drawn and made interactive by Cytoscape.
//
// Stability: the layout depends only on the graph's structure, never on arrival order or
// on random ids: nodes are fed to ELK sorted by their thread path, name and order within
// their thread, and ELK keeps that model order. The layout is recomputed only when nodes or
// edges change; a status change just recolours.

import cytoscape from "cytoscape";
import ELK from "elkjs/lib/elk.bundled.js";

const elk = new ELK();

const STYLE = [
  {
    selector: "node.call",
    style: {
      label: "data(label)",
      "font-size": 10,
      "text-valign": "center",
      "text-halign": "center",
      "text-wrap": "ellipsis",
      "text-max-width": "data(w)",
      width: "data(w)",
      height: "data(h)",
      "border-width": 1,
      "border-color": "#445",
      color: "#111",
      "background-color": "#9bb",
      shape: "round-rectangle",
    },
  },
  { selector: "node.kind-llm", style: { shape: "round-rectangle" } },
  { selector: "node.kind-tool", style: { shape: "hexagon" } },
  { selector: "node.kind-interrupt", style: { shape: "octagon" } },
  { selector: "node.kind-node", style: { shape: "rectangle" } },
  { selector: "node.status-running", style: { "background-color": "#7fb3f5" } },
  { selector: "node.status-waiting", style: { "background-color": "#f5d77f" } },
  { selector: "node.status-finished", style: { "background-color": "#8fd19e" } },
  { selector: "node.status-aborted", style: { "background-color": "#c8c8c8" } },
  { selector: "node.status-error", style: { "background-color": "#f28b82" } },
  { selector: "node.critical", style: { "border-width": 3, "border-color": "#d0342c" } },
  { selector: "node.selected", style: { "underlay-color": "#1d2330", "underlay-opacity": 0.25, "underlay-padding": 5 } },
  {
    selector: "node.group",
    style: {
      label: "data(label)",
      "font-size": 10,
      "text-valign": "top",
      "text-halign": "center",
      "background-color": "#eef2f7",
      "background-opacity": 0.6,
      "border-color": "#8a9bb0",
      "border-width": 1,
      "border-style": "dashed",
      padding: 10,
      shape: "round-rectangle",
    },
  },
  { selector: "node.group.collapsed", style: { "background-color": "#d5dde8" } },
  {
    selector: "node.ghost",
    style: {
      label: "data(label)",
      "font-size": 9,
      "text-valign": "center",
      "text-wrap": "ellipsis",
      "text-max-width": 56,
      width: 60,
      height: 20,
      "background-color": "#fff",
      "border-width": 1,
      "border-style": "dashed",
      "border-color": "#8a9bb0",
      shape: "round-rectangle",
    },
  },
  {
    selector: "edge",
    style: {
      width: 1.5,
      "curve-style": "bezier",
      "target-arrow-shape": "triangle",
      "line-color": "#7a8699",
      "target-arrow-color": "#7a8699",
    },
  },
  {
    selector: "edge.critical",
    style: { width: 3, "line-color": "#d0342c", "target-arrow-color": "#d0342c" },
  },
  { selector: ".hidden", style: { display: "none" } },
];

/** Label of a thread: the names of its path's segments (``node:task`` -> ``node``). */
function threadLabel(threadId) {
  const last = threadId.split("|").pop();
  return last.split(":")[0];
}

function nodeSize(label) {
  return { w: Math.max(60, Math.min(180, 7 * label.length + 16)), h: 28 };
}

export class DagView {
  constructor(container) {
    this.container = container;
    this.cy = cytoscape({
      container,
      style: STYLE,
      elements: [],
      wheelSensitivity: 0.2,
      boxSelectionEnabled: false,
    });
    this.signature = null;
    this.collapsed = new Set();
    this.cy.on("tap", "node.group", (event) => this.toggle(event.target));
    this.onSelect = null;
    this.selectedId = null;
    this.cy.on("tap", "node.call", (event) => this.select(event.target.data("nodeId")));
  }

  /** Show the details of the node with table id ``nodeId`` (what a click on it does). */
  select(nodeId) {
    this.selectedId = nodeId;
    this.markSelected();
    if (this.onSelect) this.onSelect(nodeId);
  }

  markSelected() {
    this.cy.nodes("node.call").forEach((n) => {
      n.toggleClass("selected", n.data("nodeId") === this.selectedId);
    });
  }

  toggle(group) {
    const threadId = group.data("threadId");
    if (this.collapsed.has(threadId)) this.collapsed.delete(threadId);
    else this.collapsed.add(threadId);
    this.applyCollapse();
  }

  applyCollapse() {
    this.cy.batch(() => {
      this.cy.nodes().removeClass("hidden");
      this.cy.nodes("node.group").forEach((g) => {
        const collapsed = this.collapsed.has(g.data("threadId"));
        g.toggleClass("collapsed", collapsed);
        g.data("label", collapsed ? `${g.data("baseLabel")} (+)` : g.data("baseLabel"));
        if (collapsed) g.descendants().addClass("hidden");
      });
    });
  }

  /** Draw ``trace`` (the /v1/ui/program answer); relayouts only when the structure changed. */
  async update(trace) {
    const model = buildModel(trace);
    if (model.signature === this.signature) {
      this.restyle(model);
      this.markSelected();
      return;
    }
    this.signature = model.signature;
    const positions = await layout(model);
    this.cy.batch(() => {
      this.cy.elements().remove();
      this.cy.add(model.groups.map((g) => ({ group: "nodes", data: g.data, classes: "group" })));
      this.cy.add(
        model.nodes.map((n) => ({
          group: "nodes",
          data: n.data,
          classes: n.classes,
          position: positions.get(n.data.id),
        })),
      );
      this.cy.add(model.edges.map((e) => ({ group: "edges", data: e.data, classes: e.classes })));
    });
    this.applyCollapse();
    this.markSelected();
    this.cy.fit(undefined, 20);
  }

  restyle(model) {
    this.cy.batch(() => {
      for (const n of model.nodes) this.cy.getElementById(n.data.id).classes(n.classes);
      for (const e of model.edges) this.cy.getElementById(e.data.id).classes(e.classes);
    });
  }

  /** What the canvas shows, for tests and for the summary line. */
  counts() {
    return {
      nodes: this.cy.nodes("node.call").length,
      edges: this.cy.edges().length,
      groups: this.cy.nodes("node.group").length,
      ghosts: this.cy.nodes("node.ghost").length,
    };
  }

  /** Every drawn node's label and position, rounded to the pixel (tests compare layouts). */
  positions() {
    return this.cy.nodes("node.call, node.ghost").map((n) => {
      const p = n.position();
      return [n.data("label"), Math.round(p.x), Math.round(p.y)];
    });
  }

  /** The table ids of the nodes with a visible edge into the node with table id ``nodeId``. */
  parentsOf(nodeId) {
    const node = this.cy.nodes("node.call").filter((n) => n.data("nodeId") === nodeId);
    return node.incomers("node").map((p) => p.data("nodeId"));
  }

  resize() {
    this.cy.resize();
  }
}

/** Cytoscape elements and the ELK graph of a trace, in a structure-only order. */
export function buildModel(trace) {
  const parentOf = new Map(trace.threads.map((t) => [t.thread_id, t.parent_thread_id]));
  const threadIds = new Set();
  const addThread = (threadId) => {
    if (!threadId || threadId === "main" || threadIds.has(threadId)) return;
    threadIds.add(threadId);
    addThread(parentOf.get(threadId));
  };
  for (const n of trace.nodes) addThread(n.thread_id);

  const pathOf = (threadId) => {
    const names = [];
    for (let t = threadId; t && t !== "main"; t = parentOf.get(t)) names.unshift(threadLabel(t));
    return names.join("/");
  };
  // Order within a thread is the order of first report, which is the program's own order.
  const indexInThread = new Map();
  const seen = new Map();
  for (const n of trace.nodes) {
    const k = seen.get(n.thread_id) || 0;
    indexInThread.set(n.node_id, k);
    seen.set(n.thread_id, k + 1);
  }
  const nodeKey = (n) => [pathOf(n.thread_id), n.name || n.kind, indexInThread.get(n.node_id)];
  const compare = (a, b) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
  };
  const nodes = [...trace.nodes].sort((a, b) => compare(nodeKey(a), nodeKey(b)));
  const threads = [...threadIds].sort((a, b) => compare([pathOf(a), a], [pathOf(b), b]));

  const groupId = new Map(threads.map((t, i) => [t, `g${i}`]));
  const idOf = new Map(nodes.map((n, i) => [n.node_id, `n${i}`]));
  // Edge ends the table holds no node for (the program root "main", nodes trimmed from a
  // long program) are drawn as small ghosts, so every edge of the table is on screen.
  const ghosts = [...new Set(trace.edges.flatMap((e) => [e.source, e.target]))]
    .filter((id) => !idOf.has(id))
    .sort();
  ghosts.forEach((id, i) => idOf.set(id, `x${i}`));
  const critical = new Set(trace.critical_path);
  const groups = threads.map((t) => {
    const parent = parentOf.get(t);
    return {
      data: {
        id: groupId.get(t),
        parent: parent && parent !== "main" ? groupId.get(parent) : undefined,
        threadId: t,
        label: threadLabel(t),
        baseLabel: threadLabel(t),
      },
    };
  });
  const cyNodes = nodes.map((n) => {
    const label = n.kind === "llm" ? `LLM ${n.name}` : n.name || n.node_id;
    const size = nodeSize(label);
    const classes = ["call", `kind-${n.kind}`, `status-${n.status}`];
    if (critical.has(n.node_id)) classes.push("critical");
    return {
      data: {
        id: idOf.get(n.node_id),
        parent: n.thread_id !== "main" ? groupId.get(n.thread_id) : undefined,
        nodeId: n.node_id,
        label,
        kind: n.kind,
        status: n.status,
        ...size,
      },
      classes: classes.join(" "),
    };
  });
  for (const id of ghosts) {
    const label = id === "main" ? "program" : id;
    cyNodes.push({
      data: { id: idOf.get(id), nodeId: id, label, kind: "ghost", w: 60, h: 20 },
      classes: "ghost",
    });
  }
  const edges = [...trace.edges]
    .map((e) => ({ s: idOf.get(e.source), t: idOf.get(e.target), critical: e.on_critical_path }))
    .sort((a, b) => compare([a.s, a.t], [b.s, b.t]))
    .map((e, i) => ({
      data: { id: `e${i}`, source: e.s, target: e.t },
      classes: e.critical ? "critical" : "",
    }));
  const signature = JSON.stringify([
    groups.map((g) => [g.data.id, g.data.parent]),
    cyNodes.map((n) => [n.data.id, n.data.nodeId, n.data.parent, n.data.label]),
    edges.map((e) => [e.data.source, e.data.target]),
  ]);
  return { groups, nodes: cyNodes, edges, signature };
}

async function layout(model) {
  const elkNode = new Map();
  const root = {
    id: "root",
    layoutOptions: {
      "elk.algorithm": "layered",
      "elk.direction": "DOWN",
      "elk.hierarchyHandling": "INCLUDE_CHILDREN",
      "elk.layered.considerModelOrder.strategy": "NODES_AND_EDGES",
      "elk.layered.crossingMinimization.forceNodeModelOrder": "true",
      "elk.spacing.nodeNode": "20",
      "elk.layered.spacing.nodeNodeBetweenLayers": "30",
      "elk.padding": "[top=24,left=12,bottom=12,right=12]",
      "elk.randomSeed": "1",
    },
    children: [],
    edges: [],
  };
  elkNode.set(undefined, root);
  for (const g of model.groups) {
    elkNode.set(g.data.id, {
      id: g.data.id,
      children: [],
      layoutOptions: { "elk.padding": "[top=24,left=12,bottom=12,right=12]" },
    });
  }
  for (const g of model.groups) elkNode.get(g.data.parent).children.push(elkNode.get(g.data.id));
  for (const n of model.nodes) {
    elkNode.get(n.data.parent).children.push({ id: n.data.id, width: n.data.w, height: n.data.h });
  }
  root.edges = model.edges.map((e) => ({
    id: e.data.id,
    sources: [e.data.source],
    targets: [e.data.target],
  }));
  const result = await elk.layout(root);
  const positions = new Map();
  const walk = (node, dx, dy) => {
    for (const child of node.children || []) {
      const x = dx + (child.x || 0);
      const y = dy + (child.y || 0);
      if (child.children && child.children.length) walk(child, x, y);
      else positions.set(child.id, { x: x + (child.width || 0) / 2, y: y + (child.height || 0) / 2 });
    }
  };
  walk(result, 0, 0);
  return positions;
}
