/** How requests that may be retried are retried. */
export interface RetryOptions {
  /** Tries in all, the first included. Defaults to 5. */
  attempts?: number;
  /** The first backoff, in milliseconds; it doubles per try, with full jitter. Defaults to 250. */
  baseDelayMs?: number;
  /** The longest backoff between tries, in milliseconds. Defaults to 30000. */
  maxDelayMs?: number;
  /**
   * The longest `Retry-After` waited for, in milliseconds: an answer that
   * asks for a longer wait is not retried but returned (thrown as a
   * ProblemError). Defaults to 60000.
   */
  maxRetryAfterMs?: number;
}

/** RetryOptions with every default filled in. */
export type RetryPolicy = Required<RetryOptions>;

/** retryPolicy fills in the defaults of o. */
export function retryPolicy(o: RetryOptions = {}): RetryPolicy {
  const p = {
    attempts: o.attempts ?? 5,
    baseDelayMs: o.baseDelayMs ?? 250,
    maxDelayMs: o.maxDelayMs ?? 30_000,
    maxRetryAfterMs: o.maxRetryAfterMs ?? 60_000,
  };
  if (!Number.isInteger(p.attempts) || p.attempts < 1) {
    throw new TypeError(`retry.attempts must be an integer of 1 or more, not ${o.attempts}`);
  }
  if (!(p.baseDelayMs >= 0) || !(p.maxDelayMs >= 0) || !(p.maxRetryAfterMs >= 0)) {
    throw new TypeError("retry.baseDelayMs, retry.maxDelayMs and retry.maxRetryAfterMs must be 0 or more");
  }
  return p;
}

/**
 * backoff is the wait before try n+1 after n failed tries (n from 1):
 * `Retry-After` when the answer had one (up to maxRetryAfterMs), else a
 * random time up to base·2^(n-1) and maxDelayMs.
 */
export function backoff(p: RetryPolicy, n: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, p.maxRetryAfterMs);
  const ceil = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** Math.min(n - 1, 30));
  return Math.random() * ceil;
}

/**
 * sleep waits ms milliseconds, or rejects with the signal's reason as soon
 * as it is aborted.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** isAbort reports whether err comes from an aborted signal. */
export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  return err instanceof Error && (err.name === "AbortError" || err.name === "TimeoutError");
}
