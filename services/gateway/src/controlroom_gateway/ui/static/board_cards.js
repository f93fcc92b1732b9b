// One run's card on the board: its link, status, why it waits or failed, and its controls.

import {
  TERMINAL,
  failureReasonText,
  fmtAgo,
  fmtDuration,
  fmtTime,
  h,
  queueReasonText,
  secondsBetween,
  shortId,
  statusBadge,
} from "./dom.js";

/**
 * A run's card. `opts`: {operator, limits, selected, cancelling (booleans for this run),
 * onSelect(id, checked), onCancel(id, button)}.
 */
export function runCard(run, opts) {
  const id = run.run_id;
  const terminal = TERMINAL.has(run.status);
  const reason = run.status === "queued" ? queueReasonText(run, opts.limits) : null;
  const failure = run.status === "failed" ? failureReasonText(run) : null;
  return h(
    "article",
    {
      class: "run-card",
      dataset: { testid: `run-${id}`, status: run.status, t: Date.parse(run.created_at) },
    },
    h(
      "div",
      { class: "card-head" },
      opts.operator
        ? h("input", {
            type: "checkbox",
            dataset: { testid: "select" },
            "aria-label": `Select run ${shortId(id)}`,
            checked: opts.selected,
            disabled: terminal,
            onchange: (e) => opts.onSelect(id, e.target.checked),
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
    meta(run),
    reason || failure ? badges(run, reason, failure) : null,
    opts.operator && !terminal
      ? h(
          "button",
          {
            type: "button",
            class: "small secondary",
            dataset: { testid: "cancel" },
            "aria-label": `Cancel run ${shortId(id)}`,
            disabled: opts.cancelling,
            onclick: (e) => opts.onCancel(id, e.currentTarget),
          },
          opts.cancelling ? "Cancelling…" : "Cancel",
        )
      : null,
  );
}

function meta(run) {
  const started = run.started_at;
  return h(
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
  );
}

function badges(run, reason, failure) {
  return h(
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
  );
}

/** The queued card's reason says the caps' numbers once the limits are known. */
export function updateQueueReason(el, run, limits) {
  const badge = el.querySelector('[data-testid="queue-reason"]');
  if (badge) badge.textContent = queueReasonText(run, limits);
}

/** Which of the card's controls has the focus (null: none), to find it again on its successor. */
export function focusedControl(el) {
  if (!el?.contains(document.activeElement)) return null;
  const testid = document.activeElement.dataset.testid;
  return testid ? `[data-testid="${testid}"]` : ".run-link";
}

/** Gives the focus back to the same control on the new card, or its link if that is gone. */
export function refocus(el, control) {
  if (!control) return;
  const target = el.querySelector(control) ?? el.querySelector(".run-link");
  target?.focus({ preventScroll: true });
}

/** Whether two views of a run would draw different cards (the same server writes both). */
export function differs(a, b) {
  return JSON.stringify(a) !== JSON.stringify(b);
}
