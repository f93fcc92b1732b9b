// Talking to the gateway: bearer token, JSON in and out, problem+json errors, downloads.

const TOKEN_KEY = "controlroom.token";
const ROLES = { viewer: 1, operator: 2, admin: 3 };

/** A non-2xx answer; message is the problem's detail (or title). */
export class ApiError extends Error {
  constructor(status, problem, message) {
    super(message || problem?.detail || problem?.title || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem ?? null;
  }
}

/** Why the last request was sent back to sign-in (shown on the sign-in page once). */
export let signedOutReason = null;

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null; // storage disabled: behave as signed out
  }
}

export function setToken(token) {
  localStorage.setItem(TOKEN_KEY, token);
  signedOutReason = null;
}

export function clearToken(reason = null) {
  try {
    localStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing stored
  }
  signedOutReason = reason;
}

/** The token was refused: forget it and go to sign-in (the router re-renders from there). */
export function signOut(reason) {
  clearToken(reason);
  if (!location.hash.startsWith("#/signin")) location.hash = "#/signin";
}

/** Decodes a JWT's payload without checking it (the gateway checks; this only labels the UI). */
export function decodeToken(token) {
  const part = String(token || "").split(".")[1];
  if (!part) return null;
  try {
    const b64 = part.replaceAll("-", "+").replaceAll("_", "/");
    const bytes = Uint8Array.from(
      atob(b64.padEnd(b64.length + ((4 - (b64.length % 4)) % 4), "=")),
      (c) => c.charCodeAt(0),
    );
    const payload = JSON.parse(new TextDecoder().decode(bytes));
    return payload && typeof payload === "object" ? payload : null;
  } catch {
    return null;
  }
}

/** {token, sub, tenant_id, role} of the stored token, or null (none, unreadable or expired). */
export function currentUser() {
  const token = getToken();
  const payload = decodeToken(token);
  if (!payload) return null;
  if (typeof payload.exp === "number" && payload.exp * 1000 <= Date.now()) return null;
  return { token, sub: payload.sub, tenant_id: payload.tenant_id, role: payload.role };
}

/** Whether the signed-in user's role is at least `role` (viewer < operator < admin). */
export function can(role) {
  const user = currentUser();
  return Boolean(user) && (ROLES[user.role] ?? 0) >= (ROLES[role] ?? Infinity);
}

/** Whether an error only says that the page was left (a fetch aborted by ctx.signal). */
export function isAbort(error) {
  return error?.name === "AbortError";
}

/** "/api/v1/runs" + {status: "queued", lane: ""} → "/api/v1/runs?status=queued". */
export function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    params.append(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}${path.includes("?") ? "&" : "?"}${qs}` : path;
}

export function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : { ...extra };
}

/** fetch with the token; a 401 signs out and any non-2xx throws an ApiError. */
async function request(path, { method = "GET", body, query, signal, headers = {} } = {}) {
  const init = { method, signal, headers: authHeaders({ Accept: "application/json", ...headers }) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), init);
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(0, null, `The gateway could not be reached (${error.message})`);
  }
  if (response.ok) return response;
  const problem = await readProblem(response);
  if (response.status === 401) {
    signOut(problem?.detail || "Your token was refused; sign in again.");
  }
  throw new ApiError(response.status, problem);
}

async function readProblem(response) {
  try {
    const text = await response.text();
    const parsed = text ? JSON.parse(text) : null;
    return parsed && typeof parsed === "object" ? parsed : { detail: text };
  } catch {
    return { title: `${response.status} ${response.statusText}`.trim() };
  }
}

/** JSON of a gateway call (null for 204 or an empty body). */
export async function api(path, options = {}) {
  const response = await request(path, options);
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? JSON.parse(text) : text;
}

/** Saves what `path` answers as a file, named by Content-Disposition or `fallbackName`. */
export async function download(path, fallbackName) {
  const response = await request(path, { headers: { Accept: "*/*" } });
  const blob = await response.blob();
  const name = dispositionName(response.headers.get("Content-Disposition")) || fallbackName;
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name || "download";
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked later, not at once: some browsers read the blob after click() returns.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function dispositionName(header) {
  if (!header) return null;
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch {
      // fall through to the plain name
    }
  }
  const plain = /filename\s*=\s*"?([^";]+)"?/i.exec(header);
  return plain ? plain[1].trim() : null;
}

/** The start of a (text) file, at most maxBytes of it; a cut text says so at its end. */
export async function fetchText(path, maxBytes = 256 * 1024) {
  const response = await request(path, { headers: { Accept: "text/plain, */*" } });
  const reader = response.body?.getReader();
  if (!reader) return (await response.text()).slice(0, maxBytes);
  const chunks = [];
  let size = 0;
  let cut = false;
  while (size < maxBytes) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  if (size === maxBytes)
    cut = !(await reader.read()).done; // exactly maxBytes is not cut
  else if (size > maxBytes) cut = true;
  if (cut) reader.cancel().catch(() => {}); // the rest is not wanted
  const bytes = new Uint8Array(Math.min(size, maxBytes));
  let offset = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, bytes.length - offset);
    bytes.set(part, offset);
    offset += part.length;
    if (offset >= bytes.length) break;
  }
  const text = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  return cut ? `${text}\n… (preview cut at ${Math.round(maxBytes / 1024)} KiB)` : text;
}
