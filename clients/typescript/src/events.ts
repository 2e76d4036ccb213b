import { ProblemError } from "./errors.js";
import type { Transport } from "./http.js";
import { backoff, isAbort, sleep } from "./retry.js";
import { connect, defaultIdleTimeoutMs } from "./stream.js";
import { type JobEvent, PATHS } from "./types.js";
import { minPauseMs, streamRetryable, toEvent } from "./wait.js";

/** Options of Client.events. */
export interface EventsOptions {
  /** Ends the iteration (quietly: the loop just stops). */
  signal?: AbortSignal;
  /**
   * Resume after this event (the `id` of the last event handled): the
   * events since then come first. Without it, the stream is live from the
   * moment it opens.
   */
  lastEventId?: string;
  /** The longest silence on the stream before it is reopened. Defaults to 45000 (three heartbeats). */
  idleTimeoutMs?: number;
}

/** The pause before reconnecting when the server gave no `retry:`. */
const defaultReconnectMs = 1000;

/**
 * followEvents iterates over the tenant's stream of job events, for as
 * long as the caller goes on: a dropped connection is opened again with
 * `Last-Event-ID`, so no event is missed nor repeated. A problem that
 * retrying cannot mend (401, a bad `lastEventId`) is thrown, as is a
 * gateway that gives no event stream.
 */
export async function* followEvents(t: Transport, o: EventsOptions = {}): AsyncGenerator<JobEvent, void, undefined> {
  let last = o.lastEventId ?? "";
  let failures = 0;
  let reconnectMs = defaultReconnectMs;
  while (!o.signal?.aborted) {
    try {
      const conn = connect(t, {
        path: PATHS.events,
        lastEventId: last,
        signal: o.signal,
        idleTimeoutMs: o.idleTimeoutMs ?? defaultIdleTimeoutMs,
      });
      for await (const chunk of conn.chunks) {
        if (chunk.retryMs !== undefined) reconnectMs = chunk.retryMs;
        for (const m of chunk.messages) {
          const ev = toEvent(m);
          failures = 0;
          last = m.id;
          yield ev;
        }
      }
      await sleep(reconnectMs, o.signal);
    } catch (err) {
      if (isAbort(err, o.signal)) return;
      if (!streamRetryable(err)) throw err;
      failures++;
      const after = err instanceof ProblemError ? err.retryAfterMs : undefined;
      try {
        await sleep(Math.max(backoff(t.policy, failures, after), minPauseMs), o.signal);
      } catch {
        return;
      }
    }
  }
}
