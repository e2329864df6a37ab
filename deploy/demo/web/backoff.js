// Reconnect delays: exponential, capped, with "equal jitter" (half fixed, half random), so a
// service restart is not met by every open page reconnecting in the same instant, while the
// first retry still comes quickly.

export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_CAP_MS = 30000;

export function backoffDelay(attempt, { base = BACKOFF_BASE_MS, cap = BACKOFF_CAP_MS, random = Math.random } = {}) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

// Resolves after `ms`, or early when `wake` fires (e.g. the browser comes back online);
// rejects with the signal's reason when `signal` aborts.
export function sleep(ms, signal, wake) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(signal.reason);
      return;
    }
    const done = () => {
      clearTimeout(timer);
      if (signal) signal.removeEventListener("abort", aborted);
      if (wake) wake.removeEventListener("wake", done);
      resolve();
    };
    const aborted = () => {
      clearTimeout(timer);
      if (wake) wake.removeEventListener("wake", done);
      reject(signal.reason);
    };
    const timer = setTimeout(done, ms);
    if (signal) signal.addEventListener("abort", aborted, { once: true });
    if (wake) wake.addEventListener("wake", done, { once: true });
  });
}
