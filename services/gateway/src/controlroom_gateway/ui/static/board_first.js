// The board's first page of runs: what its first paint waits for. The shell (app.js) asks for
// it while the board's modules are still loading; the board takes it from there.

import { api } from "./api.js";
import { readFilters } from "./board_filters.js";

export const PAGE_SIZE = 50;

/** GET /runs, the first page under these filters. */
export function readFirstPage(filters, signal) {
  return api("/api/v1/runs", { query: { ...filters, limit: PAGE_SIZE }, signal });
}

/** The first page for the board at `params` (the router's params). */
export function askFirstPage(params, signal) {
  return readFirstPage(readFilters(params.query), signal);
}
