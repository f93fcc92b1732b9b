// A run's history on its page: the timeline, the live logs and the progress bar.
//
// History is read a page at a time, then the live stream is followed from the last event id
// read, so every event is shown exactly once.

import { api } from "./api.js";
import { follow } from "./sse.js";
import { emptyState, fmtBytes, fmtTime, h } from "./dom.js";

const EVENTS_PAGE = 500;
const LOG_CAP = 5000; // lines kept in the DOM; a long log would make the page crawl
// Events after which the run view (status, attempts, artifacts) is read again.
const CHANGES_RUN = new Set([
  "queued",
  "dispatched",
  "started",
  "completed",
  "failed",
  "cancelled",
  "retry_scheduled",
  "artifact",
  "artifact_deleted",
]);

/**
 * The run's history. `onChange()` when an event changed the run itself (or its stream ended),
 * `onError(error)` when the stream was refused. Returns {progressEl, timelineEl, logsEl,
 * load(), followLive(), close()}.
 */
export function createHistory(id, { signal, onChange, onError }) {
  let lastEventId = null;
  let stream = null;
  const logs = createLogs();
  const timeline = createTimeline();
  const progress = createProgress();

  function handle(item) {
    if (lastEventId != null && Number(item.id) <= Number(lastEventId)) return; // seen already
    lastEventId = item.id;
    const data = item.data || {};
    if (item.event_type === "log") {
      logs.add(data.lines || [], data.stream);
      return;
    }
    if (item.event_type === "progress") progress.set(data);
    timeline.add(item);
  }

  /** Every page of the history so far. */
  async function load() {
    let cursor = null;
    do {
      const page = await api(`/api/v1/runs/${id}/events`, {
        query: { cursor, limit: EVENTS_PAGE },
        signal,
      });
      page.items.forEach(handle);
      cursor = page.next_cursor;
    } while (cursor);
    timeline.loaded();
  }

  /** The live events after the history read; the stream ends when the run does. */
  function followLive() {
    stream = follow(`/api/v1/runs/${id}/events/stream`, {
      lastEventId,
      signal,
      onEvent: ({ data }) => {
        if (!data || typeof data !== "object") return;
        handle(data);
        if (CHANGES_RUN.has(data.event_type)) onChange();
      },
      onState: (state) => {
        if (state === "closed" && !signal.aborted) onChange(); // the run ended
      },
      onError,
    });
  }

  return {
    progressEl: progress.el,
    timelineEl: timeline.el,
    logsEl: logs.el,
    load,
    followLive,
    close: () => stream?.close(),
  };
}

/** The progress bar and its words; hidden until the run reports progress. */
function createProgress() {
  const bar = h("progress", {
    dataset: { testid: "progress" },
    max: "100",
    "aria-label": "Progress",
    hidden: true,
  });
  const text = h("span", { class: "muted" });

  function set(data) {
    bar.hidden = false;
    if (typeof data.percent === "number") bar.value = data.percent;
    else bar.removeAttribute("value"); // no number: an indeterminate bar
    text.textContent = [
      typeof data.percent === "number" ? `${Math.round(data.percent)}%` : null,
      data.message,
    ]
      .filter(Boolean)
      .join(" · ");
  }

  return { el: h("div", { class: "progress-row" }, bar, text), set };
}

/** The log <pre>, keeping the last LOG_CAP lines and saying how many it dropped. */
function createLogs() {
  const pre = h("pre", { class: "logs", dataset: { testid: "logs" }, tabindex: "0" });
  const note = h("p", { class: "note", dataset: { testid: "logs-note" }, hidden: true });
  const empty = emptyState("No log lines yet.");
  let lines = 0;
  let dropped = 0;

  function add(newLines, stream) {
    if (!newLines.length) return;
    // Follow the tail only if the reader is at the bottom already.
    const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
    const batch = document.createDocumentFragment();
    for (const line of newLines) {
      const text = `${line}\n`;
      batch.append(
        stream === "stderr" ? h("span", { class: "stderr" }, text) : document.createTextNode(text),
      );
    }
    pre.append(batch);
    lines += newLines.length;
    while (lines > LOG_CAP) {
      pre.firstChild.remove();
      lines -= 1;
      dropped += 1;
    }
    empty.hidden = true;
    if (dropped) {
      note.hidden = false;
      note.textContent = `Showing the last ${LOG_CAP.toLocaleString("en")} lines; ${dropped.toLocaleString("en")} earlier lines are not shown.`;
    }
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  return { el: h("div", { class: "logs-box" }, note, empty, pre), add };
}

/** The history without log lines; a run of progress events shows as its latest one. */
function createTimeline() {
  const list = h("ol", { class: "timeline", dataset: { testid: "timeline" } });
  const empty = emptyState("Loading…");

  function add(item) {
    const entry = h(
      "li",
      { class: `tl tl-${item.event_type}`, dataset: { type: item.event_type } },
      h("time", { datetime: item.occurred_at }, fmtTime(item.occurred_at)),
      " ",
      h("strong", {}, item.event_type.replaceAll("_", " ")),
      " ",
      h("span", { class: "wrap" }, describe(item.event_type, item.data || {})),
    );
    const last = list.lastElementChild;
    if (item.event_type === "progress" && last?.dataset.type === "progress")
      last.replaceWith(entry);
    else list.append(entry);
    empty.hidden = true;
  }

  function loaded() {
    if (!list.childElementCount) empty.textContent = "No events yet.";
  }

  return { el: h("div", {}, empty, list), add, loaded };
}

/** One line saying what an event of the run's history means. */
function describe(type, d) {
  switch (type) {
    case "queued":
      return [
        d.lane && `lane ${d.lane}`,
        d.priority && `priority ${d.priority}`,
        d.executor_kind && `for ${d.executor_kind}`,
      ]
        .filter(Boolean)
        .join(", ");
    case "dispatched":
      return `attempt ${d.attempt} to ${d.executor_kind}`;
    case "started":
      return `attempt ${d.attempt} on ${d.executor_id} (${d.executor_kind})${d.image ? `, image ${d.image}` : ""}${d.sandboxed === false ? ", not sandboxed" : ""}`;
    case "completed":
      return `exit ${d.exit_code ?? 0}${d.summary ? `: ${d.summary}` : ""}`;
    case "failed":
      return `${d.failure_reason}${d.exit_code != null ? ` (exit ${d.exit_code})` : ""}${d.error ? `: ${d.error}` : ""}`;
    case "cancelled":
      return d.reason || "";
    case "retry_scheduled":
      return `attempt ${d.failed_attempt} failed (${d.reason}${d.exit_code != null ? `, exit ${d.exit_code}` : ""}); attempt ${d.next_attempt} at ${fmtTime(d.retry_at)}`;
    case "progress":
      return [typeof d.percent === "number" ? `${Math.round(d.percent)}%` : null, d.message]
        .filter(Boolean)
        .join(" · ");
    case "artifact":
      return `${d.path}${d.size_bytes != null ? ` (${fmtBytes(d.size_bytes)})` : ""}`;
    case "artifact_deleted":
      return `${d.path} by ${d.deleted_by}`;
    case "continue_callback":
      return `${d.status}${d.summary ? `: ${d.summary}` : ""}`;
    default: {
      const text = JSON.stringify(d);
      return text.length > 300 ? `${text.slice(0, 300)}…` : text;
    }
  }
}
