// The shell: who is signed in, the hash router, and the sign-in page.
// Pages are imported lazily so that a page module that fails to load breaks only its page.

import {
  api,
  ApiError,
  clearToken,
  currentUser,
  decodeToken,
  isAbort,
  setToken,
  signedOutReason,
} from "./api.js";
import { h, problemBanner } from "./dom.js";

const main = document.getElementById("main");

// page name → how to load its module; `pick` chooses the export when a module serves two pages;
// `early` sends what the page's first paint waits for while its module loads (ctx.early).
const PAGES = {
  runs: {
    load: (params) => (params.path.length ? import("./run.js") : import("./board.js")),
    early: (params, signal) =>
      params.path.length
        ? null
        : import("./board_first.js").then((m) => m.askFirstPage(params, signal)),
  },
  sessions: { load: () => import("./sessions.js") },
  executors: { load: () => import("./executors.js") },
  templates: { load: () => import("./templates.js") },
  schedules: { load: () => import("./templates.js"), pick: "renderSchedules" },
  routing: { load: () => import("./routing.js") },
  lineage: { load: () => import("./lineage.js") },
};
const TITLES = {
  runs: "Runs",
  sessions: "Sessions",
  executors: "Executors",
  templates: "Templates",
  schedules: "Schedules",
  routing: "Routing",
  lineage: "Lineage",
  signin: "Sign in",
};

let current = null; // {controller, page}
let sequence = 0; // a newer navigation wins over a slower one still loading

/** "#/runs/abc?status=queued" → {page: "runs", path: ["abc"], query}. */
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, "");
  const q = raw.indexOf("?");
  const pathPart = q < 0 ? raw : raw.slice(0, q);
  const segments = pathPart.split("/").filter(Boolean).map(safeDecode);
  return {
    page: segments[0] || "",
    path: segments.slice(1),
    query: new URLSearchParams(q < 0 ? "" : raw.slice(q + 1)),
  };
}

function safeDecode(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment; // a malformed %-escape is kept as typed
  }
}

async function route() {
  const { page, path, query } = parseHash();
  const user = currentUser();
  if (page !== "signin" && !user) {
    location.replace("#/signin");
    return;
  }
  if (!page) {
    location.replace("#/runs");
    return;
  }
  const mine = ++sequence;
  current?.controller.abort();
  const controller = new AbortController();
  // Focus moves to the new page's heading, but not when only its filters changed.
  const key = `${page}/${path.length > 0}`;
  const samePage = current?.key === key;
  current = { controller, page, key };
  updateShell(page, user);
  main.replaceChildren();
  main.removeAttribute("aria-busy");
  const params = { page, path, query };
  const ctx = { signal: controller.signal, page };
  try {
    if (page === "signin") {
      await renderSignin(main, params, ctx);
    } else if (PAGES[page]) {
      main.setAttribute("aria-busy", "true");
      const spec = PAGES[page];
      ctx.early = spec.early?.(params, controller.signal) ?? null;
      ctx.early?.catch(() => {}); // a page left before it loaded never reads it
      let module;
      try {
        module = await spec.load(params);
      } catch (error) {
        if (mine !== sequence) return;
        throw new Error(`The ${TITLES[page]} page could not be loaded (${error.message}).`);
      }
      if (mine !== sequence) return;
      const render = (spec.pick && module[spec.pick]) || module.render;
      await render(main, params, ctx);
    } else {
      renderNotFound(main, page);
    }
  } catch (error) {
    if (isAbort(error) || mine !== sequence) return;
    console.error(error);
    main.append(problemBanner(error));
  } finally {
    if (mine === sequence) main.removeAttribute("aria-busy");
  }
  const heading = main.querySelector("h1");
  if (mine === sequence && !samePage && heading) {
    if (!heading.hasAttribute("tabindex")) heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

function updateShell(page, user) {
  document.title = `${TITLES[page] || "Not found"} · Runboard`;
  for (const link of document.querySelectorAll(".nav-links a")) {
    if (link.dataset.page === page) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const box = document.querySelector(".user");
  const who = document.querySelector('[data-testid="whoami"]');
  if (user) {
    who.textContent = [user.sub, user.tenant_id, user.role].map((v) => v ?? "?").join(" · ");
    box.hidden = false;
  } else {
    who.textContent = "";
    box.hidden = true;
  }
  document.querySelector(".site-header nav").hidden = !user;
}

function renderNotFound(main, page) {
  main.append(
    h(
      "section",
      { dataset: { testid: "page-not-found" } },
      h("h1", { tabindex: "-1" }, "Page not found"),
      h(
        "p",
        {},
        `There is no page called “${page}”. `,
        h("a", { href: "#/runs" }, "Go to the runs"),
      ),
    ),
  );
}

/** #/signin: a token from the link `make up` prints (…#/signin?token=…) or from the form. */
async function renderSignin(main, params) {
  // Only from the fragment, which is never sent to a server; out of the address bar (and so
  // the history) at once, whether it turns out to be good or not.
  const fromLink = params.query.get("token");
  if (fromLink) history.replaceState(null, "", `${location.pathname}#/signin`);
  const alerts = h("div", { class: "alerts" });
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
  });
  const form = h(
    "form",
    {
      class: "signin-form",
      onsubmit: (event) => {
        event.preventDefault();
        signIn(input.value.trim());
      },
    },
    h("label", { for: "token" }, "Token"),
    input,
    h("p", { class: "hint" }, "Paste a bearer token (JWT) issued for your tenant."),
    h("button", { type: "submit" }, "Sign in"),
  );
  main.append(
    h(
      "section",
      { class: "signin", dataset: { testid: "page-signin" } },
      h("h1", { tabindex: "-1" }, "Sign in"),
      alerts,
      form,
    ),
  );
  if (signedOutReason) alerts.append(problemBanner(signedOutReason));

  async function signIn(token) {
    alerts.replaceChildren();
    const claims = decodeToken(token);
    if (!claims || !claims.sub || !claims.role) {
      alerts.append(
        problemBanner("That is not a Control Room token (a JWT with sub, tenant_id and role)."),
      );
      return;
    }
    if (typeof claims.exp === "number" && claims.exp * 1000 <= Date.now()) {
      alerts.append(problemBanner("That token has expired."));
      return;
    }
    setToken(token);
    // The token leaves the address bar (and so the history) before anything else happens.
    history.replaceState(null, "", `${location.pathname}#/signin`);
    try {
      await api("/api/v1/runs", { query: { limit: 1 } });
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        clearToken();
        alerts.append(problemBanner(`The gateway refused this token: ${error.message}`));
        return;
      }
      // Anything else (the gateway is down...) is the next page's to show.
    }
    location.hash = "#/runs";
  }

  if (fromLink) {
    input.value = fromLink;
    const signedIn = currentUser();
    const offered = decodeToken(fromLink);
    if (signedIn && signedIn.token !== fromLink) {
      // A link must not switch a signed-in user to another identity (or another tenant)
      // without asking: it may have been crafted by someone else.
      alerts.append(
        h(
          "p",
          { class: "notice", role: "status" },
          `This link signs in as ${describe(offered)}; you are signed in as ` +
            `${describe(signedIn)}. Press Sign in to switch.`,
        ),
      );
      return;
    }
    await signIn(fromLink);
  }
}

function describe(claims) {
  return claims ? `${claims.sub} · ${claims.tenant_id} · ${claims.role}` : "an unreadable token";
}

function signOutClicked() {
  clearToken();
  location.hash = "#/signin";
}

document.getElementById("sign-out").addEventListener("click", signOutClicked);
// The skip link's "#main" would be taken for a route: focus <main> instead.
document.querySelector(".skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
window.addEventListener("hashchange", route);
// Another tab signed in or out: follow it.
window.addEventListener("storage", (event) => {
  if (event.key === "controlroom.token") route();
});
route();
