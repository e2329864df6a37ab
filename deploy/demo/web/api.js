// JSON over fetch with a deadline for the whole exchange (headers and body), and the services'
// one error shape turned into ApiError.

export const REQUEST_TIMEOUT_MS = 15000;

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

// The service could not be reached or did not answer in time. A cross-origin request that
// CORS refuses looks exactly like this too: the browser hides the answer from the page.
export class NetworkError extends Error {
  constructor(message, cause) {
    super(message, { cause });
    this.name = "NetworkError";
  }
}

export function isAbort(error, signal) {
  return Boolean(signal && signal.aborted) || (error && error.name === "AbortError");
}

export async function requestJson(url, options = {}) {
  const { method = "GET", token, body, headers = {}, signal, timeoutMs = REQUEST_TIMEOUT_MS } =
    options;
  const sent = { Accept: "application/json", ...headers };
  if (token) {
    sent.Authorization = `Bearer ${token}`;
  }
  let payload;
  if (body !== undefined) {
    sent["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const deadline = AbortSignal.timeout(timeoutMs);
  const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
  let response;
  let text;
  try {
    response = await fetch(url, {
      method,
      headers: sent,
      body: payload,
      signal: combined,
      // Conditional requests (If-None-Match) are ours to make: the HTTP cache stays out.
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
    text = response.status === 304 ? "" : await response.text();
  } catch (error) {
    if (signal && signal.aborted) {
      throw signal.reason ?? error;
    }
    if (deadline.aborted) {
      throw new NetworkError(`No answer from ${new URL(url).origin} in time.`, error);
    }
    throw new NetworkError(`Could not reach ${new URL(url).origin}.`, error);
  }
  if (response.status === 304) {
    return { status: 304, headers: response.headers, body: null };
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const code = (data && data.error) || "http_error";
    const message = (data && data.message) || `The service answered HTTP ${response.status}.`;
    throw new ApiError(response.status, code, message, data && data.details);
  }
  return { status: response.status, headers: response.headers, body: data };
}
