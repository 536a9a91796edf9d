// Small fetch helpers for the JSON API. Errors come back as
// {"error": {"code", "message"}}; they are thrown as ApiError.

import { t } from "./i18n.js";

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0: the network failed)
   * @param {string} code   the contract's snake_case code ("network_error" when offline)
   * @param {string} message the server's human text (in the page's language)
   */
  constructor(status, code, message, details = {}) {
    super(message || code || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    /** the error object's other fields, e.g. an import's per-row report in `rows` */
    this.details = details;
  }

  get isNetwork() {
    return this.status === 0;
  }
}

/** The network failed (no answer at all): said in the page's language, not the browser's. */
export function networkError() {
  return new ApiError(0, "network_error", t("network_error"));
}

/** Turn a failed Response into an ApiError, reading the JSON error body if there is one. */
export async function errorFromResponse(response) {
  let code = "http_error";
  let message = `HTTP ${response.status}`;
  let details = {};
  try {
    const type = response.headers.get("Content-Type") || "";
    if (type.includes("json")) {
      const body = await response.json();
      if (body && typeof body.error === "object" && body.error) {
        if (typeof body.error.code === "string") code = body.error.code;
        if (typeof body.error.message === "string") message = body.error.message;
        details = body.error;
      }
    } else {
      const text = (await response.text()).trim();
      if (text && text.length < 300) message = text;
    }
  } catch {
    // keep the defaults
  }
  return new ApiError(response.status, code, message, details);
}

async function request(method, url, body, options = {}) {
  const init = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json", ...(options.headers || {}) },
    signal: options.signal,
    keepalive: options.keepalive,
  };
  if (options.raw !== undefined) {
    init.headers["Content-Type"] = options.contentType || "application/octet-stream";
    init.body = options.raw;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (exc) {
    if (exc && exc.name === "AbortError") throw exc;
    throw networkError();
  }
  if (!response.ok) throw await errorFromResponse(response);
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  return type.includes("json") ? response.json() : response.text();
}

/** POST a JSON body; resolves with the parsed JSON answer, rejects with ApiError. */
export function postJSON(url, body = {}, options) {
  return request("POST", url, body, options);
}

/** GET JSON; resolves with the parsed answer, rejects with ApiError. */
export function getJSON(url, options) {
  return request("GET", url, undefined, options);
}

/** PATCH a JSON body (partial update); resolves with the parsed answer. */
export function patchJSON(url, body, options) {
  return request("PATCH", url, body, options);
}

/** DELETE; resolves with the parsed answer. */
export function deleteJSON(url, options) {
  return request("DELETE", url, undefined, options);
}

/** POST a file's bytes as they are (a CSV upload); resolves with the parsed answer. */
export function postFile(url, file, contentType, options = {}) {
  return request("POST", url, undefined, { ...options, raw: file, contentType });
}
