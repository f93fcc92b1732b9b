// The board's runs per status: each count a link that filters the board by that status.

import { api, isAbort } from "./api.js";
import { STATUSES, h } from "./dom.js";
import { hrefWith } from "./board_filters.js";

/** {el, load()}: load() reads the counts under the board's filters (all statuses). */
export function createCounts(filters, signal) {
  const countEls = Object.fromEntries(
    STATUSES.map((s) => [s, h("strong", { dataset: { testid: `count-${s}` } }, "–")]),
  );
  const totalEl = h("strong", { dataset: { testid: "count-total" } }, "–");
  const link = (s) =>
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
    );
  // A group, not a <nav>: the header's is the page's one navigation landmark.
  const el = h(
    "div",
    { class: "counts", role: "group", "aria-label": "Runs by status" },
    h("ul", {}, [
      ...STATUSES.map((s) => h("li", {}, link(s))),
      h("li", {}, h("span", { class: "count count-total" }, h("span", {}, "total"), " ", totalEl)),
    ]),
  );

  /** Rejects only when the page was left; a failed read leaves the counts as they were. */
  async function load() {
    const { status, ...rest } = filters; // counts are per status: the status filter is the view's
    try {
      const body = await api("/api/v1/runs/counts", { query: rest, signal });
      for (const s of STATUSES) countEls[s].textContent = String(body.counts?.[s] ?? 0);
      totalEl.textContent = String(body.total ?? "–");
    } catch (error) {
      if (isAbort(error)) throw error;
    }
  }

  return { el, load };
}
