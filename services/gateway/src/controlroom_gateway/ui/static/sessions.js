// Sessions: the list (#/sessions) and one session with its runs (#/sessions/<id>).
import { api, can } from "./api.js";
import { h, fmtTime, fmtAgo, statusBadge, problemBanner, emptyState } from "./dom.js";

const PAGE = 50;
const STATUSES = ["queued", "dispatched", "running", "completed", "failed", "cancelled"];

const isAbort = (err) => err && err.name === "AbortError";

export async function render(main, params, ctx) {
  const id = params.path && params.path[0];
  return id ? renderSession(main, decodeURIComponent(id), ctx) : renderList(main, ctx);
}

// "3 running · 10 completed": only the statuses that have runs.
function countsText(counts = {}) {
  const parts = STATUSES.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`);
  return parts.length ? parts.join(" · ") : "no runs";
}

function loadMoreButton(onclick) {
  const button = h("button", { type: "button", class: "load-more", onclick }, "Load more");
  button.hidden = true;
  return button;
}

async function renderList(main, ctx) {
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "data", "aria-labelledby": "sessions-h1" },
    h("thead", {}, h("tr", {},
      ...["Name", "Status", "Runs", "Description", "Created by", "Created"].map((c) => h("th", { scope: "col" }, c)),
    )),
    tbody,
  );
  const errors = h("div");
  let cursor = null;
  const more = loadMoreButton(() => load());
  const root = h("section", { class: "page", dataset: { testid: "page-sessions" } },
    h("h1", { id: "sessions-h1" }, "Sessions"),
    errors,
    h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "sessions-h1" }, table),
    more,
  );
  main.append(root);

  async function load() {
    more.disabled = true;
    errors.replaceChildren();
    try {
      const page = await api("/api/v1/sessions", { query: { limit: PAGE, cursor }, signal: ctx.signal });
      for (const s of page.items) tbody.append(sessionRow(s));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (!tbody.children.length) table.replaceWith(emptyState("No sessions yet."));
    } catch (err) {
      if (!isAbort(err)) errors.append(problemBanner(err));
    } finally {
      more.disabled = false;
    }
  }
  await load();
}

function sessionRow(s) {
  return h("tr", { dataset: { testid: "session", sessionId: s.session_id } },
    h("td", {}, h("a", { href: `#/sessions/${encodeURIComponent(s.session_id)}` }, s.name)),
    h("td", {}, statusBadge(s.status)),
    h("td", {}, countsText(s.counts)),
    h("td", { class: "wrap" }, s.description || ""),
    h("td", {}, s.created_by),
    h("td", {}, h("time", { datetime: s.created_at, title: fmtTime(s.created_at) }, fmtAgo(s.created_at))),
  );
}

async function renderSession(main, id, ctx) {
  const root = h("section", { class: "page", dataset: { testid: "page-session" } });
  main.append(root);
  let session;
  try {
    session = await api(`/api/v1/sessions/${encodeURIComponent(id)}`, { signal: ctx.signal });
  } catch (err) {
    if (isAbort(err)) return;
    root.append(h("h1", {}, "Session"), problemBanner(err), h("p", {}, h("a", { href: "#/sessions" }, "All sessions")));
    return;
  }
  const summary = h("div");
  const notice = h("p", { role: "status", class: "notice" });
  const errors = h("div");
  root.append(
    h("p", { class: "crumbs" }, h("a", { href: "#/sessions" }, "Sessions")),
    h("h1", {}, session.name),
    summary,
    notice,
    errors,
  );
  showSummary(summary, session);

  if (can("operator")) {
    const cancel = h("button", { type: "button", class: "danger", dataset: { testid: "cancel-session" } }, "Cancel session");
    cancel.disabled = session.status !== "active";
    cancel.addEventListener("click", async () => {
      cancel.disabled = true;
      errors.replaceChildren();
      try {
        const done = await api(`/api/v1/sessions/${encodeURIComponent(id)}/cancel`, { method: "POST", signal: ctx.signal });
        notice.textContent = `Cancellation requested for ${done.cancel_requested} run${done.cancel_requested === 1 ? "" : "s"}.`;
        session = await api(`/api/v1/sessions/${encodeURIComponent(id)}`, { signal: ctx.signal });
        showSummary(summary, session);
      } catch (err) {
        if (!isAbort(err)) errors.append(problemBanner(err));
      }
      cancel.disabled = session.status !== "active";
    });
    root.append(h("div", { class: "actions" }, cancel));
  }
  root.append(h("h2", { id: "session-runs-h2" }, "Runs"));
  await sessionRuns(root, session.session_id, ctx);
}

function showSummary(el, s) {
  const counts = h("ul", { class: "count-list", "aria-label": "Runs per status" },
    ...STATUSES.map((st) =>
      h("li", {}, statusBadge(st), " ", h("span", { dataset: { testid: `session-count-${st}` } }, String(s.counts?.[st] ?? 0))),
    ),
  );
  el.replaceChildren(
    h("dl", { class: "facts" },
      h("dt", {}, "Status"), h("dd", { dataset: { testid: "session-status" } }, statusBadge(s.status)),
      h("dt", {}, "Description"), h("dd", { class: "wrap" }, s.description || "—"),
      h("dt", {}, "Created by"), h("dd", {}, s.created_by),
      h("dt", {}, "Created"), h("dd", {}, fmtTime(s.created_at)),
    ),
    counts,
  );
}

async function sessionRuns(root, sessionId, ctx) {
  const tbody = h("tbody");
  const table = h("table", { class: "data", "aria-labelledby": "session-runs-h2" },
    h("thead", {}, h("tr", {},
      ...["Run", "Job type", "Status", "Lane", "Created by", "Created"].map((c) => h("th", { scope: "col" }, c)),
    )),
    tbody,
  );
  const errors = h("div");
  let cursor = null;
  const more = loadMoreButton(() => load());
  root.append(errors, h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "session-runs-h2" }, table), more);

  async function load() {
    more.disabled = true;
    errors.replaceChildren();
    try {
      const page = await api("/api/v1/runs", { query: { session_id: sessionId, limit: PAGE, cursor }, signal: ctx.signal });
      for (const r of page.items) tbody.append(runRow(r));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (!tbody.children.length) table.replaceWith(emptyState("No runs in this session yet."));
    } catch (err) {
      if (!isAbort(err)) errors.append(problemBanner(err));
    } finally {
      more.disabled = false;
    }
  }
  await load();
}

function runRow(r) {
  return h("tr", { dataset: { testid: `run-${r.run_id}`, status: r.status } },
    h("td", {}, h("a", { href: `#/runs/${encodeURIComponent(r.run_id)}`, class: "mono" }, String(r.run_id).slice(0, 8))),
    h("td", {}, r.job_type),
    h("td", {}, statusBadge(r.status)),
    h("td", {}, r.lane || "—"),
    h("td", {}, r.created_by),
    h("td", {}, h("time", { datetime: r.created_at, title: fmtTime(r.created_at) }, fmtAgo(r.created_at))),
  );
}
