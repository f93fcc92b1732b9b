// The layered lineage graph: a pure layout (layers, order, coordinates) and an SVG drawing of
// it. Shared by the run page (a run's small lineage) and the lineage explorer.
// Names are hostile strings: they only ever reach the DOM through textContent/setAttribute.

const SVG_NS = "http://www.w3.org/2000/svg";
export const MAX_NODES = 300;
const SIZES = {
  nodeWidth: 184, nodeHeight: 34, colGap: 76, rowGap: 14, pad: 16, labelChars: 24, maxRows: 30,
};
const LOOP = 44;
let markerSeq = 0;

/** `text` cut to `max` characters, keeping both ends (the end of an entity says most). */
export function shorten(text, max = SIZES.labelChars) {
  if (text.length <= max) return text;
  const head = Math.ceil((max - 1) / 3);
  return text.slice(0, head) + "…" + text.slice(text.length - (max - 1 - head));
}

/**
 * Where every node and edge goes. `nodes` are entity strings or `{entity}` objects; edges are
 * `{source, target, job, run_count?}`; endpoints missing from `nodes` are added. Pure: no DOM.
 * Returns `{nodes: [{entity, label, layer, row, x, y, width, height, center}], edges:
 * [{source, target, jobs, runCount, back, d}], width, height, total, shown}`.
 */
export function layout({ center = null, nodes = [], edges = [] } = {}, options = {}) {
  const o = { ...SIZES, maxNodes: MAX_NODES, ...options };
  const ids = collectIds(center, nodes, edges);
  const all = adjacency(ids, edges);
  const dist = center != null ? signedDistances(center, all.out, all.inn) : new Map();
  const kept = keepNearest(ids, dist, o.maxNodes);
  const keptSet = new Set(kept);
  const drawn = edges.filter((e) => keptSet.has(e.source) && keptSet.has(e.target));
  const adj = adjacency(kept, drawn);
  const layer = new Map([...dist].filter(([id]) => keptSet.has(id)));
  placeRest(kept, layer, adj.out, adj.inn);
  const layers = orderLayers(kept, layer, adj);
  return place(layers, groupEdges(drawn), center, ids.length, o);
}

function collectIds(center, nodes, edges) {
  const ids = new Set(center != null ? [center] : []);
  for (const n of nodes) ids.add(typeof n === "string" ? n : n.entity);
  for (const e of edges) ids.add(e.source).add(e.target);
  return [...ids];
}

function adjacency(ids, edges) {
  const out = new Map(ids.map((id) => [id, []]));
  const inn = new Map(ids.map((id) => [id, []]));
  for (const e of edges) {
    if (e.source === e.target) continue;
    out.get(e.source).push(e.target);
    inn.get(e.target).push(e.source);
  }
  return { out, inn };
}

// Downstream hops count positive, upstream negative; a node reachable both ways (a cycle)
// takes the nearer side, downstream on a tie.
function signedDistances(center, out, inn) {
  const dist = new Map([[center, 0]]);
  for (const [next, sign] of [[out, 1], [inn, -1]]) {
    const seen = new Set([center]);
    let frontier = [center];
    for (let hop = 1; frontier.length; hop++) {
      const reached = [];
      for (const u of frontier) {
        for (const v of next.get(u) || []) {
          if (seen.has(v)) continue;
          seen.add(v);
          reached.push(v);
          if (!dist.has(v) || hop < Math.abs(dist.get(v))) dist.set(v, sign * hop);
        }
      }
      frontier = reached;
    }
  }
  return dist;
}

// Over the cap, the nodes nearest the centre stay (then those without a path, in input order).
function keepNearest(ids, dist, max) {
  if (ids.length <= max) return ids;
  const rank = (id) => (dist.has(id) ? Math.abs(dist.get(id)) : Infinity);
  return ids
    .map((id, i) => [id, i])
    .sort((a, b) => rank(a[0]) - rank(b[0]) || a[1] - b[1])
    .slice(0, max)
    .map(([id]) => id);
}

// Nodes with no path from the centre (or every node when there is none): longest-path
// layering, ignoring the edges that close a cycle.
function placeRest(ids, layer, out, inn) {
  const rest = ids.filter((id) => !layer.has(id));
  if (!rest.length) return;
  const restSet = new Set(rest);
  const order = topoOrder(rest, restSet, out);
  // In topological order a placed predecessor is one left of us (cycle-closing edges skipped).
  for (const u of order) {
    const from = inn.get(u).filter((p) => layer.has(p));
    if (from.length) layer.set(u, Math.max(...from.map((p) => layer.get(p) + 1)));
  }
  // Nodes fed by nothing placed sit just left of what they feed, or in column 0.
  for (const u of [...order].reverse()) {
    if (layer.has(u)) continue;
    const to = out.get(u).filter((s) => layer.has(s));
    layer.set(u, to.length ? Math.min(...to.map((s) => layer.get(s) - 1)) : 0);
  }
}

function topoOrder(rest, restSet, out) {
  const done = new Set();
  const order = [];
  for (const root of rest) {
    if (done.has(root)) continue;
    // Iterative DFS: a long chain must not overflow the call stack.
    const stack = [[root, 0]];
    done.add(root);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const succ = out.get(top[0]);
      if (top[1] < succ.length) {
        const v = succ[top[1]++];
        if (restSet.has(v) && !done.has(v)) {
          done.add(v);
          stack.push([v, 0]);
        }
      } else {
        order.push(stack.pop()[0]);
      }
    }
  }
  return order.reverse();
}

// Rows within each layer: barycentre sweeps left-to-right and back, keeping the order with
// the fewest crossings between neighbouring layers.
function orderLayers(ids, layer, { out, inn }) {
  const low = Math.min(...ids.map((id) => layer.get(id)));
  const layers = [];
  for (const id of ids) {
    const i = layer.get(id) - low;
    layer.set(id, i);
    (layers[i] ||= []).push(id);
  }
  for (let i = 0; i < layers.length; i++) layers[i] ||= [];
  const neighbours = new Map(ids.map((id) => [id, [...out.get(id), ...inn.get(id)]]));
  let best = layers.map((l) => [...l]);
  let bestCrossings = crossings(best, out, layer);
  for (let sweep = 0; sweep < 4 && bestCrossings > 0; sweep++) {
    const down = sweep % 2 === 0;
    for (let k = 1; k < layers.length; k++) {
      const i = down ? k : layers.length - 1 - k;
      layers[i] = byBarycentre(layers, i, neighbours, layer, down);
    }
    const c = crossings(layers, out, layer);
    if (c < bestCrossings) [best, bestCrossings] = [layers.map((l) => [...l]), c];
  }
  return best;
}

function byBarycentre(layers, i, neighbours, layer, down) {
  const offset = new Map();
  for (const l of layers) l.forEach((id, r) => offset.set(id, r - (l.length - 1) / 2));
  const keyed = layers[i].map((id, r) => {
    const fixed = neighbours.get(id).filter((n) => (down ? layer.get(n) < i : layer.get(n) > i));
    const key = fixed.length
      ? fixed.reduce((sum, n) => sum + offset.get(n), 0) / fixed.length
      : offset.get(id);
    return { id, key, r };
  });
  keyed.sort((a, b) => a.key - b.key || a.r - b.r);
  return keyed.map((k) => k.id);
}

function crossings(layers, out, layer) {
  const row = new Map();
  for (const l of layers) l.forEach((id, r) => row.set(id, r));
  let count = 0;
  for (let i = 0; i + 1 < layers.length; i++) {
    const spans = [];
    for (const u of layers[i]) {
      for (const v of out.get(u)) if (layer.get(v) === i + 1) spans.push([row.get(u), row.get(v)]);
    }
    for (const v of layers[i + 1]) {
      for (const u of out.get(v)) if (layer.get(u) === i) spans.push([row.get(u), row.get(v)]);
    }
    for (let a = 0; a < spans.length; a++) {
      for (let b = a + 1; b < spans.length; b++) {
        if ((spans[a][0] - spans[b][0]) * (spans[a][1] - spans[b][1]) < 0) count++;
      }
    }
  }
  return count;
}

// One drawn edge per (source, target), with every job that moves data along it.
function groupEdges(edges) {
  const byPair = new Map();
  for (const e of edges) {
    const key = JSON.stringify([e.source, e.target]);
    const g = byPair.get(key) || { source: e.source, target: e.target, jobs: [], runCount: 0 };
    if (e.job && !g.jobs.includes(e.job)) g.jobs.push(e.job);
    g.runCount += Number(e.run_count) || 0;
    byPair.set(key, g);
  }
  return [...byPair.values()];
}

function place(layers, edges, center, total, o) {
  // A layer taller than maxRows (a hub's hundreds of consumers) wraps into several columns.
  const wraps = layers.map((l) => Math.max(1, Math.ceil(l.length / o.maxRows)));
  const tallest = Math.max(1, ...layers.map((l, i) => Math.ceil(l.length / wraps[i])));
  const step = o.nodeHeight + o.rowGap;
  const colStep = o.nodeWidth + o.colGap;
  const at = new Map();
  const nodes = [];
  let column = 0;
  layers.forEach((ids, layerIndex) => {
    const perColumn = Math.ceil(ids.length / wraps[layerIndex]);
    ids.forEach((entity, row) => {
      const sub = Math.floor(row / perColumn);
      const inColumn = Math.min(perColumn, ids.length - sub * perColumn);
      const node = {
        entity,
        label: shorten(entity, o.labelChars),
        layer: layerIndex,
        row,
        x: o.pad + (column + sub) * colStep,
        y: o.pad + ((tallest - inColumn) * step) / 2 + (row % perColumn) * step,
        width: o.nodeWidth,
        height: o.nodeHeight,
        center: entity === center,
      };
      at.set(entity, node);
      nodes.push(node);
    });
    column += wraps[layerIndex];
  });
  const placed = edges.map((e) => edgePath(e, at.get(e.source), at.get(e.target), LOOP));
  const loop = placed.some((e) => e.back) ? LOOP : 0; // room below for edges running backwards
  const columns = Math.max(1, column);
  return {
    nodes,
    edges: placed,
    width: 2 * o.pad + columns * colStep - o.colGap,
    height: 2 * o.pad + tallest * step - o.rowGap + loop,
    total,
    shown: nodes.length,
  };
}

function edgePath(e, s, t, loop) {
  const r = (n) => Math.round(n * 10) / 10;
  let d;
  const back = t.layer <= s.layer;
  if (s === t) {
    const x = s.x + s.width;
    const y = s.y + s.height / 2;
    d = `M${r(x)} ${r(y - 6)} C${r(x + 30)} ${r(y - 26)} ${r(x + 30)} ${r(y + 26)} ${r(x)} ${r(y + 6)}`;
  } else if (!back) {
    const [x1, y1] = [s.x + s.width, s.y + s.height / 2];
    const [x2, y2] = [t.x, t.y + t.height / 2];
    const dx = Math.max(24, (x2 - x1) / 2);
    d = `M${r(x1)} ${r(y1)} C${r(x1 + dx)} ${r(y1)} ${r(x2 - dx)} ${r(y2)} ${r(x2)} ${r(y2)}`;
  } else {
    // Backwards or within a layer: leave from the bottom and come back in from below.
    const [x1, y1] = [s.x + s.width / 2, s.y + s.height];
    const [x2, y2] = [t.x + t.width / 2, t.y + t.height];
    const dip = Math.max(y1, y2) + loop - 8;
    d = `M${r(x1)} ${r(y1)} C${r(x1)} ${r(dip)} ${r(x2)} ${r(dip)} ${r(x2)} ${r(y2)}`;
  }
  return { ...e, back, d };
}

// -- drawing ------------------------------------------------------------------------------

function svgEl(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

function title(text) {
  const t = svgEl("title");
  t.textContent = text;
  return t;
}

function edgeText(e) {
  const via = e.jobs.length ? ` via ${e.jobs.join(", ")}` : "";
  const runs = e.runCount ? ` (${e.runCount} run${e.runCount === 1 ? "" : "s"})` : "";
  return `${e.source} → ${e.target}${via}${runs}`;
}

/**
 * Draws the graph into `parent` (a scrolling wrapper holding an optional note and the
 * `<svg>`) and returns the `<svg>`. With `onSelect`, nodes are focusable buttons calling
 * `onSelect(entity)` on click, Enter or Space; without it they are plain shapes.
 */
export function drawGraph(parent, graph, { onSelect, maxNodes = MAX_NODES } = {}) {
  const g = layout(graph, { maxNodes });
  const wrap = document.createElement("div");
  wrap.className = "graph-wrap";
  if (!onSelect) {
    // Nothing inside to focus, yet the box may scroll: it must be reachable by keyboard.
    wrap.tabIndex = 0;
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", "Lineage graph");
  }
  if (g.shown < g.total) {
    const note = document.createElement("p");
    note.className = "graph-note";
    note.textContent = `Showing ${g.shown} of ${g.total} nodes: those nearest the centre.`;
    wrap.append(note);
  }
  const summary = graphSummary(graph, g);
  const arrow = `graph-arrow-${++markerSeq}`;
  // An interactive graph is a group: role="img" would hide its buttons from assistive tech.
  const svg = svgEl("svg", {
    class: "graph",
    viewBox: `0 0 ${g.width} ${g.height}`,
    width: g.width,
    height: g.height,
    role: onSelect ? "group" : "img",
    "aria-label": summary,
  });
  svg.append(
    title(summary),
    svgEl(
      "defs",
      {},
      svgEl(
        "marker",
        { id: arrow, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8, markerHeight: 8,
          orient: "auto", markerUnits: "userSpaceOnUse" },
        svgEl("path", { d: "M0 0 L10 5 L0 10 z", class: "graph-arrow" }),
      ),
    ),
  );
  const edgeLayer = svgEl("g", { class: "graph-edges", "aria-hidden": "true" });
  for (const e of g.edges) {
    const cls = "graph-edge" + (e.back ? " back" : "");
    edgeLayer.append(svgEl("path", { d: e.d, class: cls, "marker-end": `url(#${arrow})` }, title(edgeText(e))));
  }
  const nodeLayer = svgEl("g", { class: "graph-nodes" });
  for (const n of g.nodes) nodeLayer.append(drawNode(n, onSelect));
  svg.append(edgeLayer, nodeLayer);
  if (!g.nodes.length) {
    const empty = svgEl("text", { x: 16, y: 28, class: "graph-empty" });
    empty.textContent = "No lineage recorded.";
    svg.append(empty);
  }
  wrap.append(svg);
  parent.append(wrap);
  return svg;
}

function graphSummary(graph, g) {
  const around = graph.center != null ? ` around ${graph.center}` : "";
  const cut = g.shown < g.total ? ` (of ${g.total})` : "";
  return `Lineage graph${around}: ${g.shown} nodes${cut}, ${g.edges.length} edges`;
}

function drawNode(n, onSelect) {
  const attrs = { class: "graph-node" + (n.center ? " center" : ""), "data-testid": "node" };
  if (onSelect) {
    Object.assign(attrs, { tabindex: 0, role: "button",
      "aria-label": n.center ? `${n.entity} (centre)` : n.entity });
  }
  const node = svgEl("g", attrs);
  node.dataset.entity = n.entity;
  if (n.center) node.setAttribute("aria-current", "true");
  const label = svgEl("text", { x: n.x + 10, y: n.y + n.height / 2, "dominant-baseline": "central" });
  label.textContent = n.label;
  node.append(
    title(n.entity),
    svgEl("rect", { x: n.x, y: n.y, width: n.width, height: n.height, rx: 6 }),
    label,
  );
  if (onSelect) {
    node.addEventListener("click", () => onSelect(n.entity));
    node.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" && event.key !== " ") return;
      event.preventDefault(); // Space would scroll the page
      onSelect(n.entity);
    });
  }
  return node;
}
