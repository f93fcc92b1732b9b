// The runs board (#/runs): one column per lane, live from the tenant's run stream.
//
// Order of work: the stream is opened first and the first page is read only after its
// `ready`, so that no change can fall between the page and the stream; `run` events that
// arrive while the page loads are buffered and applied after it.

import { api, can, isAbort } from "./api.js";
import { follow } from "./sse.js";
import {
  STATUSES,
  TERMINAL,
  emptyState,
  failureReasonText,
  fmtAgo,
  fmtDuration,
  fmtTime,
  h,
  problemBanner,
  queueReasonText,
  replaceChildren,
  secondsBetween,
  shortId,
  statusBadge,
} from "./dom.js";

const FALLBACK_LANES = ["A", "B", "C", "D"];
const FILTERS = ["status", "job_type", "lane", "session_id", "created_by", "since"];
const PAGE_SIZE = 50;
const REFRESH_MS = 400; // counts and limits follow a burst of events within half a second
const LIMITS_WAIT_MS = 2000; // the first paint does not wait longer than this for the lanes
const READY_WAIT_MS = 3000; // nor this long for a stream that does not open
const CANCEL_PARALLEL = 8;
const QUEUED_REFRESH = 200; // the most queued runs re-read for their place in line

export async function render(main, params, ctx) {
  const board = createBoard(params, ctx);
  main.append(board.root);
  board.start();
}

function createBoard(params, ctx) {
  const filters = Object.fromEntries(FILTERS.map((k) => [k, params.query.get(k) || ""]));
  const operator = can("operator");
  const state = {
    limits: null,
    lanes: new Map(), // lane → {section, active, done, headActive, headDone, usage, empty}
    cards: new Map(), // run_id → {run, el}
    selected: new Set(),
    cancelling: new Set(), // cancel accepted, run not ended yet: its card says so
    buffer: [],
    phase: "waiting", // waiting → loading → live
    nextCursor: null,
    oldest: null, // [created_at ms, run_id] of the last run of the pages read so far
    refreshTimer: null,
    refreshing: null,
    refreshAgain: false,
    everReady: false,
  };

  // ---- skeleton -------------------------------------------------------------------------
  const live = h(
    "span",
    { class: "live", dataset: { testid: "live", state: "connecting" } },
    "Connecting…",
  );
  const countEls = Object.fromEntries(
    STATUSES.map((s) => [s, h("strong", { dataset: { testid: `count-${s}` } }, "–")]),
  );
  const totalEl = h("strong", { dataset: { testid: "count-total" } }, "–");
  const alerts = h("div", { class: "alerts" });
  const notice = h("p", { class: "notice", role: "status" });
  const lanesEl = h("div", { class: "lanes" });
  const more = h("div", { class: "more" });
  const laneSelect = h("select", { id: "f-lane", name: "lane" });
  const bulkButton = operator
    ? h(
        "button",
        { type: "button", dataset: { testid: "bulk-cancel" }, disabled: true, onclick: bulkCancel },
        "Cancel selected",
      )
    : null;
  const selectedNote = h("span", { class: "muted" });

  const root = h(
    "section",
    { class: "page page-runs", dataset: { testid: "page-runs" } },
    h("div", { class: "page-head" }, h("h1", {}, "Runs"), live),
    // A group, not a <nav>: the header's is the page's one navigation landmark.
    h(
      "div",
      { class: "counts", role: "group", "aria-label": "Runs by status" },
      h("ul", {}, [
        ...STATUSES.map((s) =>
          h(
            "li",
            {},
            h(
              "a",
              {
                href: hrefWith({ ...filters, status: filters.status === s ? "" : s }),
                class: `count status-${s}`,
                "aria-current": filters.status === s ? "true" : null,
              },
              h("span", {}, s),
              " ",
              countEls[s],
            ),
          ),
        ),
        h(
          "li",
          {},
          h("span", { class: "count count-total" }, h("span", {}, "total"), " ", totalEl),
        ),
      ]),
    ),
    filterForm(),
    alerts,
    operator ? h("div", { class: "toolbar" }, bulkButton, selectedNote) : null,
    notice,
    lanesEl,
    more,
  );

  function filterForm() {
    const field = (label, control) =>
      h("div", { class: "field" }, h("label", { for: control.id }, label), control);
    const statusSelect = h(
      "select",
      { id: "f-status", name: "status", value: filters.status },
      h("option", { value: "" }, "any"),
      STATUSES.map((s) => h("option", { value: s }, s)),
    );
    const text = (name, placeholder) =>
      h("input", {
        id: `f-${name}`,
        name,
        type: "text",
        value: filters[name],
        placeholder,
        autocomplete: "off",
      });
    const since = h("input", {
      id: "f-since",
      name: "since",
      type: "datetime-local",
      value: toLocalInput(filters.since),
    });
    fillLaneOptions(FALLBACK_LANES);
    return h(
      "form",
      { class: "filters", role: "search", "aria-label": "Filter runs", onsubmit: applyFilters },
      field("Status", statusSelect),
      field("Job type", text("job_type", "spark_etl")),
      field("Lane", laneSelect),
      field("Session", text("session_id", "session id")),
      field("Created by", text("created_by", "alice")),
      field("Since", since),
      h(
        "div",
        { class: "field actions" },
        h("button", { type: "submit" }, "Apply"),
        h("a", { href: "#/runs", class: "button secondary" }, "Clear"),
      ),
    );
  }

  function applyFilters(event) {
    event.preventDefault();
    const data = new FormData(event.target);
    const next = Object.fromEntries(FILTERS.map((k) => [k, String(data.get(k) ?? "").trim()]));
    const since = new Date(next.since);
    next.since = next.since && !Number.isNaN(since.getTime()) ? since.toISOString() : ""; // with a zone
    location.hash = hrefWith(next); // the router re-renders the board with them
  }

  function fillLaneOptions(names) {
    const all = [...new Set([...names, ...(filters.lane ? [filters.lane] : [])])];
    replaceChildren(
      laneSelect,
      h("option", { value: "" }, "any"),
      all.map((l) => h("option", { value: l }, l)),
    );
    laneSelect.value = filters.lane;
  }

  // ---- lanes and cards ------------------------------------------------------------------
  function laneNames() {
    const names = state.limits ? Object.keys(state.limits.lanes || {}) : [];
    return names.length ? names : FALLBACK_LANES;
  }

  function ensureLane(name) {
    let lane = state.lanes.get(name);
    if (lane) return lane;
    const headActive = h("h3", {}, "Active");
    const headDone = h("h3", {}, "Finished");
    lane = {
      active: h("div", { class: "group", dataset: { group: "active" } }),
      done: h("div", { class: "group", dataset: { group: "done" } }),
      usage: h("p", { class: "lane-usage muted" }),
      empty: emptyState("No runs"),
      headActive,
      headDone,
    };
    lane.section = h(
      "section",
      { class: "lane", dataset: { testid: `lane-${name}` }, "aria-label": `Lane ${name}` },
      h("h2", {}, `Lane ${name}`),
      lane.usage,
      lane.empty,
      headActive,
      lane.active,
      headDone,
      lane.done,
    );
    state.lanes.set(name, lane);
    lanesEl.append(lane.section);
    updateLaneUsage(name);
    updateLaneCounts(lane);
    return lane;
  }

  function laneOf(run) {
    return run.lane ?? laneNames()[0];
  }

  function updateLaneCounts(lane) {
    const a = lane.active.childElementCount;
    const d = lane.done.childElementCount;
    lane.headActive.textContent = `Active (${a})`;
    lane.headDone.textContent = `Finished (${d})`;
    lane.headActive.hidden = lane.active.hidden = a === 0;
    lane.headDone.hidden = lane.done.hidden = d === 0;
    lane.empty.hidden = a + d > 0;
  }

  function updateLaneUsage(name) {
    const lane = state.lanes.get(name);
    const usage = state.limits?.lanes?.[name];
    if (!lane) return;
    lane.usage.textContent = usage
      ? `${usage.running}${usage.max_concurrent_runs != null ? `/${usage.max_concurrent_runs}` : ""} running · ${usage.queued} queued`
      : "";
  }

  function card(run) {
    const id = run.run_id;
    const terminal = TERMINAL.has(run.status);
    const reason = run.status === "queued" ? queueReasonText(run, state.limits) : null;
    const failure = run.status === "failed" ? failureReasonText(run) : null;
    const started = run.started_at;
    return h(
      "article",
      {
        class: "run-card",
        dataset: { testid: `run-${id}`, status: run.status, t: Date.parse(run.created_at) },
      },
      h(
        "div",
        { class: "card-head" },
        operator
          ? h("input", {
              type: "checkbox",
              dataset: { testid: "select" },
              "aria-label": `Select run ${shortId(id)}`,
              checked: state.selected.has(id),
              disabled: terminal,
              onchange: (e) => toggleSelected(id, e.target.checked),
            })
          : null,
        h(
          "a",
          { href: `#/runs/${id}`, class: "run-link" },
          h("span", { class: "job-type" }, run.job_type),
          " ",
          h("span", { class: "mono muted" }, shortId(id)),
        ),
        statusBadge(run.status),
      ),
      h(
        "p",
        { class: "card-meta muted" },
        run.created_by,
        " · ",
        h(
          "time",
          { datetime: run.created_at, title: fmtTime(run.created_at), dataset: { ago: "" } },
          fmtAgo(run.created_at),
        ),
        run.attempt > 1 ? ` · attempt ${run.attempt}/${run.max_attempts}` : "",
        run.priority != null && run.priority !== 3 ? ` · P${run.priority}` : "",
        started ? ` · ${fmtDuration(secondsBetween(started, run.completed_at))}` : "",
      ),
      reason || failure
        ? h(
            "div",
            { class: "card-badges" },
            reason
              ? h("span", { class: "badge reason", dataset: { testid: "queue-reason" } }, reason)
              : null,
            failure
              ? h(
                  "span",
                  {
                    class: "badge failure",
                    dataset: { testid: "failure-reason" },
                    title: run.error || null,
                  },
                  failure,
                )
              : null,
          )
        : null,
      operator && !terminal
        ? h(
            "button",
            {
              type: "button",
              class: "small secondary",
              dataset: { testid: "cancel" },
              "aria-label": `Cancel run ${shortId(id)}`,
              disabled: state.cancelling.has(id),
              onclick: (e) => cancelOne(id, e.currentTarget),
            },
            state.cancelling.has(id) ? "Cancelling…" : "Cancel",
          )
        : null,
    );
  }

  /** Puts the run's card where it belongs: its lane, its group, newest first. */
  function place(run) {
    const known = state.cards.get(run.run_id);
    const el = card(run);
    // A keyboard user on this card keeps the focus on the same control.
    const focused = known?.el.contains(document.activeElement)
      ? document.activeElement.dataset.testid
      : null;
    if (TERMINAL.has(run.status)) {
      state.cancelling.delete(run.run_id);
      if (state.selected.delete(run.run_id)) updateSelection();
    }
    const lane = ensureLane(laneOf(run));
    const group = TERMINAL.has(run.status) ? lane.done : lane.active;
    const previousLane = known ? known.el.closest(".lane") : null;
    known?.el.remove();
    group.insertBefore(el, firstOlder(group, run));
    state.cards.set(run.run_id, { run, el });
    if (focused) el.querySelector(`[data-testid="${focused}"]`)?.focus();
    updateLaneCounts(lane);
    if (previousLane && previousLane !== lane.section) {
      for (const other of state.lanes.values())
        if (other.section === previousLane) updateLaneCounts(other);
    }
  }

  function firstOlder(group, run) {
    const t = Date.parse(run.created_at);
    for (const child of group.children) {
      const ct = Number(child.dataset.t);
      if (ct < t || (ct === t && child.dataset.testid < `run-${run.run_id}`)) return child;
    }
    return null;
  }

  function matches(run) {
    const f = filters;
    return (
      (!f.status || run.status === f.status) &&
      (!f.job_type || run.job_type === f.job_type) &&
      (!f.lane || run.lane === f.lane) &&
      (!f.session_id || String(run.session_id).toLowerCase() === f.session_id.toLowerCase()) &&
      (!f.created_by || run.created_by === f.created_by) &&
      (!f.since || Date.parse(run.created_at) >= Date.parse(f.since))
    );
  }

  /** A run older than the pages read so far comes with "Load more", not at the top. */
  function beyondLoaded(run) {
    if (!state.nextCursor || !state.oldest) return false;
    const t = Date.parse(run.created_at);
    return t < state.oldest[0] || (t === state.oldest[0] && run.run_id < state.oldest[1]);
  }

  // ---- live updates ---------------------------------------------------------------------
  function onEvent(event) {
    if (event.event === "ready") {
      state.everReady = true;
      setLive("open");
      if (state.phase === "waiting") loadFirst();
    } else if (event.event === "run" && event.data?.run_id) {
      if (state.phase === "live") apply(event.data);
      else state.buffer.push(event.data);
    }
  }

  function apply(run) {
    scheduleRefresh();
    if (!state.cards.has(run.run_id) && (!matches(run) || beyondLoaded(run))) return;
    place(run);
    if (!state.nextCursor) more.querySelector(".empty")?.remove();
    const board = (window.__runboard ??= {});
    board.lastApplied = {
      run_id: run.run_id,
      status: run.status,
      at: performance.timeOrigin + performance.now(),
    };
  }

  function setLive(s) {
    live.dataset.state = s;
    live.textContent =
      { open: "Live", connecting: "Connecting…", reconnecting: "Reconnecting…", closed: "Offline" }[
        s
      ] || s;
  }

  // ---- loading --------------------------------------------------------------------------
  async function loadFirst() {
    if (state.phase !== "waiting") return;
    state.phase = "loading";
    const pageP = api("/api/v1/runs", {
      query: { ...filters, limit: PAGE_SIZE },
      signal: ctx.signal,
    });
    const limitsP = Promise.race([loadLimits(), delay(LIMITS_WAIT_MS)]);
    refreshCounts().catch(() => {});
    try {
      const [page] = await Promise.all([pageP, limitsP]);
      const lanes = filters.lane ? [filters.lane] : laneNames();
      lanes.forEach(ensureLane);
      addPage(page);
      if (!("firstRunsPainted" in document.body.dataset)) {
        document.body.dataset.firstRunsPainted = String(Math.round(performance.now()));
      }
    } catch (error) {
      if (isAbort(error)) return;
      showError(error);
      (filters.lane ? [filters.lane] : laneNames()).forEach(ensureLane);
    }
    state.phase = "live";
    const buffered = state.buffer.splice(0);
    buffered.forEach(apply);
  }

  function addPage(page) {
    for (const run of page.items) {
      if (!state.cards.has(run.run_id)) place(run); // the stream's version is as new or newer
    }
    const last = page.items.at(-1);
    if (last) state.oldest = [Date.parse(last.created_at), last.run_id];
    state.nextCursor = page.next_cursor || null;
    replaceChildren(
      more,
      state.nextCursor
        ? h(
            "button",
            {
              type: "button",
              class: "secondary",
              dataset: { testid: "next-page" },
              onclick: loadMore,
            },
            "Load more",
          )
        : state.cards.size === 0
          ? emptyState("No runs match these filters.")
          : null,
    );
  }

  async function loadMore(event) {
    const button = event.currentTarget;
    button.disabled = true;
    button.textContent = "Loading…";
    try {
      addPage(
        await api("/api/v1/runs", {
          query: { ...filters, limit: PAGE_SIZE, cursor: state.nextCursor },
          signal: ctx.signal,
        }),
      );
    } catch (error) {
      if (isAbort(error)) return;
      showError(error);
      button.disabled = false;
      button.textContent = "Load more";
    }
  }

  async function loadLimits() {
    try {
      state.limits = await api("/api/v1/limits", { signal: ctx.signal });
    } catch (error) {
      if (isAbort(error)) throw error;
      return; // the board works without: lanes A–D and reasons without numbers
    }
    fillLaneOptions(laneNames());
    if (state.phase === "live" && !filters.lane) laneNames().forEach(ensureLane);
    for (const name of state.lanes.keys()) updateLaneUsage(name);
    for (const { run, el } of state.cards.values()) {
      const badge = el.querySelector('[data-testid="queue-reason"]');
      if (badge) badge.textContent = queueReasonText(run, state.limits);
    }
  }

  async function refreshCounts() {
    const { status, ...rest } = filters; // counts are per status: the status filter is the view's
    try {
      const body = await api("/api/v1/runs/counts", { query: rest, signal: ctx.signal });
      for (const s of STATUSES) countEls[s].textContent = String(body.counts?.[s] ?? 0);
      totalEl.textContent = String(body.total ?? "–");
    } catch (error) {
      if (isAbort(error)) throw error;
    }
  }

  /**
   * Queued cards' place in line moves when other runs are dispatched, which sends no event
   * of their own: after a change, the queued runs on the board are read again.
   */
  async function refreshQueued() {
    const queued = [...state.cards.values()].filter(({ run }) => run.status === "queued");
    if (!queued.length || (filters.status && filters.status !== "queued")) return;
    const query = { ...filters, status: "queued", limit: QUEUED_REFRESH };
    try {
      const page = await api("/api/v1/runs", { query, signal: ctx.signal });
      for (const fresh of page.items) {
        const known = state.cards.get(fresh.run_id);
        // Only a card still queued: an event may have moved it on while this was read.
        if (known?.run.status !== "queued") continue;
        const { queue_reason: reason, queue_position: position } = known.run;
        if (fresh.queue_reason !== reason || fresh.queue_position !== position) place(fresh);
      }
    } catch (error) {
      if (isAbort(error)) throw error;
    }
  }

  /** At most one refresh in flight; events during it ask for one more after it. */
  function scheduleRefresh() {
    if (state.refreshTimer || ctx.signal.aborted) return;
    state.refreshTimer = setTimeout(async () => {
      state.refreshTimer = null;
      if (state.refreshing) {
        state.refreshAgain = true;
        return;
      }
      state.refreshing = Promise.all([refreshCounts(), loadLimits(), refreshQueued()]).catch(
        () => {},
      );
      await state.refreshing;
      state.refreshing = null;
      if (state.refreshAgain) {
        state.refreshAgain = false;
        scheduleRefresh();
      }
    }, REFRESH_MS);
  }

  // ---- cancelling -----------------------------------------------------------------------
  function toggleSelected(id, on) {
    if (on) state.selected.add(id);
    else state.selected.delete(id);
    updateSelection();
  }

  function updateSelection() {
    if (!bulkButton) return;
    for (const id of state.selected) {
      if (!state.cards.has(id)) state.selected.delete(id);
    }
    const n = state.selected.size;
    bulkButton.disabled = n === 0;
    selectedNote.textContent = n ? `${n} selected` : "";
  }

  async function cancelOne(id, button) {
    button.disabled = true;
    button.textContent = "Cancelling…";
    const error = await requestCancel(id);
    if (error) {
      showError(error, `Run ${shortId(id)} could not be cancelled: `);
      button.disabled = false;
      button.textContent = "Cancel";
    }
  }

  /** null when the cancel was accepted (or the run had already finished). */
  async function requestCancel(id) {
    try {
      await api(`/api/v1/runs/${id}/cancel`, { method: "POST" });
    } catch (error) {
      if (error.status === 409) return null; // finished meanwhile: nothing left to cancel
      return error;
    }
    state.cancelling.add(id);
    const button = state.cards.get(id)?.el.querySelector('[data-testid="cancel"]');
    if (button) {
      button.disabled = true;
      button.textContent = "Cancelling…";
    }
    if (live.dataset.state !== "open") {
      // Without the stream nothing would show the change: read the run once.
      api(`/api/v1/runs/${id}`, { signal: ctx.signal }).then(apply, () => {});
    }
    return null;
  }

  async function bulkCancel() {
    const ids = [...state.selected];
    bulkButton.disabled = true;
    notice.textContent = `Cancelling ${ids.length} run${ids.length === 1 ? "" : "s"}…`;
    const failures = [];
    await pool(ids, CANCEL_PARALLEL, async (id) => {
      const error = await requestCancel(id);
      if (error) failures.push([id, error]);
      else state.selected.delete(id);
    });
    for (const id of ids) {
      const box = state.cards.get(id)?.el.querySelector('[data-testid="select"]');
      if (box) box.checked = state.selected.has(id);
    }
    updateSelection();
    const done = ids.length - failures.length;
    notice.textContent = `Cancel requested for ${done} run${done === 1 ? "" : "s"}.`;
    if (failures.length) {
      const error = new Error(`${failures.length} of ${ids.length} runs could not be cancelled.`);
      error.problem = {
        errors: failures.map(([id, e]) => ({ field: shortId(id), message: e.message })),
      };
      showError(error);
    }
  }

  function showError(error, prefix = "") {
    const shown = prefix
      ? Object.assign(new Error(prefix + error.message), { problem: error.problem })
      : error;
    alerts.append(problemBanner(shown, { onDismiss: (banner) => banner.remove() }));
  }

  // ---- start and stop -------------------------------------------------------------------
  function start() {
    const stream = follow("/api/v1/runs/stream", {
      reopen: true, // the tenant stream never ends by itself: an end is a dropped connection
      signal: ctx.signal,
      onEvent,
      onState: (s) => {
        // "open" waits for the first `ready`; a reconnection after it is live again at once.
        if (s !== "open" || state.everReady) setLive(s);
      },
      onError: () => {
        setLive("closed");
        loadFirst(); // no live updates, but the runs all the same
      },
    });
    const fallback = setTimeout(loadFirst, READY_WAIT_MS);
    const ticker = setInterval(() => {
      for (const t of root.querySelectorAll("time[data-ago]")) t.textContent = fmtAgo(t.dateTime);
    }, 30_000);
    ctx.signal.addEventListener(
      "abort",
      () => {
        stream.close();
        clearTimeout(fallback);
        clearInterval(ticker);
        clearTimeout(state.refreshTimer);
      },
      { once: true },
    );
  }

  return { root, start };
}

// ---- helpers ----------------------------------------------------------------------------
function hrefWith(values) {
  const params = new URLSearchParams();
  for (const k of FILTERS) if (values[k]) params.set(k, values[k]);
  const qs = params.toString();
  return qs ? `#/runs?${qs}` : "#/runs";
}

/** ISO time → the value a datetime-local input shows (local time, to the minute). */
function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `work` over `items`, at most `width` at a time. */
async function pool(items, width, work) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}
