// The board's columns: one per lane of the tenant, active runs above finished ones, newest
// first in each. Lanes A–D are drawn at once; the tenant's own lanes (GET /limits) replace
// them when they are known, so the first page of runs never waits for the limits.

import { TERMINAL, emptyState, h } from "./dom.js";
import { focusedControl, refocus } from "./board_cards.js";

export const FALLBACK_LANES = ["A", "B", "C", "D"];

/** {el, names, put, remove, setLimits, loaded}; `filters.lane` set: that lane only. */
export function createLanes(filters) {
  const el = h("div", { class: "lanes" });
  const lanes = new Map(); // name → {section, active, done, headActive, headDone, usage, empty}
  let limits = null;
  let emptyText = "Loading…"; // until the first page of runs is in

  /** The tenant's lanes, A–D until /limits says. */
  function names() {
    const keys = limits ? Object.keys(limits.lanes || {}) : [];
    return keys.length ? keys : FALLBACK_LANES;
  }

  function shown() {
    return filters.lane ? [filters.lane] : names();
  }

  function ensure(name) {
    let lane = lanes.get(name);
    if (lane) return lane;
    lane = {
      active: h("div", { class: "group", dataset: { group: "active" } }),
      done: h("div", { class: "group", dataset: { group: "done" } }),
      usage: h("p", { class: "lane-usage muted" }),
      empty: emptyState(emptyText),
      headActive: h("h3", {}, "Active"),
      headDone: h("h3", {}, "Finished"),
    };
    lane.section = h(
      "section",
      { class: "lane", dataset: { testid: `lane-${name}` }, "aria-label": `Lane ${name}` },
      h("h2", {}, `Lane ${name}`),
      lane.usage,
      lane.empty,
      lane.headActive,
      lane.active,
      lane.headDone,
      lane.done,
    );
    lanes.set(name, lane);
    el.append(lane.section);
    updateUsage(name, lane);
    updateCounts(lane);
    return lane;
  }

  function updateCounts(lane) {
    const a = lane.active.childElementCount;
    const d = lane.done.childElementCount;
    lane.headActive.textContent = `Active (${a})`;
    lane.headDone.textContent = `Finished (${d})`;
    lane.headActive.hidden = lane.active.hidden = a === 0;
    lane.headDone.hidden = lane.done.hidden = d === 0;
    lane.empty.hidden = a + d > 0;
  }

  function updateUsage(name, lane) {
    const usage = limits?.lanes?.[name];
    lane.usage.textContent = usage
      ? `${usage.running}${usage.max_concurrent_runs != null ? `/${usage.max_concurrent_runs}` : ""} running · ${usage.queued} queued`
      : "";
  }

  /**
   * Puts a run's card where it belongs (its lane, its group, newest first) in place of
   * `previous`, its card so far; a keyboard user on that card stays on the same control.
   */
  function put(run, card, previous) {
    const control = focusedControl(previous);
    const lane = ensure(run.lane ?? names()[0]);
    const group = TERMINAL.has(run.status) ? lane.done : lane.active;
    const before = firstOlder(group, run, previous);
    const from = previous?.closest(".lane");
    if (previous?.parentNode === group && previous.nextElementSibling === before) {
      previous.replaceWith(card); // same place: nothing moves
    } else {
      previous?.remove();
      group.insertBefore(card, before);
    }
    updateCounts(lane);
    if (from && from !== lane.section) {
      for (const other of lanes.values()) if (other.section === from) updateCounts(other);
    }
    refocus(card, control); // after the counts: a group shown only now can take the focus
  }

  /** Takes a run's card off the board (it no longer matches the filters). */
  function remove(card) {
    const section = card.closest(".lane");
    card.remove();
    for (const lane of lanes.values()) if (lane.section === section) updateCounts(lane);
  }

  /** The tenant's limits: each lane's usage, and its lanes in place of A–D. */
  function setLimits(body) {
    limits = body;
    if (!filters.lane) {
      const wanted = names();
      wanted.forEach(ensure);
      for (const [name, lane] of lanes) {
        const hasRuns = lane.active.childElementCount + lane.done.childElementCount > 0;
        if (!wanted.includes(name) && !hasRuns) {
          lane.section.remove();
          lanes.delete(name);
        }
      }
      const order = [...wanted, ...[...lanes.keys()].filter((n) => !wanted.includes(n))];
      const sections = order.map((n) => lanes.get(n).section);
      // Moved only when out of order: moving a section would take the focus out of it.
      if (sections.some((s, i) => el.children[i] !== s)) el.append(...sections);
    }
    for (const [name, lane] of lanes) updateUsage(name, lane);
  }

  /** The first page of runs is in: an empty lane has no runs (rather than "Loading…"). */
  function loaded() {
    emptyText = "No runs";
    for (const lane of lanes.values()) lane.empty.textContent = emptyText;
  }

  shown().forEach(ensure);
  return { el, names, put, remove, setLimits, loaded };
}

/** The first card of `group` older than `run` (ties by id), `skip` left out. */
function firstOlder(group, run, skip) {
  const t = Date.parse(run.created_at);
  for (const child of group.children) {
    if (child === skip) continue;
    const ct = Number(child.dataset.t);
    if (ct < t || (ct === t && child.dataset.testid < `run-${run.run_id}`)) return child;
  }
  return null;
}
