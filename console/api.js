// The admin API as the console uses it: bearer tokens kept for this tab (sessionStorage),
// refreshed once when the access token expires, errors as Error(problem detail), and the live
// events of GET /v1/events read from a fetch stream (EventSource cannot send a bearer token),
// resumed with Last-Event-ID after a drop.

const KEY = "coach.session";

let session = JSON.parse(sessionStorage.getItem(KEY) || "null");
let refreshing = null;
const listeners = new Set();

export function loggedIn() {
  return !!session;
}

export function onLogout(fn) {
  listeners.add(fn);
}

function keep(pair) {
  session = pair;
  if (pair) sessionStorage.setItem(KEY, JSON.stringify(pair));
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail, type = "") {
    super(detail);
    this.status = status;
    // The problem type's last segment, e.g. "email-unconfirmed".
    this.type = type.split("/").pop();
  }
}

async function problem(res) {
  try {
    const body = await res.json();
    return new ApiError(res.status, body.detail || body.title || res.statusText, body.type || "");
  } catch {
    return new ApiError(res.status, res.statusText);
  }
}

/** A call that needs no session (login, password reset, e-mail confirmation). */
export async function open(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw await problem(res);
  return res.status === 204 || res.status === 202 ? null : res.json();
}

export async function login(email, password) {
  keep(await open("/v1/auth/login", { email, password }));
}

export async function logout() {
  if (session) {
    try {
      await call("POST", "/v1/auth/logout");
    } catch {
      /* the session ends here either way */
    }
  }
  keep(null);
  listeners.forEach((fn) => fn());
}

async function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      const res = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh_token: session.refresh_token }),
      });
      if (!res.ok) {
        keep(null);
        listeners.forEach((fn) => fn());
        throw await problem(res);
      }
      keep(await res.json());
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

/**
 * Calls the API; `body` is JSON, FormData for uploads, or a Blob sent as is with its type (a
 * CSV file). Returns the parsed JSON (or null).
 */
export async function call(method, path, body, retried = false) {
  if (!session) throw new ApiError(401, "not logged in");
  const headers = { authorization: `Bearer ${session.access_token}` };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body instanceof Blob) {
    headers["content-type"] = body.type || "application/octet-stream";
    payload = body;
  } else if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload });
  if (res.status === 401 && !retried && session) {
    await refresh();
    return call(method, path, body, true);
  }
  if (!res.ok) throw await problem(res);
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const get = (path) => call("GET", path);

/** A file (GET) as a Blob, with how it may be shown (`x-media-kind`: image, audio, video, file). */
export async function file(path, retried = false) {
  if (!session) throw new ApiError(401, "not logged in");
  const res = await fetch(path, { headers: { authorization: `Bearer ${session.access_token}` } });
  if (res.status === 401 && !retried && session) {
    await refresh();
    return file(path, true);
  }
  if (!res.ok) throw await problem(res);
  return { blob: await res.blob(), kind: res.headers.get("x-media-kind") || "file" };
}
export const post = (path, body) => call("POST", path, body);

/**
 * Follows GET /v1/events until `stop()`: `onEvent(name, data)` for each event (including
 * `resync`, after which views reload), `onState(live)` when the connection goes up or down.
 */
export function follow(onEvent, onState) {
  let last = null;
  let stopped = false;
  let controller = null;
  let delay = 500;
  (async () => {
    while (!stopped) {
      controller = new AbortController();
      try {
        if (!session) return;
        const headers = { authorization: `Bearer ${session.access_token}`, accept: "text/event-stream" };
        if (last) headers["last-event-id"] = last;
        const res = await fetch("/v1/events", { headers, signal: controller.signal });
        if (res.status === 401) {
          await refresh();
          continue;
        }
        if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
        onState(true);
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            let name = "message";
            let data = "";
            let id = null;
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) name = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
              else if (line.startsWith("id:")) id = line.slice(3).trim();
            }
            // An idle line without data still moves the cursor (as EventSource does).
            if (id) last = id;
            if (!data) continue;
            try {
              onEvent(name, JSON.parse(data));
            } catch (e) {
              console.error("event handler", e);
            }
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      onState(false);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  })();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
