// Executors (#/executors): who reported in, refreshed every few seconds while the page is open.
import { api } from "./api.js";
import { h, fmtTime, fmtAgo, problemBanner, emptyState } from "./dom.js";

const REFRESH_MS = 5000;
// The gateway's own rule (executors.py STALE_AFTER_SECONDS); used only if `stale` is absent.
const STALE_AFTER_MS = 30_000;

const isAbort = (err) => err && err.name === "AbortError";

function isStale(x) {
  if (typeof x.stale === "boolean") return x.stale;
  return Date.now() - Date.parse(x.last_heartbeat) > STALE_AFTER_MS;
}

function stateBadge(x, stale) {
  if (stale) return h("span", { class: "badge stale" }, "stale");
  if (!x.ready) return h("span", { class: "badge not-ready" }, "not ready");
  return h("span", { class: "badge ok" }, "ready");
}

function executorRow(x) {
  const stale = isStale(x);
  const load = h("meter", { min: "0", max: String(Math.max(1, x.capacity)), value: String(x.running),
    "aria-label": `${x.id}: ${x.running} of ${x.capacity} slots in use` });
  return h("tr", { dataset: { testid: "executor", executorId: x.id, stale: String(stale) }, class: stale ? "is-stale" : "" },
    h("th", { scope: "row", class: "mono" }, x.id),
    h("td", {}, x.kind),
    h("td", {}, stateBadge(x, stale)),
    h("td", { class: "num" }, `${x.running} / ${x.capacity} `, load),
    h("td", {}, h("time", { datetime: x.last_heartbeat, title: fmtTime(x.last_heartbeat) }, fmtAgo(x.last_heartbeat))),
  );
}

export async function render(main, params, ctx) {
  const tbody = h("tbody");
  const table = h("table", { class: "data", "aria-labelledby": "executors-h1" },
    h("thead", {}, h("tr", {},
      ...["Executor", "Kind", "State", "Running / capacity", "Last heartbeat"].map((c) => h("th", { scope: "col" }, c)),
    )),
    tbody,
  );
  const errors = h("div");
  const empty = h("div");
  const updated = h("p", { class: "muted", dataset: { testid: "executors-updated" } });
  main.append(h("section", { class: "page", dataset: { testid: "page-executors" } },
    h("h1", { id: "executors-h1" }, "Executors"),
    h("p", { class: "muted" }, "A replica is stale when it has not sent a heartbeat for 30 s; it leaves the list after 5 min."),
    errors,
    empty,
    h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "executors-h1" }, table),
    updated,
  ));

  let timer = null;
  ctx.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });

  async function refresh() {
    try {
      const list = await api("/api/v1/executors", { signal: ctx.signal });
      tbody.replaceChildren(...list.map(executorRow));
      empty.replaceChildren(...(list.length ? [] : [emptyState("No executor has reported in.")]));
      errors.replaceChildren();
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`;
    } catch (err) {
      if (isAbort(err)) return;
      errors.replaceChildren(problemBanner(err));
    }
    // Chained timeouts, not setInterval: a slow answer never piles requests up.
    if (!ctx.signal.aborted) timer = setTimeout(refresh, REFRESH_MS);
  }
  await refresh();
}
