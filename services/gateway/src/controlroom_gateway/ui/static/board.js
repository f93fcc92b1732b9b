// The runs board (#/runs): one column per lane, live from the tenant's run stream.
//
// First paint waits for nothing it can do without: the first page of runs is asked for by the
// shell while this module loads (board_first.js), the stream, the counts and the limits as it
// starts; the page is drawn as it arrives (in lanes A–D until the limits name the tenant's
// own), and board_live.js keeps page and stream consistent. This module wires the pieces:
// board_cards.js (a card), board_lanes.js (the columns), board_filters.js (the filter form and
// URL), board_counts.js (runs per status), board_bulk.js (cancelling).

import { api, can, isAbort } from "./api.js";
import { TERMINAL, emptyState, fmtAgo, h, problemBanner, replaceChildren } from "./dom.js";
import { createCancelling } from "./board_bulk.js";
import { differs, runCard, updateQueueReason } from "./board_cards.js";
import { createCounts } from "./board_counts.js";
import { filterForm, matches, readFilters } from "./board_filters.js";
import { PAGE_SIZE, readFirstPage } from "./board_first.js";
import { createLanes } from "./board_lanes.js";
import { createIndicator, createRefresher, followRuns } from "./board_live.js";

const REFRESH_MS = 400; // counts and limits follow a burst of events within half a second
const QUEUED_REFRESH = 200; // the most queued runs re-read for their place in line

export async function render(main, params, ctx) {
  const board = createBoard(params, ctx);
  main.append(board.root);
  board.start();
}

function createBoard(params, ctx) {
  const { signal } = ctx;
  const filters = readFilters(params.query);
  const cards = new Map(); // run_id → {run, el}
  let limits = null;
  let nextCursor = null;
  let oldest = null; // [created_at ms, run_id] of the last run of the pages read so far
  let early = ctx.early; // the first page, asked for by the shell while this module loaded

  const live = createIndicator();
  const counts = createCounts(filters, signal);
  const lanes = createLanes(filters);
  const form = filterForm(filters, lanes.names());
  const alerts = h("div", { class: "alerts" });
  const notice = h("p", { class: "notice", role: "status" });
  const more = h("div", { class: "more" });
  const cancels = can("operator")
    ? createCancelling({ cardOf: (id) => cards.get(id)?.el, notice, showError, readBack })
    : null;
  const refresher = createRefresher(
    () => Promise.all([counts.load(), loadLimits(), refreshQueued()]),
    REFRESH_MS,
    signal,
  );

  const root = h(
    "section",
    { class: "page page-runs", dataset: { testid: "page-runs" } },
    h("div", { class: "page-head" }, h("h1", {}, "Runs"), live.el),
    counts.el,
    form.el,
    alerts,
    cancels?.toolbar,
    notice,
    lanes.el,
    more,
  );

  // ---- cards ----------------------------------------------------------------------------
  /** Draws the run's card (again) where it belongs. */
  function place(run) {
    const id = run.run_id;
    if (TERMINAL.has(run.status)) cancels?.ended(id);
    const el = runCard(run, {
      operator: Boolean(cancels),
      limits,
      selected: cancels?.isSelected(id) ?? false,
      cancelling: cancels?.isCancelling(id) ?? false,
      onSelect: (runId, on) => cancels.toggle(runId, on),
      onCancel: (runId, button) => cancels.cancelOne(runId, button),
    });
    lanes.put(run, el, cards.get(id)?.el);
    cards.set(id, { run, el });
  }

  /** Draws the run's card where it belongs, or takes it off when it left the filters (a
   * queued run that started, on a board of queued runs). */
  function placeOrDrop(run) {
    if (matches(run, filters)) {
      place(run);
      return;
    }
    const known = cards.get(run.run_id);
    if (!known) return;
    cancels?.ended(run.run_id);
    lanes.remove(known.el);
    cards.delete(run.run_id);
  }

  /** A run older than the pages read so far comes with "Load more", not at the top. */
  function beyondLoaded(run) {
    if (!nextCursor || !oldest) return false;
    const t = Date.parse(run.created_at);
    return t < oldest[0] || (t === oldest[0] && run.run_id < oldest[1]);
  }

  /** One `run` event of the stream: the card is updated, moved or added in place. */
  function apply(run) {
    refresher.schedule();
    if (!cards.has(run.run_id) && (!matches(run, filters) || beyondLoaded(run))) return;
    placeOrDrop(run);
    if (!nextCursor) more.querySelector(".empty")?.remove();
    const board = (window.__runboard ??= {});
    board.lastApplied = {
      run_id: run.run_id,
      status: run.status,
      at: performance.timeOrigin + performance.now(),
    };
  }

  // ---- pages ----------------------------------------------------------------------------
  /** The first page: the shell's request the first time, a new one for the reconciliation. */
  function firstPage() {
    const pending = early ?? readFirstPage(filters, signal);
    early = null;
    return pending;
  }

  function showFirstPage(page) {
    addPage(page);
    lanes.loaded();
    if (!("firstRunsPainted" in document.body.dataset)) {
      document.body.dataset.firstRunsPainted = String(Math.round(performance.now()));
    }
  }

  function firstPageFailed(error) {
    showError(error);
    lanes.loaded();
  }

  function addPage(page) {
    for (const run of page.items) {
      if (!cards.has(run.run_id)) place(run); // the stream's version is as new or newer
    }
    const last = page.items.at(-1);
    if (last) oldest = [Date.parse(last.created_at), last.run_id];
    nextCursor = page.next_cursor || null;
    replaceChildren(
      more,
      nextCursor
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
        : cards.size === 0
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
          query: { ...filters, limit: PAGE_SIZE, cursor: nextCursor },
          signal,
        }),
      );
    } catch (error) {
      if (isAbort(error)) return;
      showError(error);
      button.disabled = false;
      button.textContent = "Load more";
    }
  }

  /**
   * The first page read again after the stream's `ready` (see board_live.js): a card whose run
   * the stream has not spoken of since is redrawn if it changed; nothing else is touched.
   */
  function reconcile(page, streamed) {
    const fresh = new Set();
    let added = false;
    for (const run of page.items) {
      fresh.add(run.run_id);
      if (streamed.has(run.run_id)) continue;
      const known = cards.get(run.run_id);
      if (known ? differs(known.run, run) : !beyondLoaded(run)) {
        added ||= !known;
        place(run);
      }
    }
    if (added && !nextCursor) more.querySelector(".empty")?.remove();
    // A run still going that is not on the page again may have changed out of the filters
    // (or been pushed down by newer runs): it is read on its own.
    const missing = [...cards.values()]
      .map(({ run }) => run)
      .filter((r) => !fresh.has(r.run_id) && !streamed.has(r.run_id) && !TERMINAL.has(r.status))
      .slice(0, PAGE_SIZE);
    for (const run of missing) {
      api(`/api/v1/runs/${run.run_id}`, { signal }).then((now) => {
        const known = cards.get(now.run_id);
        if (!streamed.has(now.run_id) && known && differs(known.run, now)) placeOrDrop(now);
      }, () => {});
    }
    refresher.schedule(); // the counts were read across the same gap
  }

  // ---- counts, limits and places in line ------------------------------------------------
  async function loadLimits() {
    try {
      limits = await api("/api/v1/limits", { signal });
    } catch (error) {
      if (isAbort(error)) throw error;
      return; // the board works without: lanes A–D and reasons without numbers
    }
    lanes.setLimits(limits);
    form.setLanes(lanes.names());
    for (const { run, el } of cards.values()) updateQueueReason(el, run, limits);
  }

  /**
   * Queued cards' place in line moves when other runs are dispatched, which sends no event
   * of their own: after a change, the queued runs on the board are read again.
   */
  async function refreshQueued() {
    const queued = [...cards.values()].filter(({ run }) => run.status === "queued");
    if (!queued.length || (filters.status && filters.status !== "queued")) return;
    const query = { ...filters, status: "queued", limit: QUEUED_REFRESH };
    try {
      const page = await api("/api/v1/runs", { query, signal });
      for (const fresh of page.items) {
        const known = cards.get(fresh.run_id);
        // Only a card still queued: an event may have moved it on while this was read.
        if (known?.run.status !== "queued") continue;
        const { queue_reason: reason, queue_position: position } = known.run;
        if (fresh.queue_reason !== reason || fresh.queue_position !== position) place(fresh);
      }
    } catch (error) {
      if (isAbort(error)) throw error;
    }
  }

  // ---- errors and cancels ---------------------------------------------------------------
  function showError(error, prefix = "") {
    const shown = prefix
      ? Object.assign(new Error(prefix + error.message), { problem: error.problem })
      : error;
    alerts.append(problemBanner(shown, { onDismiss: (banner) => banner.remove() }));
  }

  /** After a cancel: without the stream nothing would show the change, so the run is read. */
  function readBack(id) {
    if (!live.isOpen()) api(`/api/v1/runs/${id}`, { signal }).then(apply, () => {});
  }

  // ---- start and stop -------------------------------------------------------------------
  function start() {
    const stream = followRuns({
      signal,
      readPage: firstPage,
      onPage: showFirstPage,
      onPageError: firstPageFailed,
      onRun: apply,
      onReconcile: reconcile,
      onState: live.set,
    });
    counts.load().catch(() => {});
    loadLimits().catch(() => {});
    const ticker = setInterval(() => {
      for (const t of root.querySelectorAll("time[data-ago]")) t.textContent = fmtAgo(t.dateTime);
    }, 30_000);
    signal.addEventListener(
      "abort",
      () => {
        stream.close();
        clearInterval(ticker);
      },
      { once: true },
    );
  }

  return { root, start };
}
