// Server-Sent Events over fetch: EventSource cannot send the Authorization header.

import { authHeaders, signOut } from "./api.js";

const RECONNECT_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

/**
 * Follows an SSE endpoint: onEvent({id, event, data}) per event (data parsed as JSON when it
 * is JSON). A dropped connection is reopened after 1 s with Last-Event-ID; a stream the server
 * ended (a run's stream ends with the run) is not, unless `reopen` is set (a stream that never
 * ends by itself). onState("open" | "reconnecting" | "closed"); onError(error) when the server
 * refused the stream for good (404, 403...). `signal` closes it too.
 */
export function follow(
  path,
  { onEvent, onState, onError, lastEventId, reopen = false, signal } = {},
) {
  let lastId = lastEventId ?? null;
  let controller = null;
  let timer = null;
  let closed = false;
  let failures = 0;

  const setState = (state) => onState?.(state);

  function close() {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    controller?.abort();
    setState("closed");
  }

  function retry(delay) {
    if (closed) return;
    setState("reconnecting");
    timer = setTimeout(connect, delay);
  }

  async function connect() {
    if (closed) return;
    controller = new AbortController();
    const headers = authHeaders({ Accept: "text/event-stream" });
    if (lastId != null && lastId !== "") headers["Last-Event-ID"] = String(lastId);
    let response;
    try {
      response = await fetch(path, { headers, signal: controller.signal, cache: "no-store" });
    } catch (error) {
      if (!closed) retry(backoff());
      return;
    }
    if (!response.ok) {
      handleRefusal(response);
      return;
    }
    failures = 0;
    setState("open");
    try {
      await readEvents(response.body, (event) => {
        if (event.id != null) lastId = event.id;
        onEvent?.(event);
      });
    } catch (error) {
      if (!closed) retry(RECONNECT_MS); // dropped mid-stream: resume where it was
      return;
    }
    if (closed) return;
    if (reopen) retry(RECONNECT_MS);
    else close(); // ended by the server: the run is over
  }

  function backoff() {
    failures += 1;
    return Math.min(RECONNECT_MS * 2 ** (failures - 1), MAX_BACKOFF_MS);
  }

  async function handleRefusal(response) {
    const status = response.status;
    let detail = "";
    try {
      detail = (await response.json())?.detail || "";
    } catch {
      // not problem+json
    }
    if (status === 401) {
      close();
      signOut(detail || "Your token was refused; sign in again.");
    } else if (status === 429 || status >= 500) {
      // Too many streams open for the tenant, or the gateway is unwell: try again later.
      const after = Number(response.headers.get("Retry-After"));
      retry(Number.isFinite(after) && after > 0 ? after * 1000 : backoff());
    } else {
      const error = new Error(detail || `The stream was refused (HTTP ${status})`);
      error.status = status;
      close();
      onError?.(error);
    }
  }

  if (signal) {
    if (signal.aborted) closed = true;
    else signal.addEventListener("abort", close, { once: true });
  }
  if (!closed) connect();
  return { close };
}

/** Reads a text/event-stream body, calling emit({id, event, data}) per dispatched event. */
async function readEvents(body, emit) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = blank();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    // Lines end with \n, \r\n or \r (the SSE grammar allows all three).
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      if (buffer[newline] === "\r" && newline === buffer.length - 1) break; // maybe \r\n split
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") {
        // A named event without data (a bare `ready`) still counts, unlike the SSE spec says.
        if (event.data.length || event.event !== "message") emit(finish(event));
        event = blank();
      } else if (!line.startsWith(":")) {
        field(event, line);
      }
    }
  }
}

function blank() {
  return { id: null, event: "message", data: [] };
}

function field(event, line) {
  const colon = line.indexOf(":");
  const name = colon < 0 ? line : line.slice(0, colon);
  let value = colon < 0 ? "" : line.slice(colon + 1);
  if (value.startsWith(" ")) value = value.slice(1);
  if (name === "data") event.data.push(value);
  else if (name === "event") event.event = value || "message";
  else if (name === "id" && !value.includes("\0")) event.id = value;
}

function finish(event) {
  const text = event.data.join("\n");
  let data = event.data.length ? text : null;
  try {
    data = JSON.parse(text);
  } catch {
    // not JSON: passed on as text
  }
  return { id: event.id, event: event.event, data };
}
