// Routing (#/routing): which executor runs each job type and how, and the tenant's caps in use.
import { api } from "./api.js";
import { h, fmtBytes, problemBanner, emptyState } from "./dom.js";

const isAbort = (err) => err && err.name === "AbortError";

export async function render(main, params, ctx) {
  const limits = h("section", { dataset: { testid: "limits" } },
    h("h2", { id: "limits-h2" }, "Concurrency caps"));
  const matrix = h("section", { dataset: { testid: "routing-matrix" } },
    h("h2", { id: "matrix-h2" }, "Routing matrix"));
  main.append(h("section", { class: "page", dataset: { testid: "page-routing" } },
    h("h1", {}, "Routing and limits"), limits, matrix));
  // Independent: the scheduler answering /limits slowly or not at all must not hide the matrix.
  await Promise.all([showLimits(limits, ctx), showMatrix(matrix, ctx)]);
}

// -- caps ---------------------------------------------------------------------------------

function capRow(name, testid, cap, running, queued) {
  const usage = cap == null ? "no cap of its own" : `${running} of ${cap} running`;
  const bar = cap == null
    ? null
    : h("meter", { min: "0", max: String(Math.max(1, cap)), value: String(Math.min(running, Math.max(1, cap))),
        high: String(Math.max(1, cap) * 0.8), optimum: "0", "aria-label": `${name}: ${usage}` });
  const full = cap != null && running >= cap;
  return h("tr", { dataset: { testid, full: String(full) } },
    h("th", { scope: "row" }, name),
    h("td", { class: "cap-bar" }, bar, " ", usage, full ? h("span", { class: "badge full" }, "full") : null),
    h("td", { class: "num" }, String(running)),
    h("td", { class: "num" }, String(queued)),
  );
}

async function showLimits(section, ctx) {
  try {
    const l = await api("/api/v1/limits", { signal: ctx.signal });
    const tbody = h("tbody", {}, capRow("Tenant", "cap-tenant", l.max_concurrent_runs, l.running, l.queued));
    for (const [lane, u] of Object.entries(l.lanes || {})) {
      tbody.append(capRow(`Lane ${lane}`, `cap-lane-${lane}`, u.max_concurrent_runs, u.running, u.queued));
    }
    section.append(
      h("p", { class: "muted" }, "Running counts dispatched and running runs; a run waits in its queue while a cap it falls under is full."),
      h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "limits-h2" },
        h("table", { class: "data", "aria-labelledby": "limits-h2" },
          h("thead", {}, h("tr", {}, ...["Scope", "Use of the cap", "Running", "Queued"].map((c) => h("th", { scope: "col" }, c)))),
          tbody)),
    );
  } catch (err) {
    if (!isAbort(err)) section.append(problemBanner(err));
  }
}

// -- matrix -------------------------------------------------------------------------------

function commands(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return "—";
  return h("ul", { class: "plain" }, ...entries.map(([ext, cmd]) => h("li", {}, h("code", {}, `${ext} → ${cmd.join(" ")}`))));
}

function retry(r) {
  if (!r) return "deployment default";
  const also = [r.retry_on_exit_codes?.length ? `exit ${r.retry_on_exit_codes.join(", ")}` : null,
    r.retry_on_timeout ? "timeouts" : null].filter(Boolean);
  return `${r.max_attempts} attempts` + (also.length ? `, retries ${also.join(" and ")}` : "");
}

function duration(seconds) {
  if (seconds == null) return "deployment default";
  if (seconds % 3600 === 0) return `${seconds / 3600} h`;
  if (seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

async function showMatrix(section, ctx) {
  try {
    const routing = await api("/api/v1/routing", { signal: ctx.signal });
    const rows = Object.entries(routing.job_types || {}).sort(([a], [b]) => a.localeCompare(b));
    if (!rows.length) {
      section.append(emptyState("No job type is routed."));
      return;
    }
    const head = ["Job type", "Executor", "Image", "CPUs", "Memory", "Processes", "/tmp", "Workspace", "Network", "Timeout", "Retry", "Commands"];
    section.append(h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "matrix-h2" },
      h("table", { class: "data", "aria-labelledby": "matrix-h2" },
        h("thead", {}, h("tr", {}, ...head.map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, ...rows.map(([type, r]) => h("tr", { dataset: { testid: "route", jobType: type } },
          h("th", { scope: "row", class: "mono" }, type),
          h("td", {}, r.executor),
          h("td", { class: "mono wrap" }, r.image),
          h("td", { class: "num" }, String(r.cpus)),
          h("td", { class: "num" }, fmtBytes(r.memory_bytes)),
          h("td", { class: "num" }, String(r.pids)),
          h("td", { class: "num" }, fmtBytes(r.tmp_bytes)),
          h("td", { class: "num" }, fmtBytes(r.workspace_bytes)),
          h("td", {}, r.network === "egress" ? "outbound only" : "none"),
          h("td", {}, duration(r.timeout_seconds)),
          h("td", {}, retry(r.retry)),
          h("td", {}, commands(r.commands)),
        ))),
      ),
    ));
  } catch (err) {
    if (!isAbort(err)) section.append(problemBanner(err));
  }
}
