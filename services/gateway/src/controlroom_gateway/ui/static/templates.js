// Templates (#/templates: run one with your inputs) and schedules (#/schedules: pause, resume).
import { api, can } from "./api.js";
import { h, fmtTime, fmtAgo, problemBanner, emptyState } from "./dom.js";

const PAGE = 50;
const isAbort = (err) => err && err.name === "AbortError";

export async function render(main, params, ctx) {
  const page = params.page || (location.hash.startsWith("#/schedules") ? "schedules" : "templates");
  return page === "schedules" ? renderSchedules(main, params, ctx) : renderTemplates(main, params, ctx);
}

function th(...names) {
  return h("thead", {}, h("tr", {}, ...names.map((c) => h("th", { scope: "col" }, c))));
}

function time(iso) {
  return iso ? h("time", { datetime: iso, title: fmtTime(iso) }, fmtTime(iso)) : "—";
}

// A page of a cursor-paginated list into `tbody`, with a "Load more" button while there is more.
function pagedTable({ root, path, headers, labelledBy, row, empty, ctx }) {
  const tbody = h("tbody");
  const table = h("table", { class: "data", "aria-labelledby": labelledBy }, th(...headers), tbody);
  const errors = h("div");
  const more = h("button", { type: "button", class: "load-more", onclick: () => load() }, "Load more");
  more.hidden = true;
  let cursor = null;
  let count = 0;
  root.append(errors, h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-labelledby": labelledBy }, table), more);

  async function load() {
    more.disabled = true;
    errors.replaceChildren();
    try {
      const page = await api(path, { query: { limit: PAGE, cursor }, signal: ctx.signal });
      for (const item of page.items) tbody.append(row(item, count++));
      cursor = page.next_cursor;
      more.hidden = !cursor;
      if (!tbody.children.length) table.replaceWith(emptyState(empty));
    } catch (err) {
      if (!isAbort(err)) errors.append(problemBanner(err));
    } finally {
      more.disabled = false;
    }
  }
  return load();
}

// -- templates ----------------------------------------------------------------------------

export async function renderTemplates(main, params, ctx) {
  const root = h("section", { class: "page", dataset: { testid: "page-templates" } },
    h("h1", { id: "templates-h1" }, "Templates"),
    h("p", { class: "muted" }, "Saved jobs. Running one submits its job with the inputs given here merged over its own."),
  );
  main.append(root);
  const operator = can("operator");
  const headers = ["Name", "Job type", "Description", "Inputs", "Updated"];
  if (operator) headers.push("Run");
  await pagedTable({
    root, path: "/api/v1/templates", headers, labelledBy: "templates-h1", ctx,
    empty: "No templates yet.",
    row: (t, index) => templateRow(t, index, operator, ctx),
  });
}

function inputsList(inputs) {
  const keys = Object.keys(inputs || {});
  if (!keys.length) return "—";
  return h("dl", { class: "kv" }, ...keys.flatMap((k) => [h("dt", {}, k), h("dd", { class: "mono wrap" }, inputs[k])]));
}

function templateRow(t, index, operator, ctx) {
  const job = t.job || {};
  const cells = [
    h("th", { scope: "row" }, t.name, h("span", { class: "muted" }, ` v${t.version}`)),
    h("td", {}, job.job_type || "—"),
    h("td", { class: "wrap" }, t.description || "—"),
    h("td", {}, inputsList(job.spec?.inputs)),
    h("td", {}, t.created_by, h("br"), time(t.created_at)),
  ];
  if (operator) cells.push(h("td", {}, runForm(t, index, ctx)));
  return h("tr", { dataset: { testid: "template", name: t.name } }, ...cells);
}

// The template's declared inputs as editable fields (prefilled), and the Run button.
function runForm(t, index, ctx) {
  const inputs = t.job?.spec?.inputs || {};
  const keys = Object.keys(inputs);
  const result = h("div", { role: "status", class: "run-result" });
  const errors = h("div");
  const button = h("button", { type: "submit", dataset: { testid: "run-template" }, "aria-label": `Run template ${t.name}` }, "Run");
  const fields = keys.map((k, j) => {
    const id = `tpl-${index}-in-${j}`;
    const input = h("input", { id, name: k, type: "text", autocomplete: "off" });
    input.value = inputs[k];
    return h("div", { class: "field" }, h("label", { for: id }, k), input);
  });
  const form = h("form", { class: "run-form" });
  if (fields.length) {
    form.append(h("details", {}, h("summary", {}, `Inputs (${fields.length})`), ...fields));
  }
  form.append(button, result, errors);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    button.disabled = true;
    result.replaceChildren();
    errors.replaceChildren();
    const given = {};
    for (const k of keys) given[k] = form.elements.namedItem(k)?.value ?? inputs[k];
    try {
      const run = await api(`/api/v1/templates/${encodeURIComponent(t.name)}/run`, {
        method: "POST", body: { version: t.version, inputs: given }, signal: ctx.signal,
      });
      result.append("Queued ", h("a", { href: `#/runs/${encodeURIComponent(run.run_id)}`, class: "mono", dataset: { testid: "run-link" } },
        `run ${String(run.run_id).slice(0, 8)}`));
    } catch (err) {
      if (!isAbort(err)) errors.append(problemBanner(err));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// -- schedules ----------------------------------------------------------------------------

export async function renderSchedules(main, params, ctx) {
  const root = h("section", { class: "page", dataset: { testid: "page-schedules" } },
    h("h1", { id: "schedules-h1" }, "Schedules"),
    h("p", { class: "muted" }, "Templates on a clock. A paused schedule fires no tick; resuming starts from its next tick."),
  );
  main.append(root);
  const admin = can("admin");
  const headers = ["Template", "When", "Time zone", "Next tick", "Last tick", "State"];
  if (admin) headers.push("Actions");
  await pagedTable({
    root, path: "/api/v1/schedules", headers, labelledBy: "schedules-h1", ctx,
    empty: "No schedules yet.",
    row: (s) => scheduleRow(s, admin, ctx),
  });
}

function clock(s) {
  if (s.cron) return h("code", {}, s.cron);
  if (s.interval_seconds) return `every ${s.interval_seconds} s`;
  return "—";
}

function scheduleRow(s, admin, ctx) {
  const last = s.last_fired_at
    ? [time(s.last_fired_at), s.last_run_id ? h("a", { href: `#/runs/${encodeURIComponent(s.last_run_id)}`, class: "mono" }, ` run ${String(s.last_run_id).slice(0, 8)}`) : null]
    : ["—"];
  const state = [h("span", { class: s.paused ? "badge paused" : "badge ok" }, s.paused ? "paused" : "active")];
  if (s.last_error) state.push(h("p", { class: "warn wrap" }, `Last tick did nothing: ${s.last_error}`));
  const cells = [
    h("th", { scope: "row" }, s.template, h("span", { class: "muted" }, s.version ? ` v${s.version}` : " (latest)")),
    h("td", {}, clock(s)),
    h("td", {}, s.timezone),
    h("td", {}, s.next_fire_at ? time(s.next_fire_at) : "—"),
    h("td", {}, ...last.filter(Boolean)),
    h("td", {}, ...state),
  ];
  const row = h("tr", { dataset: { testid: "schedule", scheduleId: s.schedule_id, paused: String(s.paused) } }, ...cells);
  if (admin) row.append(h("td", {}, pauseButton(s, row, ctx)));
  return row;
}

function pauseButton(s, row, ctx) {
  const action = s.paused ? "resume" : "pause";
  const label = s.paused ? "Resume" : "Pause";
  const errors = h("div");
  const button = h("button", { type: "button", dataset: { testid: action }, "aria-label": `${label} schedule of ${s.template}` }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    errors.replaceChildren();
    try {
      const updated = await api(`/api/v1/schedules/${encodeURIComponent(s.schedule_id)}/${action}`, { method: "POST", signal: ctx.signal });
      const fresh = scheduleRow(updated, true, ctx);
      row.replaceWith(fresh);
      fresh.querySelector("button")?.focus(); // keep the keyboard where it was
    } catch (err) {
      button.disabled = false;
      if (!isAbort(err)) errors.append(problemBanner(err));
    }
  });
  return h("div", {}, button, errors);
}
