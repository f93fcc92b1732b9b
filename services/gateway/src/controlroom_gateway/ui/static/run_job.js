// The job a run was submitted with, on its page: settings, spec and code (read-only), and
// the lineage it declared, drawn by graph.js.

import { api, isAbort } from "./api.js";
import { emptyState, fact, fmtDuration, h, problemBanner, replaceChildren } from "./dom.js";

/** The job and lineage sections: {jobEl, lineageEl, load()}. */
export function createJob(runId, signal) {
  const jobEl = h(
    "section",
    { "aria-labelledby": "job-h" },
    h("h2", { id: "job-h" }, "Job"),
    h("p", { class: "muted" }, "Loading…"),
  );
  const lineageEl = h(
    "section",
    { "aria-labelledby": "lineage-h", dataset: { testid: "run-lineage" } },
    h("h2", { id: "lineage-h" }, "Lineage"),
  );

  async function load() {
    let body;
    try {
      body = await api(`/api/v1/runs/${runId}/job`, { signal });
    } catch (error) {
      if (isAbort(error)) return;
      const text =
        error.status === 404
          ? "Job not recorded (the run was submitted before jobs were kept)."
          : null;
      replaceChildren(
        jobEl,
        h("h2", { id: "job-h" }, "Job"),
        text ? emptyState(text) : problemBanner(error),
      );
      lineageEl.append(
        emptyState(text ? "No lineage: the job was not recorded." : "Lineage unavailable."),
      );
      return;
    }
    showJob(jobEl, body);
    await showLineage(lineageEl, body);
  }

  return { jobEl, lineageEl, load };
}

function showJob(section, body) {
  const files = body.code?.files || [];
  const entry = body.code?.entrypoint || files[0]?.path;
  replaceChildren(
    section,
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

async function showLineage(section, body) {
  const sources = (body.lineage?.sources || []).map(entityName);
  const targets = (body.lineage?.targets || []).map(entityName);
  if (!sources.length && !targets.length) {
    section.append(emptyState("The job declared no inputs or outputs."));
    return;
  }
  const jobNode = body.name || body.job_type || "job";
  const link = (e) => h("li", {}, h("a", { href: lineageHref(e), class: "mono wrap" }, e));
  const list = (title, entities) =>
    h(
      "div",
      {},
      h("h3", {}, title),
      entities.length ? h("ul", { class: "plain" }, entities.map(link)) : emptyState("nothing"),
    );
  const graphBox = h("div", { class: "run-graph" });
  section.append(
    graphBox,
    h("div", { class: "lineage-lists" }, list("Reads", sources), list("Writes", targets)),
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

function entityName(e) {
  return typeof e === "string" ? e : (e?.entity ?? e?.uri ?? e?.name ?? JSON.stringify(e));
}

function lineageHref(entity) {
  return `#/lineage?entity=${encodeURIComponent(entity)}`;
}
