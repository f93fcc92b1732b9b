// Cancelling from the board (operators): one run from its card, or the selected ones together.

import { api } from "./api.js";
import { h, shortId } from "./dom.js";

const CANCEL_PARALLEL = 8;

/**
 * The selection and the cancels asked for. `cardOf(id)` → the run's card element (or
 * undefined); `notice` a role="status" element; `showError(error, prefix)`; `readBack(id)`
 * reads a run once after its cancel when nothing else would show the change.
 * Returns {toolbar, isSelected, isCancelling, toggle, cancelOne, ended}.
 */
export function createCancelling({ cardOf, notice, showError, readBack }) {
  const selected = new Set();
  const cancelling = new Set(); // cancel accepted, run not ended yet: its card says so
  const bulkButton = h(
    "button",
    { type: "button", dataset: { testid: "bulk-cancel" }, disabled: true, onclick: bulkCancel },
    "Cancel selected",
  );
  const selectedNote = h("span", { class: "muted" });
  const toolbar = h("div", { class: "toolbar" }, bulkButton, selectedNote);

  function toggle(id, on) {
    if (on) selected.add(id);
    else selected.delete(id);
    updateSelection();
  }

  /** The run ended: nothing left to cancel or select. */
  function ended(id) {
    cancelling.delete(id);
    if (selected.delete(id)) updateSelection();
  }

  function updateSelection() {
    for (const id of selected) if (!cardOf(id)) selected.delete(id);
    const n = selected.size;
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
    cancelling.add(id);
    const button = cardOf(id)?.querySelector('[data-testid="cancel"]');
    if (button) {
      button.disabled = true;
      button.textContent = "Cancelling…";
    }
    readBack(id);
    return null;
  }

  async function bulkCancel() {
    const ids = [...selected];
    bulkButton.disabled = true;
    notice.textContent = `Cancelling ${ids.length} run${ids.length === 1 ? "" : "s"}…`;
    const failures = [];
    await pool(ids, CANCEL_PARALLEL, async (id) => {
      const error = await requestCancel(id);
      if (error) failures.push([id, error]);
      else selected.delete(id);
    });
    for (const id of ids) {
      const box = cardOf(id)?.querySelector('[data-testid="select"]');
      if (box) box.checked = selected.has(id);
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

  return {
    toolbar,
    isSelected: (id) => selected.has(id),
    isCancelling: (id) => cancelling.has(id),
    toggle,
    cancelOne,
    ended,
  };
}

/** Runs `work` over `items`, at most `width` at a time. */
async function pool(items, width, work) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}
