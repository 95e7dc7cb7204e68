// The REST API as the page sees it: where it is, the bearer token, and errors in words.
//
// The API base is derived from the page's own address, so the console works
// at "/" as well as behind a gateway prefix such as "/api/invite/".

const TOKEN_KEY = "invite-console.token";

// When the API said "slow down" (429 with Retry-After), polling waits until then.
let quietUntil = 0;

/** Milliseconds the page should still wait before polling again (0: go ahead). */
export function backoff() {
  return Math.max(0, quietUntil - Date.now());
}

/** Absolute URL of an API path ("api/v1/tasks"), relative to the page. */
export function apiUrl(path, query) {
  const url = new URL(path.replace(/^\//, ""), document.baseURI);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  return url;
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";  // storage disabled: the person enters the token again
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled */
  }
}

/** An API refusal or a failure to reach it; `message` is meant for people. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The message with what the API said about each field, e.g. "invalid name (name: field required)". */
  get full() {
    const parts = [];
    if (Array.isArray(this.details)) {
      for (const d of this.details.slice(0, 5)) {
        if (d && typeof d === "object" && (d.field || d.message || d.reason)) {
          const where = d.field ?? (d.row !== undefined ? `row ${d.row}` : "");
          parts.push(where ? `${where}: ${d.message ?? d.reason ?? "invalid"}` : `${d.message ?? d.reason}`);
        }
      }
    } else if (this.details && typeof this.details === "object" && this.details.row) {
      parts.push(`row ${this.details.row}`);
    }
    const extra = parts.length ? ` (${parts.join("; ")})` : "";
    return `${this.message}${extra}`;
  }
}

const STATUS_WORDS = {
  400: "the request was not understood",
  401: "the token is missing or not valid",
  403: "not allowed",
  404: "not found",
  405: "not supported by this version of the service",
  409: "not allowed in the task's current state",
  413: "too large",
  415: "not a supported file type",
  422: "invalid input",
  429: "too many requests; slow down",
  500: "the service failed; it has logged the error",
  502: "the gateway could not reach the service",
  503: "the service is busy or starting; trying again",
  504: "the gateway timed out waiting for the service",
};

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: a gateway page or a proxy error */
  }
  const error = body && typeof body === "object" ? body.error : null;
  if (error && typeof error === "object" && typeof error.message === "string") {
    return new ApiError(response.status, error.code || "error", error.message, error.details ?? null);
  }
  const words = STATUS_WORDS[response.status] || "unexpected answer";
  return new ApiError(response.status, "http_error", `${words} (HTTP ${response.status})`, null);
}

/**
 * Call the API. `json` sends a JSON body, `form` a FormData (multipart).
 * Resolves to the parsed JSON (or the Response for `raw`); rejects with ApiError.
 */
export async function request(method, path, {json, form, query, raw = false, auth = true, signal} = {}) {
  const headers = {Accept: "application/json"};
  const token = getToken();
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;  // the browser sets the multipart boundary
  }
  let response;
  try {
    response = await fetch(apiUrl(path, query), {method, headers, body, signal, cache: "no-store"});
  } catch (exc) {
    if (exc && exc.name === "AbortError") throw exc;
    throw new ApiError(0, "network", "cannot reach the service (network error or the service is down)", null);
  }
  if (!response.ok) {
    if (response.status === 429) {
      const seconds = Number(response.headers.get("Retry-After")) || 10;
      quietUntil = Date.now() + Math.min(seconds, 300) * 1000;
    }
    throw await errorOf(response);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    throw new ApiError(response.status, "bad_response", "the service answered with something that is not JSON", null);
  }
}

export const api = {
  get: (path, options) => request("GET", path, options),
  post: (path, json, options) => request("POST", path, {...options, json}),
  upload: (path, form, options) => request("POST", path, {...options, form}),
};

/** Save a response body as a file (the CSV export needs the bearer token, so no plain link). */
export async function download(path, fallbackName) {
  const response = await request("GET", path, {raw: true});
  const disposition = response.headers.get("Content-Disposition") || "";
  const match = /filename="?([^";]+)"?/.exec(disposition);
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = match ? match[1] : fallbackName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return link.download;
}
