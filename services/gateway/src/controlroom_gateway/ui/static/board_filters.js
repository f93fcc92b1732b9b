// The board's filters: read from the URL, shown as a form, applied back into the URL.

import { STATUSES, h, replaceChildren } from "./dom.js";

export const FILTERS = ["status", "job_type", "lane", "session_id", "created_by", "since"];

/** The filters a URL's query names ("" for those it does not). */
export function readFilters(query) {
  return Object.fromEntries(FILTERS.map((k) => [k, query.get(k) || ""]));
}

/** The board's route with these filters. */
export function hrefWith(values) {
  const params = new URLSearchParams();
  for (const k of FILTERS) if (values[k]) params.set(k, values[k]);
  const qs = params.toString();
  return qs ? `#/runs?${qs}` : "#/runs";
}

/** Whether the server would list this run under these filters. */
export function matches(run, f) {
  return (
    (!f.status || run.status === f.status) &&
    (!f.job_type || run.job_type === f.job_type) &&
    (!f.lane || run.lane === f.lane) &&
    (!f.session_id || String(run.session_id).toLowerCase() === f.session_id.toLowerCase()) &&
    (!f.created_by || run.created_by === f.created_by) &&
    (!f.since || Date.parse(run.created_at) >= Date.parse(f.since))
  );
}

/**
 * The filter form, its controls named like the query parameters; submitting it changes the
 * URL, which re-renders the board. Returns {el, setLanes(names)}: the lane choices follow the
 * tenant's lanes once they are known.
 */
export function filterForm(filters, lanes) {
  const laneSelect = h("select", { id: "f-lane", name: "lane" });
  const field = (label, control) =>
    h("div", { class: "field" }, h("label", { for: control.id }, label), control);
  const text = (name, placeholder) =>
    h("input", {
      id: `f-${name}`,
      name,
      type: "text",
      value: filters[name],
      placeholder,
      autocomplete: "off",
    });
  const statusSelect = h(
    "select",
    { id: "f-status", name: "status", value: filters.status },
    h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s }, s)),
  );
  const since = h("input", {
    id: "f-since",
    name: "since",
    type: "datetime-local",
    value: toLocalInput(filters.since),
  });

  let shown = "";
  function setLanes(names) {
    const all = [...new Set([...names, ...(filters.lane ? [filters.lane] : [])])];
    // Left alone when nothing changed: the limits are read again after every burst of changes.
    if (all.join("\n") === shown) return;
    shown = all.join("\n");
    replaceChildren(
      laneSelect,
      h("option", { value: "" }, "any"),
      all.map((l) => h("option", { value: l }, l)),
    );
    laneSelect.value = filters.lane;
  }

  setLanes(lanes);
  const el = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter runs", onsubmit: apply },
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
  return { el, setLanes };
}

function apply(event) {
  event.preventDefault();
  const data = new FormData(event.target);
  const next = Object.fromEntries(FILTERS.map((k) => [k, String(data.get(k) ?? "").trim()]));
  const since = new Date(next.since);
  next.since = next.since && !Number.isNaN(since.getTime()) ? since.toISOString() : ""; // with a zone
  location.hash = hrefWith(next); // the router re-renders the board with them
}

/** ISO time → the value a datetime-local input shows (local time, to the minute). */
function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}
