// The device's change stream: GET /v1/devices/{id}/events read with fetch and a streamed body,
// because EventSource cannot send an Authorization header and the token must never be put in
// a URL (URLs end up in logs, history and Referer headers).
//
// Reconnect policy: after any end or failure the stream is opened again after
// backoffDelay(attempt) (1 s doubling to a 30 s cap, half of it random); the attempt count
// restarts once a connection has stayed up for STABLE_MS. Each connect sends
// `Last-Event-ID: <revision the page has applied>`, and the service answers a stale revision
// with an immediate `change`. A Smart Contacts change has no revision of its own, so every
// (re)connection also asks the page to re-read with If-None-Match (a 304 when nothing
// changed): nothing that happened while the page was disconnected is missed.
// A stream that is silent for longer than IDLE_TIMEOUT_MS (the service sends a keep-alive at
// least every 15 s) is taken as dead and reopened. 401 and 404 end the stream for good.

import { backoffDelay, sleep } from "./backoff.js";
import { SseParser } from "./sse.js";

export const CONNECT_TIMEOUT_MS = 15000;
export const IDLE_TIMEOUT_MS = 45000;
export const STABLE_MS = 10000;

export class ChangeStream {
  constructor({ url, getToken, getLastEventId, onChange, onState, onUnauthorized, onGone, signal }) {
    this.url = url;
    this.getToken = getToken;
    this.getLastEventId = getLastEventId;
    this.onChange = onChange;
    this.onState = onState;
    this.onUnauthorized = onUnauthorized;
    this.onGone = onGone;
    this.signal = signal;
    // Coming back online ends the backoff wait at once.
    this.wake = new EventTarget();
    this.online = () => this.wake.dispatchEvent(new Event("wake"));
  }

  start() {
    window.addEventListener("online", this.online);
    this.signal.addEventListener("abort", () => window.removeEventListener("online", this.online), {
      once: true,
    });
    this.run().catch(() => {
      // Only an abort ends run() with an error; the page stopped the stream on purpose.
    });
  }

  async run() {
    let attempt = 0;
    while (!this.signal.aborted) {
      const opened = performance.now();
      const outcome = await this.connectOnce();
      if (this.signal.aborted) return;
      if (outcome.kind === "unauthorized") {
        this.onUnauthorized();
        return;
      }
      if (outcome.kind === "gone") {
        this.onGone();
        return;
      }
      if (outcome.connected && performance.now() - opened >= STABLE_MS) {
        attempt = 0;
      }
      // A busy service's Retry-After is a floor, not a replacement for the jitter.
      const delay = Math.max(backoffDelay(attempt), outcome.retryAfterMs || 0);
      attempt += 1;
      this.onState({ state: "reconnecting", delay, reason: outcome.reason });
      await sleep(delay, this.signal, this.wake);
    }
  }

  async connectOnce() {
    const attempt = new AbortController();
    const stop = () => attempt.abort(this.signal.reason);
    this.signal.addEventListener("abort", stop, { once: true });
    let timer = setTimeout(() => attempt.abort(new Error("connect timeout")), CONNECT_TIMEOUT_MS);
    let connected = false;
    try {
      const headers = { Accept: "text/event-stream", Authorization: `Bearer ${this.getToken()}` };
      const last = this.getLastEventId();
      if (last !== null && last !== undefined) {
        headers["Last-Event-ID"] = String(last);
      }
      this.onState({ state: "connecting" });
      const response = await fetch(this.url, {
        headers,
        signal: attempt.signal,
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
      if (response.status === 401) {
        return { kind: "unauthorized" };
      }
      if (response.status === 404) {
        return { kind: "gone" };
      }
      const type = response.headers.get("Content-Type") || "";
      if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
        response.body?.cancel().catch(() => {});
        const seconds = Number(response.headers.get("Retry-After"));
        const retryAfterMs = Number.isFinite(seconds) ? Math.min(seconds, 300) * 1000 : 0;
        return { kind: "retry", reason: `HTTP ${response.status}`, retryAfterMs };
      }
      connected = true;
      this.onState({ state: "live" });
      // Whatever changed while no stream was open, Smart Contacts included (see the top).
      this.onChange(null);
      const parser = new SseParser((event) => {
        if (event.type !== "change") return;
        let revision = null;
        try {
          revision = JSON.parse(event.data).revision;
        } catch {
          revision = null;
        }
        this.onChange(revision);
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      const idle = () => {
        clearTimeout(timer);
        timer = setTimeout(() => attempt.abort(new Error("idle")), IDLE_TIMEOUT_MS);
      };
      idle();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          return { kind: "retry", connected, reason: "the stream ended" };
        }
        idle();
        parser.feed(value);
      }
    } catch (error) {
      const reason = error && error.message === "idle" ? "no keep-alive" : "connection lost";
      return { kind: "retry", connected, reason };
    } finally {
      clearTimeout(timer);
      this.signal.removeEventListener("abort", stop);
      attempt.abort();
    }
  }
}
