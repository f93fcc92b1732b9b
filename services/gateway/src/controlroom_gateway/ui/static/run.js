// One run (#/runs/<id>): its state and attempts (here), its timeline, live logs and progress
// (run_history.js), its artifacts (run_artifacts.js), the job as submitted and its lineage
// (run_job.js).
//
// The run view is read again whenever the history says its status (or its artifacts)
// changed, and every few seconds while it is queued.

import { api, can, isAbort } from "./api.js";
import {
  TERMINAL,
  fact,
  failureReasonText,
  fmtDuration,
  fmtTime,
  h,
  problemBanner,
  queueReasonText,
  replaceChildren,
  secondsBetween,
  shortId,
  statusBadge,
  table,
} from "./dom.js";
import { createArtifacts } from "./run_artifacts.js";
import { createHistory } from "./run_history.js";
import { createJob } from "./run_job.js";

const REFRESH_MS = 250;
const QUEUED_POLL_MS = 5000; // a queued run's place in line moves without events of its own

export async function render(main, params, ctx) {
  const page = createPage(params.path[0], ctx);
  main.append(page.root);
  await page.start();
}

function createPage(id, ctx) {
  const { signal } = ctx;
  const operator = can("operator");
  let run = null;
  let limits = null;
  let refreshTimer = null;
  let pollTimer = null;
  let cancelling = false; // accepted; the run has not ended yet

  const alerts = h("div", { class: "alerts" });
  // Re-reads repeat (a queued run is polled): their failure holds one banner, not one each.
  const refreshAlert = h("div");
  const summary = h("div", { class: "run-summary" });
  const attempts = h("section", { "aria-labelledby": "attempts-h" });
  const artifacts = createArtifacts(id, showError);
  const history = createHistory(id, { signal, onChange: refreshRun, onError: showError });
  const job = createJob(id, signal);

  const root = h(
    "section",
    { class: "page page-run", dataset: { testid: "page-run" } },
    h("p", { class: "crumbs" }, h("a", { href: "#/runs" }, "Runs")),
    h("h1", {}, "Run ", h("span", { class: "mono" }, id)),
    alerts,
    refreshAlert,
    summary,
    history.progressEl,
    attempts,
    h(
      "section",
      { "aria-labelledby": "timeline-h" },
      h("h2", { id: "timeline-h" }, "Timeline"),
      history.timelineEl,
    ),
    h(
      "section",
      { "aria-labelledby": "logs-h" },
      h("h2", { id: "logs-h" }, "Logs"),
      history.logsEl,
    ),
    artifacts.el,
    job.jobEl,
    job.lineageEl,
  );

  function showError(error) {
    if (isAbort(error)) return;
    alerts.append(problemBanner(error, { onDismiss: (b) => b.remove() }));
  }

  // ---- the run's state ------------------------------------------------------------------
  async function loadRun() {
    run = await api(`/api/v1/runs/${id}`, { signal });
    if (run.status === "queued" && run.queue_reason) {
      limits = await api("/api/v1/limits", { signal }).catch((e) => {
        if (isAbort(e)) throw e;
        return limits; // the reason is still worth showing without its numbers
      });
    }
    showRun();
    clearTimeout(pollTimer);
    if (run.status === "queued") pollTimer = setTimeout(refreshRun, QUEUED_POLL_MS);
  }

  function refreshRun() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      try {
        await loadRun();
        refreshAlert.replaceChildren();
      } catch (error) {
        if (!isAbort(error)) replaceChildren(refreshAlert, problemBanner(error));
        if (run?.status === "queued") pollTimer = setTimeout(refreshRun, QUEUED_POLL_MS);
      }
    }, REFRESH_MS);
  }

  function showRun() {
    replaceChildren(
      summary,
      runState(),
      run.error ? h("pre", { class: "run-error wrap", tabindex: "0" }, run.error) : null,
      runFacts(),
    );
    showAttempts();
    artifacts.show(run.artifacts || []);
  }

  function runState() {
    const terminal = TERMINAL.has(run.status);
    const reason = run.status === "queued" ? queueReasonText(run, limits) : null;
    const failure = run.status === "failed" ? failureReasonText(run) : null;
    return h(
      "div",
      { class: "run-state" },
      h(
        "span",
        { class: `badge status-${run.status}`, dataset: { testid: "run-status" } },
        run.status,
      ),
      reason
        ? h(
            "span",
            {},
            "Waiting: ",
            h("span", { class: "badge reason", dataset: { testid: "queue-reason" } }, reason),
          )
        : null,
      failure
        ? h("span", { class: "badge failure", dataset: { testid: "failure-reason" } }, failure)
        : null,
      operator && !terminal
        ? h(
            "button",
            {
              type: "button",
              class: "danger",
              dataset: { testid: "cancel" },
              "aria-label": `Cancel run ${shortId(id)}`,
              disabled: cancelling,
              onclick: cancel,
            },
            cancelling ? "Cancelling…" : "Cancel run",
          )
        : null,
    );
  }

  function runFacts() {
    const terminal = TERMINAL.has(run.status);
    return h(
      "dl",
      { class: "facts" },
      fact("Job type", run.job_type),
      fact("Lane", run.lane ?? "default"),
      fact("Priority", String(run.priority)),
      fact("Created by", run.created_by),
      fact("Created", fmtTime(run.created_at)),
      fact("Started", fmtTime(run.started_at)),
      fact("Finished", fmtTime(run.completed_at)),
      fact("Duration", h("span", { dataset: { ticking: terminal ? null : "" } }, duration(run))),
      fact("Attempt", `${run.attempt} of ${run.max_attempts}`),
      fact("Executor", run.executor_kind ?? "—"),
      run.image ? fact("Image", h("span", { class: "mono wrap" }, run.image)) : null,
      run.sandboxed === false ? fact("Sandbox", "none (a local process)") : null,
      fact("Timeout", run.timeout_seconds ? fmtDuration(run.timeout_seconds) : "default"),
      run.session_id
        ? fact(
            "Session",
            h(
              "a",
              { href: `#/sessions/${run.session_id}`, class: "mono" },
              shortId(run.session_id),
            ),
          )
        : null,
      run.schedule_id
        ? fact("Schedule", `${shortId(run.schedule_id)} · tick ${fmtTime(run.scheduled_for)}`)
        : null,
    );
  }

  async function cancel(event) {
    const button = event.currentTarget;
    button.disabled = true;
    button.textContent = "Cancelling…";
    try {
      await api(`/api/v1/runs/${id}/cancel`, { method: "POST" });
      cancelling = true;
    } catch (error) {
      if (error.status !== 409) {
        showError(error);
        button.disabled = false;
        button.textContent = "Cancel run";
        return;
      }
    }
    refreshRun();
  }

  function showAttempts() {
    const rows = run.attempts.map((a) => [
      String(a.attempt),
      statusBadge(a.status),
      [a.executor_kind, a.executor_id].filter(Boolean).join(" / ") || "—",
      fmtTime(a.dispatched_at),
      fmtTime(a.started_at),
      fmtTime(a.finished_at),
      a.exit_code ?? "—",
      a.failure_reason ?? "—",
      a.error ? h("span", { class: "wrap" }, a.error) : "—",
    ]);
    const headers = ["Attempt", "Status", "Executor", "Dispatched", "Started", "Finished"];
    headers.push("Exit code", "Failure reason", "Error");
    replaceChildren(
      attempts,
      h("h2", { id: "attempts-h" }, "Attempts"),
      h(
        "div",
        { class: "table-wrap", tabindex: "0" }, // focusable: it scrolls on a phone
        table(headers, rows, { class: "data", dataset: { testid: "attempts" } }, "No attempt yet."),
      ),
    );
  }

  // ---- start and stop -------------------------------------------------------------------
  async function start() {
    try {
      await loadRun();
    } catch (error) {
      if (isAbort(error)) return;
      replaceChildren(
        root,
        h("p", { class: "crumbs" }, h("a", { href: "#/runs" }, "Runs")),
        h("h1", {}, "Run ", h("span", { class: "mono" }, id)),
        problemBanner(error),
      );
      return;
    }
    const ticker = setInterval(() => {
      const el = summary.querySelector("[data-ticking]");
      if (el && run) el.textContent = duration(run);
    }, 1000);
    signal.addEventListener(
      "abort",
      () => {
        clearInterval(ticker);
        clearTimeout(refreshTimer);
        clearTimeout(pollTimer);
        history.close();
      },
      { once: true },
    );
    job.load().catch(showError);
    const ended = TERMINAL.has(run.status); // read before the history: its end is in it then
    try {
      await history.load();
    } catch (error) {
      showError(error);
    }
    if (!ended && !signal.aborted) history.followLive();
  }

  return { root, start };
}

function duration(r) {
  return r.started_at ? fmtDuration(secondsBetween(r.started_at, r.completed_at)) : "—";
}
