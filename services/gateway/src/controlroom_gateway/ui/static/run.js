// One run (#/runs/<id>): its state, attempts, timeline, live logs and progress, artifacts,
// the job as submitted and its lineage.
//
// History is read a page at a time, then the live stream is followed from the last event id
// read, so every event is shown exactly once. The run view is read again whenever the stream
// says its status (or its artifacts) changed.

import { api, can, download, fetchText, isAbort } from "./api.js";
import { follow } from "./sse.js";
import {
  TERMINAL,
  emptyState,
  fact,
  failureReasonText,
  fmtBytes,
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

const EVENTS_PAGE = 500;
const LOG_CAP = 5000; // lines kept in the DOM; a long log would make the page crawl
const PREVIEW_BYTES = 256 * 1024;
const REFRESH_MS = 250;
const QUEUED_POLL_MS = 5000; // a queued run's place in line moves without events of its own
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
const TEXT_EXTENSIONS =
  /\.(txt|log|md|csv|tsv|json|jsonl|ya?ml|toml|ini|cfg|xml|html?|sql|py|sh|js|ts|r|scala|java|go|rs|dot|mmd|svg)$/i;

export async function render(main, params, ctx) {
  const id = params.path[0];
  const page = createPage(id, ctx);
  main.append(page.root);
  await page.start();
}

function createPage(id, ctx) {
  const operator = can("operator");
  let run = null;
  let limits = null;
  let lastEventId = null;
  let refreshTimer = null;
  let pollTimer = null;
  let stream = null;
  let cancelling = false; // accepted; the run has not ended yet

  const alerts = h("div", { class: "alerts" });
  // Re-reads repeat (a queued run is polled): their failure holds one banner, not one each.
  const refreshAlert = h("div");
  const summary = h("div", { class: "run-summary" });
  const attempts = h("section", { "aria-labelledby": "attempts-h" });
  const artifacts = h("section", { "aria-labelledby": "artifacts-h" });
  const logs = createLogs();
  const timeline = createTimeline();
  const progress = h("progress", {
    dataset: { testid: "progress" },
    max: "100",
    "aria-label": "Progress",
    hidden: true,
  });
  const progressText = h("span", { class: "muted" });
  const job = h(
    "section",
    { "aria-labelledby": "job-h" },
    h("h2", { id: "job-h" }, "Job"),
    h("p", { class: "muted" }, "Loading…"),
  );
  const lineage = h(
    "section",
    { "aria-labelledby": "lineage-h", dataset: { testid: "run-lineage" } },
    h("h2", { id: "lineage-h" }, "Lineage"),
  );

  const root = h(
    "section",
    { class: "page page-run", dataset: { testid: "page-run" } },
    h("p", { class: "crumbs" }, h("a", { href: "#/runs" }, "Runs")),
    h("h1", {}, "Run ", h("span", { class: "mono" }, id)),
    alerts,
    refreshAlert,
    summary,
    h("div", { class: "progress-row" }, progress, progressText),
    attempts,
    h(
      "section",
      { "aria-labelledby": "timeline-h" },
      h("h2", { id: "timeline-h" }, "Timeline"),
      timeline.el,
    ),
    h("section", { "aria-labelledby": "logs-h" }, h("h2", { id: "logs-h" }, "Logs"), logs.el),
    artifacts,
    job,
    lineage,
  );

  function showError(error) {
    if (isAbort(error)) return;
    alerts.append(problemBanner(error, { onDismiss: (b) => b.remove() }));
  }

  // ---- the run's state ------------------------------------------------------------------
  async function loadRun() {
    run = await api(`/api/v1/runs/${id}`, { signal: ctx.signal });
    if (run.status === "queued" && run.queue_reason) {
      limits = await api("/api/v1/limits", { signal: ctx.signal }).catch((e) => {
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
    const terminal = TERMINAL.has(run.status);
    const reason = run.status === "queued" ? queueReasonText(run, limits) : null;
    const failure = run.status === "failed" ? failureReasonText(run) : null;
    replaceChildren(
      summary,
      h(
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
      ),
      run.error ? h("pre", { class: "run-error wrap", tabindex: "0" }, run.error) : null,
      h(
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
      ),
    );
    showAttempts();
    showArtifacts();
  }

  function duration(r) {
    return r.started_at ? fmtDuration(secondsBetween(r.started_at, r.completed_at)) : "—";
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
    replaceChildren(
      attempts,
      h("h2", { id: "attempts-h" }, "Attempts"),
      h(
        "div",
        { class: "table-wrap", tabindex: "0" }, // focusable: it scrolls on a phone
        table(
          [
            "Attempt",
            "Status",
            "Executor",
            "Dispatched",
            "Started",
            "Finished",
            "Exit code",
            "Failure reason",
            "Error",
          ],
          rows,
          { class: "data", dataset: { testid: "attempts" } },
          "No attempt yet.",
        ),
      ),
    );
  }

  // ---- artifacts ------------------------------------------------------------------------
  const preview = h("div", { class: "preview" });

  function showArtifacts() {
    const list = run.artifacts || [];
    const rows = list.map((a) => [
      h("span", { class: "mono wrap" }, a.path),
      fmtBytes(a.size_bytes),
      h("span", { class: "mono", title: a.checksum }, shortChecksum(a.checksum)),
      a.content_type,
      fmtTime(a.created_at),
      h(
        "span",
        { class: "row-actions" },
        h(
          "button",
          {
            type: "button",
            class: "small secondary",
            dataset: { testid: "artifact-download" },
            "aria-label": `Download ${a.path}`,
            onclick: () => download(`/api/v1/artifacts/${a.id}`, basename(a.path)).catch(showError),
          },
          "Download",
        ),
        previewable(a)
          ? h(
              "button",
              {
                type: "button",
                class: "small secondary",
                dataset: { testid: "artifact-preview" },
                "aria-label": `Preview ${a.path}`,
                onclick: () => showPreview(a),
              },
              "Preview",
            )
          : null,
      ),
    ]);
    replaceChildren(
      artifacts,
      h(
        "div",
        { class: "section-head" },
        h("h2", { id: "artifacts-h" }, "Artifacts"),
        h(
          "button",
          {
            type: "button",
            class: "secondary",
            dataset: { testid: "download-zip" },
            disabled: list.length === 0,
            onclick: () =>
              download(`/api/v1/runs/${id}/artifacts.zip`, `run-${id}.zip`).catch(showError),
          },
          "Download all (ZIP)",
        ),
      ),
      h(
        "div",
        { class: "table-wrap", tabindex: "0" }, // focusable: it scrolls on a phone
        table(
          ["Path", "Size", "Checksum", "Type", "Created", "Actions"],
          rows,
          { class: "data", dataset: { testid: "artifacts" } },
          "No artifacts.",
        ),
      ),
      preview,
    );
  }

  async function showPreview(artifact) {
    const pre = h("pre", { dataset: { testid: "preview" }, tabindex: "0" }, "Loading…");
    replaceChildren(
      preview,
      h(
        "div",
        { class: "section-head" },
        h("h3", {}, "Preview: ", h("span", { class: "mono" }, artifact.path)),
        h(
          "button",
          { type: "button", class: "small secondary", onclick: () => preview.replaceChildren() },
          "Close preview",
        ),
      ),
      pre,
    );
    try {
      pre.textContent = await fetchText(`/api/v1/artifacts/${artifact.id}`, PREVIEW_BYTES);
    } catch (error) {
      pre.textContent = "";
      replaceChildren(preview, problemBanner(error));
    }
  }

  // ---- history and live events ----------------------------------------------------------
  function handle(item) {
    if (lastEventId != null && Number(item.id) <= Number(lastEventId)) return; // seen already
    lastEventId = item.id;
    const data = item.data || {};
    if (item.event_type === "log") {
      logs.add(data.lines || [], data.stream);
      return;
    }
    if (item.event_type === "progress") setProgress(data);
    timeline.add(item);
  }

  function setProgress(data) {
    progress.hidden = false;
    if (typeof data.percent === "number") progress.value = data.percent;
    else progress.removeAttribute("value"); // no number: an indeterminate bar
    progressText.textContent = [
      typeof data.percent === "number" ? `${Math.round(data.percent)}%` : null,
      data.message,
    ]
      .filter(Boolean)
      .join(" · ");
  }

  async function loadHistory() {
    let cursor = null;
    do {
      const page = await api(`/api/v1/runs/${id}/events`, {
        query: { cursor, limit: EVENTS_PAGE },
        signal: ctx.signal,
      });
      page.items.forEach(handle);
      cursor = page.next_cursor;
    } while (cursor);
    timeline.loaded();
  }

  function followLive() {
    stream = follow(`/api/v1/runs/${id}/events/stream`, {
      lastEventId,
      signal: ctx.signal,
      onEvent: ({ data }) => {
        if (!data || typeof data !== "object") return;
        handle(data);
        if (CHANGES_RUN.has(data.event_type)) refreshRun();
      },
      onState: (state) => {
        if (state === "closed" && !ctx.signal.aborted) refreshRun(); // the run ended
      },
      onError: showError,
    });
  }

  // ---- the job and its lineage ----------------------------------------------------------
  async function loadJob() {
    let body;
    try {
      body = await api(`/api/v1/runs/${id}/job`, { signal: ctx.signal });
    } catch (error) {
      if (isAbort(error)) return;
      const text =
        error.status === 404
          ? "Job not recorded (the run was submitted before jobs were kept)."
          : null;
      replaceChildren(
        job,
        h("h2", { id: "job-h" }, "Job"),
        text ? emptyState(text) : problemBanner(error),
      );
      lineage.append(
        emptyState(text ? "No lineage: the job was not recorded." : "Lineage unavailable."),
      );
      return;
    }
    showJob(body);
    await showLineage(body);
  }

  function showJob(body) {
    const files = body.code?.files || [];
    const entry = body.code?.entrypoint || files[0]?.path;
    replaceChildren(
      job,
      h("h2", { id: "job-h" }, "Job"),
      h(
        "dl",
        { class: "facts" },
        fact("Name", body.name ?? body.job_type),
        body.repo
          ? fact(
              "Repository",
              h("span", { class: "mono wrap" }, `${body.repo.url} @ ${body.repo.ref}`),
            )
          : null,
        body.retry
          ? fact(
              "Retry",
              `${body.retry.max_attempts} attempts, backoff ${body.retry.backoff_seconds} s`,
            )
          : null,
        body.timeout_seconds ? fact("Timeout", fmtDuration(body.timeout_seconds)) : null,
      ),
      h("h3", {}, "Spec"),
      h(
        "pre",
        { dataset: { testid: "job-spec" }, class: "code", tabindex: "0" },
        JSON.stringify(body.spec ?? {}, null, 2),
      ),
      h("h3", {}, `Code (${files.length} file${files.length === 1 ? "" : "s"})`),
      h(
        "div",
        { dataset: { testid: "job-code" }, class: "code-files" },
        files.map((f) =>
          h(
            "div",
            { class: "code-file" },
            h(
              "h4",
              { class: "mono" },
              f.path,
              f.path === entry ? h("span", { class: "muted" }, " (entrypoint)") : null,
            ),
            h("pre", { class: "code", tabindex: "0" }, f.content),
          ),
        ),
      ),
    );
  }

  async function showLineage(body) {
    const sources = (body.lineage?.sources || []).map(entityName);
    const targets = (body.lineage?.targets || []).map(entityName);
    if (!sources.length && !targets.length) {
      lineage.append(emptyState("The job declared no inputs or outputs."));
      return;
    }
    const jobNode = body.name || body.job_type || "job";
    const link = (e) => h("li", {}, h("a", { href: lineageHref(e), class: "mono wrap" }, e));
    const graphBox = h("div", { class: "run-graph" });
    lineage.append(
      graphBox,
      h(
        "div",
        { class: "lineage-lists" },
        h(
          "div",
          {},
          h("h3", {}, "Reads"),
          sources.length ? h("ul", { class: "plain" }, sources.map(link)) : emptyState("nothing"),
        ),
        h(
          "div",
          {},
          h("h3", {}, "Writes"),
          targets.length ? h("ul", { class: "plain" }, targets.map(link)) : emptyState("nothing"),
        ),
      ),
    );
    try {
      const { drawGraph } = await import("./graph.js");
      drawGraph(
        graphBox,
        {
          center: jobNode,
          nodes: [
            { entity: jobNode, depth: 0 },
            ...[...sources, ...targets].map((entity) => ({ entity, depth: 1 })),
          ],
          edges: [
            ...sources.map((s) => ({ source: s, target: jobNode, job: jobNode })),
            ...targets.map((t) => ({ source: jobNode, target: t, job: jobNode })),
          ],
          upstream: sources.map((entity) => ({ entity, job: jobNode, depth: 1 })),
          downstream: targets.map((entity) => ({ entity, job: jobNode, depth: 1 })),
        },
        {
          onSelect: (entity) => {
            if (entity !== jobNode) location.hash = lineageHref(entity);
          },
        },
      );
    } catch (error) {
      if (!isAbort(error))
        graphBox.append(emptyState("The graph could not be drawn; the entities are listed below."));
    }
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
    ctx.signal.addEventListener(
      "abort",
      () => {
        clearInterval(ticker);
        clearTimeout(refreshTimer);
        clearTimeout(pollTimer);
        stream?.close();
      },
      { once: true },
    );
    loadJob().catch(showError);
    const ended = TERMINAL.has(run.status); // read before the history: its end is in it then
    try {
      await loadHistory();
    } catch (error) {
      showError(error);
    }
    if (!ended && !ctx.signal.aborted) followLive();
  }

  return { root, start };
}

// ---- logs -------------------------------------------------------------------------------
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

// ---- timeline ---------------------------------------------------------------------------
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

// ---- small helpers ----------------------------------------------------------------------
function shortChecksum(checksum) {
  if (!checksum) return "—";
  const [algo, hex] = checksum.includes(":") ? checksum.split(":", 2) : ["", checksum];
  return `${algo ? `${algo}:` : ""}${hex.slice(0, 12)}…`;
}

function basename(path) {
  return String(path).split("/").pop() || "artifact";
}

/** Text worth showing in a <pre>: a text-like type or name, or a small file of unknown type. */
function previewable(a) {
  const type = (a.content_type || "").toLowerCase();
  if (type.startsWith("text/") || /json|xml|yaml|csv|javascript|x-sh|x-python|sql|toml/.test(type))
    return true;
  if (TEXT_EXTENSIONS.test(a.path)) return true;
  return (type === "" || type === "application/octet-stream") && a.size_bytes <= PREVIEW_BYTES;
}

function entityName(e) {
  return typeof e === "string" ? e : (e?.entity ?? e?.uri ?? e?.name ?? JSON.stringify(e));
}

function lineageHref(entity) {
  return `#/lineage?entity=${encodeURIComponent(entity)}`;
}
