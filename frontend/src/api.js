// The one place that talks to the /api/v1 service: JSON in and out, and every failure turned into a
// message a person can act on (ApiError.message), with the field errors of a 422 in ApiError.fields.

const OFFLINE = "Can't reach Yoctogram. Check your internet connection, then try again.";

export class ApiError extends Error {
  constructor(message, { status = 0, fields = {}, body = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fields = fields;
    this.body = body;
  }

  get offline() {
    return this.status === 0;
  }
}

/** "Retry-After: 540" -> "in about 9 minutes" (the header may also be an HTTP date, or absent). */
function waitFor(retryAfter) {
  const seconds = Number(retryAfter);
  if (!Number.isFinite(seconds) || seconds <= 0) return "in a moment";
  if (seconds < 60) return `in ${Math.ceil(seconds)} seconds`;
  const minutes = Math.ceil(seconds / 60);
  return `in about ${minutes} minute${minutes === 1 ? "" : "s"}`;
}

function messageFor(status, detail, retryAfter) {
  if (status === 429) return `Too many attempts right now. Try again ${waitFor(retryAfter)}.`;
  if (status >= 500) {
    return `Yoctogram is having trouble (error ${status}). Try again in a minute.`;
  }
  return detail || `The request failed (error ${status}). Try again.`;
}

/** {"errors": [{"loc": ["username"], "msg": "..."}]} -> {username: "..."} */
function fieldErrors(body) {
  const fields = {};
  for (const error of body?.errors ?? []) {
    const name = error.loc?.at(-1);
    if (name && !fields[name]) fields[name] = error.msg;
  }
  return fields;
}

/**
 * @param {object} options
 * @param {string} options.base e.g. "/api/v1"
 * @param {() => string | null} options.getToken the session's bearer token, if any
 * @param {() => void} options.onExpired called when the server rejects our token (401)
 */
export function createApi({ base, getToken, onExpired }) {
  async function request(method, path, { body, query, signal } = {}) {
    const url = new URL(base + path, window.location.origin);
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value != null) url.searchParams.set(key, value);
    }
    const headers = { Accept: "application/json" };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";

    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError(OFFLINE);
    }
    let data = null;
    if (response.headers.get("content-type")?.includes("json")) {
      data = await response.json().catch(() => null);
    }
    if (response.ok) return data ?? {};

    if (response.status === 401 && token) {
      onExpired();
      throw new ApiError("Your session has ended. Log in again.", { status: 401, body: data });
    }
    const detail = typeof data?.detail === "string" ? data.detail : "";
    throw new ApiError(messageFor(response.status, detail, response.headers.get("retry-after")), {
      status: response.status,
      fields: fieldErrors(data),
      body: data,
    });
  }

  return {
    request,
    register: (account) => request("POST", "/auth/register/", { body: account }),
    login: (username, password) => request("POST", "/auth/login/", { body: { username, password } }),
    logout: () => request("POST", "/auth/logout/"),
    me: () => request("GET", "/users/me"),
    profile: (userId, signal) => request("GET", `/users/profile/${encodeURIComponent(userId)}`, { signal }),
    latest: (cursor, limit, signal) => request("GET", "/feed/latest", { query: { cursor, limit }, signal }),
    byUser: (userId, cursor, limit, signal) =>
      request("GET", `/feed/by_user/${encodeURIComponent(userId)}`, { query: { cursor, limit }, signal }),
    generateUpload: (privacy, contentType) =>
      request("POST", `/images/upload/${privacy}/generate`, { body: { content_type: contentType } }),
    confirmUpload: (imageId) => request("POST", `/images/upload/${encodeURIComponent(imageId)}/confirm`),
    media: (imageId, signal) => request("GET", `/images/media/${encodeURIComponent(imageId)}`, { signal }),
    remove: (imageId) => request("DELETE", `/images/${encodeURIComponent(imageId)}`),
  };
}
