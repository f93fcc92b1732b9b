// A run's artifacts on its page: the table, a text preview, one download each and the ZIP.

import { download, fetchText } from "./api.js";
import { fmtBytes, fmtTime, h, problemBanner, replaceChildren, table } from "./dom.js";

const PREVIEW_BYTES = 256 * 1024;

// Through the gateway: with S3 the download would otherwise be a redirect to a presigned URL
// on another origin, which fetch can read only if the bucket allows CORS.
const artifactPath = (artifact) => `/api/v1/artifacts/${artifact.id}?redirect=false`;
const TEXT_EXTENSIONS =
  /\.(txt|log|md|csv|tsv|json|jsonl|ya?ml|toml|ini|cfg|xml|html?|sql|py|sh|js|ts|r|scala|java|go|rs|dot|mmd|svg)$/i;

/** The artifacts section: {el, show(artifacts)}; a failed download goes to `showError`. */
export function createArtifacts(runId, showError) {
  const el = h("section", { "aria-labelledby": "artifacts-h" });
  const preview = h("div", { class: "preview" });

  function show(list) {
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
            onclick: () => download(artifactPath(a), basename(a.path)).catch(showError),
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
      el,
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
              download(`/api/v1/runs/${runId}/artifacts.zip`, `run-${runId}.zip`).catch(showError),
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
      pre.textContent = await fetchText(artifactPath(artifact), PREVIEW_BYTES);
    } catch (error) {
      pre.textContent = "";
      replaceChildren(preview, problemBanner(error));
    }
  }

  return { el, show };
}

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
