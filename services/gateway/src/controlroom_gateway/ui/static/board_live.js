// The board live: the tenant's run stream and the first page of runs, read at the same time.
//
// Snapshot, subscribe, reconcile. The stream is opened and the first page asked for together,
// so the page is drawn as soon as it arrives, without waiting for the stream. `run` events
// that arrive before the page are held and applied after it (the stream's views are newer).
// The page was asked for before the stream said where it starts (its `ready`), so a change
// committed between the page's read and that position reached neither: once both are in, the
// page is read again and the cards brought up to date. Every change after `ready` comes by
// the stream, so a run the stream spoke of since is left to the stream.

import { follow } from "./sse.js";
import { h } from "./dom.js";

const STREAM = "/api/v1/runs/stream";
const LABELS = {
  open: "Live",
  connecting: "Connecting…",
  reconnecting: "Reconnecting…",
  closed: "Offline",
};

/** The "live" indicator: data-state is "open" once the stream delivered `ready`. */
export function createIndicator() {
  const el = h(
    "span",
    { class: "live", dataset: { testid: "live", state: "connecting" } },
    LABELS.connecting,
  );
  const set = (state) => {
    el.dataset.state = state;
    el.textContent = LABELS[state] || state;
  };
  return { el, set, isOpen: () => el.dataset.state === "open" };
}

/**
 * Starts the stream and the first page together. Callbacks:
 *  - readPage() → Promise of the first page (called again for the reconciliation);
 *  - onPage(page) draws the first page; onPageError(error) when it could not be read;
 *  - onRun(run) applies one `run` event (never before onPage has returned);
 *  - onReconcile(page, streamed) brings the cards up to date with a page read after `ready`,
 *    leaving the runs in `streamed` (a Set of run ids the stream spoke of, still growing)
 *    to the stream;
 *  - onState(state) for the indicator.
 * Closes the stream when `signal` aborts.
 */
export function followRuns({ signal, readPage, onPage, onPageError, onRun, onReconcile, onState }) {
  let pageIn = false; // the first page was drawn (or failed): events apply at once
  let ready = false; // the stream said where it starts
  let reconciled = false;
  const held = []; // `run` events that came before the first page
  const streamed = new Set();

  function onEvent(event) {
    if (event.event === "ready") {
      onState("open");
      if (!ready) {
        ready = true;
        reconcile();
      }
    } else if (event.event === "run" && event.data?.run_id) {
      streamed.add(event.data.run_id);
      if (pageIn) onRun(event.data);
      else held.push(event.data);
    }
  }

  async function firstPage() {
    let shown = false;
    try {
      onPage(await readPage());
      shown = true;
    } catch (error) {
      if (signal.aborted) return;
      onPageError(error);
    }
    pageIn = true;
    held.splice(0).forEach(onRun);
    if (shown) reconcile();
    else reconciled = true; // nothing drawn to correct; the stream's changes still apply
  }

  /** Once, when both the page and `ready` are in. */
  async function reconcile() {
    if (reconciled || !ready || !pageIn) return;
    reconciled = true;
    try {
      const page = await readPage();
      if (!signal.aborted) onReconcile(page, streamed);
    } catch {
      // The page drawn stands; the stream's changes keep it moving.
    }
  }

  firstPage(); // asked for first: the page is what the first paint waits for
  return follow(STREAM, {
    reopen: true, // the tenant stream never ends by itself: an end is a dropped connection
    signal,
    onEvent,
    onState: (state) => {
      // "open" waits for the first `ready`; a reconnection after it is live again at once.
      if (state !== "open" || ready) onState(state);
    },
    onError: () => onState("closed"), // refused for good: the runs without live updates
  });
}

/**
 * Follow-up reads after changes (counts, limits, places in line), `delay` ms after the first
 * change of a burst: at most one round in flight, changes during it ask for one more after it.
 */
export function createRefresher(work, delay, signal) {
  let timer = null;
  let running = false;
  let again = false;

  function schedule() {
    if (timer || signal.aborted) return;
    timer = setTimeout(async () => {
      timer = null;
      if (running) {
        again = true;
        return;
      }
      running = true;
      await work().catch(() => {});
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }, delay);
  }

  signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  return { schedule };
}
