// DOM building and formatting helpers shared by every page.
// API data is hostile (job names, logs): it only ever reaches the page as text nodes, never as
// HTML, which is why everything is built with h() instead of innerHTML.

export const TERMINAL = new Set(["completed", "failed", "cancelled"]);
export const STATUSES = ["queued", "dispatched", "running", "completed", "failed", "cancelled"];

// Properties set after the children are in place: a <select>'s value must name an existing
// <option>, and a checkbox's checked state is a property, not just the initial attribute.
const PROPS = new Set(["value", "checked", "selected", "indeterminate"]);

/** h("a", {href, class, dataset, onclick, "aria-label"}, child, [more], null) → element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  const props = [];
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "dataset") {
      for (const [k, v] of Object.entries(value)) if (v != null) el.dataset[k] = String(v);
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (PROPS.has(key)) {
      props.push([key, value]);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  for (const [key, value] of props) el[key] = value;
  return el;
}

/** Appends children (nodes, strings, numbers, nested arrays); null/false/undefined skipped. */
export function append(parent, children) {
  for (const child of children) {
    if (child == null || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : String(child));
  }
  return parent;
}

/** Replaces an element's children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const pad = (n) => String(n).padStart(2, "0");

/** Local date and time, "2026-01-05 12:03:04"; "—" for nothing. */
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(d)}`;
}

/** Local time of day, "12:03:04" (a Date or an ISO string). */
export function fmtClock(value) {
  if (!value) return "—";
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "5 s ago", "3 min ago", "in 20 s". */
export function fmtAgo(iso, now = Date.now()) {
  if (!iso) return "—";
  const seconds = (now - new Date(iso).getTime()) / 1000;
  if (Number.isNaN(seconds)) return String(iso);
  const text = fmtSpan(Math.abs(seconds));
  if (Math.abs(seconds) < 1) return "just now";
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

function fmtSpan(s) {
  if (s < 60) return `${Math.floor(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

/** "850 ms", "12.4 s", "3 m 05 s", "2 h 03 m", "1 d 02 h"; "—" for nothing. */
export function fmtDuration(seconds) {
  if (seconds == null || Number.isNaN(seconds)) return "—";
  if (seconds < 0) seconds = 0;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.floor(seconds)} s`;
  const s = Math.floor(seconds);
  if (s < 3600) return `${Math.floor(s / 60)} m ${pad(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${pad(Math.floor(s / 60) % 60)} m`;
  return `${Math.floor(s / 86400)} d ${pad(Math.floor(s / 3600) % 24)} h`;
}

/** Seconds between two ISO times (the second defaults to now); null if the first is missing. */
export function secondsBetween(fromIso, toIso) {
  if (!fromIso) return null;
  const end = toIso ? new Date(toIso).getTime() : Date.now();
  return (end - new Date(fromIso).getTime()) / 1000;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** "0 B", "1.5 KiB", "12 MiB". */
export function fmtBytes(n) {
  if (n == null || Number.isNaN(n)) return "—";
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** The first 8 characters of a UUID: enough to tell runs apart on a screen. */
export function shortId(id) {
  return String(id ?? "").slice(0, 8);
}

/** The coloured status badge every page uses. */
export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, dataset: { testid: "status" } }, status);
}

/** Why a queued run waits, in words (limits: the GET /limits body, or null). */
export function queueReasonText(run, limits) {
  const reason = run.queue_reason;
  if (!reason) return null;
  const inLine = run.queue_position ? `, #${run.queue_position} in line` : "";
  switch (reason) {
    case "tenant_cap_reached":
      return limits
        ? `tenant cap ${limits.running}/${limits.max_concurrent_runs}${inLine}`
        : `tenant cap reached${inLine}`;
    case "lane_cap_reached": {
      const lane = run.lane ?? firstKey(limits?.lanes) ?? "?";
      const usage = limits?.lanes?.[lane];
      return usage && usage.max_concurrent_runs != null
        ? `lane ${lane} cap ${usage.running}/${usage.max_concurrent_runs}${inLine}`
        : `lane ${lane} cap reached${inLine}`;
    }
    case "no_executor_capacity":
      return `no executor capacity${inLine}`;
    case "no_executor":
      return `no executor${inLine}`;
    case "retry_backoff":
      return run.next_attempt_at
        ? `retry backoff until ${fmtClock(run.next_attempt_at)}`
        : `retry backoff${inLine}`;
    default:
      return `${String(reason).replaceAll("_", " ")}${inLine}`;
  }
}

/** "exit_code (exit 3)", "timeout", "oom (exit 137)"; null unless the run says why it failed. */
export function failureReasonText(run) {
  if (!run.failure_reason) return null;
  return run.exit_code != null
    ? `${run.failure_reason} (exit ${run.exit_code})`
    : run.failure_reason;
}

function firstKey(obj) {
  return obj ? Object.keys(obj)[0] : undefined;
}

/** A role="alert" banner with the error's message (an ApiError's problem detail). */
export function problemBanner(error, { onDismiss } = {}) {
  const message = typeof error === "string" ? error : error?.message || "Something went wrong";
  const issues = error?.problem?.errors;
  const banner = h(
    "div",
    { class: "banner banner-error", role: "alert" },
    h("p", {}, message),
    Array.isArray(issues) && issues.length
      ? h(
          "ul",
          {},
          issues
            .slice(0, 20)
            .map((e) =>
              h("li", {}, [e.field, e.message].filter(Boolean).join(": ") || JSON.stringify(e)),
            ),
        )
      : null,
  );
  if (onDismiss) {
    banner.append(
      h("button", { type: "button", class: "link", onclick: () => onDismiss(banner) }, "Dismiss"),
    );
  }
  return banner;
}

/** A quiet "nothing here" paragraph. */
export function emptyState(text) {
  return h("p", { class: "empty" }, text);
}

/** A labelled read-only fact for definition lists: [<dt>, <dd>]. */
export function fact(label, value) {
  return [h("dt", {}, label), h("dd", {}, value ?? "—")];
}

/** A <table> with a header row; rows are arrays of cells (strings or nodes); with no rows,
 * one row saying `empty`. */
export function table(headers, rows, attrs = {}, empty = "None.") {
  const body = rows.length
    ? rows.map((cells) =>
        h(
          "tr",
          {},
          cells.map((cell) => h("td", {}, cell)),
        ),
      )
    : h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, empty));
  return h(
    "table",
    attrs,
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        headers.map((text) => h("th", { scope: "col" }, text)),
      ),
    ),
    h("tbody", {}, body),
  );
}
