// Lineage explorer (#/lineage?entity=&depth=): the graph around an entity; a node re-centres it.
import { api } from "./api.js";
import { h, fmtTime, problemBanner, emptyState } from "./dom.js";
import { drawGraph, MAX_NODES } from "./graph.js";

const DEFAULT_DEPTH = 2;
const isAbort = (err) => err && err.name === "AbortError";
// The entity whose node was chosen from the keyboard: after the re-render its node gets focus.
let refocus = null;

function hashFor(entity, depth) {
  return "#/lineage?" + new URLSearchParams({ entity, depth: String(depth) }).toString();
}

function readDepth(query) {
  const n = Number.parseInt(query.get("depth") || "", 10);
  return Number.isFinite(n) ? Math.min(5, Math.max(1, n)) : DEFAULT_DEPTH;
}

export async function render(main, params, ctx) {
  const query = params.query || new URLSearchParams();
  const entity = (query.get("entity") || "").trim();
  const depth = readDepth(query);
  const result = h("div", { dataset: { testid: "lineage-result" } });
  main.append(h("section", { class: "page", dataset: { testid: "page-lineage" } },
    h("h1", {}, "Lineage"),
    searchForm(entity, depth, ctx, () => show(result, entity, depth, ctx)),
    result,
  ));
  if (entity) await show(result, entity, depth, ctx);
  else result.append(emptyState("Name an entity, e.g. raw.orders or s3://bucket/prefix, to see what feeds it and what it feeds."));
}

function searchForm(entity, depth, ctx, reload) {
  const input = h("input", { id: "entity", name: "entity", type: "text", list: "entity-options",
    autocomplete: "off", spellcheck: "false", required: "" });
  input.value = entity;
  const options = h("datalist", { id: "entity-options" });
  const select = h("select", { id: "depth", name: "depth" },
    ...[1, 2, 3, 4, 5].map((n) => h("option", { value: String(n) }, String(n))));
  select.value = String(depth);
  suggestDatasets(input, options, ctx);
  return h("form", { class: "filters", role: "search", "aria-label": "Lineage",
    onsubmit: (event) => {
      event.preventDefault();
      const next = hashFor(input.value.trim(), select.value);
      // The same query again changes no hash, so nothing would re-render: reload here.
      if (location.hash === next) reload();
      else location.hash = next;
    } },
    h("div", { class: "field" }, h("label", { for: "entity" }, "Entity"), input, options),
    h("div", { class: "field" }, h("label", { for: "depth" }, "Depth"), select),
    h("button", { type: "submit" }, "Show lineage"),
  );
}

// Dataset names starting with what was typed, as suggestions; a failure only means none.
function suggestDatasets(input, list, ctx) {
  let timer = null;
  let pending = null;
  ctx.signal.addEventListener("abort", () => { clearTimeout(timer); pending?.abort(); }, { once: true });
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const prefix = input.value.trim();
    if (prefix.length < 2) return;
    timer = setTimeout(async () => {
      pending?.abort();
      pending = new AbortController();
      try {
        const page = await api("/api/v1/datasets", { query: { prefix, limit: 20 }, signal: pending.signal });
        list.replaceChildren(...page.items.map((d) => {
          const option = document.createElement("option");
          option.value = d.entity;
          return option;
        }));
      } catch {
        /* suggestions are optional */
      }
    }, 250);
  });
}

async function show(result, entity, depth, ctx) {
  result.replaceChildren(h("p", { class: "muted", role: "status" }, "Loading…"));
  let graph;
  try {
    graph = await api("/api/v1/lineage/graph", { query: { entity, depth, limit: MAX_NODES }, signal: ctx.signal });
  } catch (err) {
    if (!isAbort(err)) result.replaceChildren(problemBanner(err));
    return;
  }
  const edges = graph.edges || [];
  const notes = [h("p", { dataset: { testid: "lineage-summary" } },
    `${graph.entity}: ${graph.upstream?.length ?? 0} upstream and ${graph.downstream?.length ?? 0} downstream within ${depth} hop${depth === 1 ? "" : "s"}.`)];
  if (graph.truncated) {
    notes.push(h("p", { class: "note", dataset: { testid: "truncated" } },
      `The graph is cut at ${MAX_NODES} nodes: there is more beyond the nodes shown. Re-centre on a node or lower the depth.`));
  }
  if (!edges.length) notes.push(emptyState(`No lineage recorded for ${graph.entity}.`));
  result.replaceChildren(...notes);
  const holder = h("div", { dataset: { testid: "lineage-graph" } });
  result.append(holder);
  const svg = drawGraph(holder, { center: graph.entity, nodes: graph.nodes || [], edges }, {
    onSelect: (picked) => {
      refocus = picked;
      location.hash = hashFor(picked, depth);
    },
  });
  // On a narrow screen the centre may lie beyond the right edge: bring it into view.
  const centre = svg.querySelector("g.center rect");
  const box = svg.parentNode;
  if (centre && box.scrollWidth > box.clientWidth) {
    box.scrollLeft = Number(centre.getAttribute("x")) - (box.clientWidth - Number(centre.getAttribute("width"))) / 2;
  }
  if (refocus === graph.entity) {
    refocus = null;
    svg.querySelector("g.center")?.focus({ preventScroll: true });
  }
  if (edges.length) result.append(edgeTable(edges, depth));
}

function entityLink(entity, depth) {
  return h("a", { href: hashFor(entity, depth), class: "mono" }, entity);
}

// The graph again as a table: readable by a screen reader, and searchable with Ctrl+F.
function edgeTable(edges, depth) {
  const head = ["Source", "Target", "Job", "Runs", "Latest run", "Recorded by"];
  return h("section", {},
    h("h2", { id: "edges-h2" }, `Edges (${edges.length})`),
    h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "edges-h2" },
      h("table", { class: "data", "aria-labelledby": "edges-h2", dataset: { testid: "edges" } },
        h("thead", {}, h("tr", {}, ...head.map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, ...edges.map((e) => h("tr", { dataset: { testid: "edge" } },
          h("td", { class: "wrap" }, entityLink(e.source, depth)),
          h("td", { class: "wrap" }, entityLink(e.target, depth)),
          h("td", { class: "wrap" }, e.job || "—"),
          h("td", { class: "num" }, String(e.run_count ?? "—")),
          h("td", {}, latestRun(e)),
          h("td", {}, e.origin || "—"),
        ))),
      ),
    ),
  );
}

// Only a run's edge names one of our runs; an OpenLineage edge carries a foreign runId.
function latestRun(e) {
  if (!e.latest_run_at) return "—";
  const when = fmtTime(e.latest_run_at);
  if (e.origin === "run" && e.latest_run_id) {
    return h("a", { href: `#/runs/${encodeURIComponent(e.latest_run_id)}` }, when);
  }
  return when;
}
