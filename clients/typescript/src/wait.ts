import { parseRetryAfter, ProblemError, StreamUnavailableError } from "./errors.js";
import { json, type Transport } from "./http.js";
import { backoff, isAbort, sleep } from "./retry.js";
import { connect, defaultIdleTimeoutMs } from "./stream.js";
import { isTerminal, type Job, type JobEvent, PATHS } from "./types.js";

/** Options of Client.wait. */
export interface WaitOptions {
  /** Stops waiting: wait rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called for each event of the job (or each change seen by polling). */
  onEvent?: (event: JobEvent) => void;
  /** Poll `GET /v1/jobs/{id}` instead of following the event stream. Defaults to false. */
  poll?: boolean;
  /**
   * The longest pause between two polls, in milliseconds; the gateway's
   * `Retry-After` sets shorter ones. Defaults to 5000.
   */
  maxPollIntervalMs?: number;
  /** The longest silence on the stream before it is reopened. Defaults to 45000 (three heartbeats). */
  idleTimeoutMs?: number;
}

/** The pause before reconnecting when the server gave no `retry:`. */
const defaultReconnectMs = 1000;

/** The shortest pause between two tries, so that nothing spins. */
export const minPauseMs = 100;

/**
 * How long to wait, after a terminal event, for the stream to end before
 * taking the event as the end: a job replayed from the dead-letter queue
 * has more events after its terminal one, and its stream goes on.
 */
const terminalGraceMs = 1000;

/** streamRetryable reports whether a stream that failed with err may be opened again. */
export function streamRetryable(err: unknown): boolean {
  if (err instanceof StreamUnavailableError) return false;
  if (err instanceof ProblemError) {
    return [408, 429, 500, 502, 503, 504].includes(err.status);
  }
  return true; // network errors, idle streams
}

/** jobPath is the path of job id, under one of the job's paths. */
export function jobPath(template: string, id: string): string {
  if (typeof id !== "string" || id === "") throw new TypeError("a job ID is required");
  return template.replace("{id}", encodeURIComponent(id));
}

/**
 * waitFor follows job id until it ends and returns it: over its event
 * stream, resuming with Last-Event-ID after a dropped connection, or by
 * polling when the stream cannot be had.
 */
export async function waitFor(t: Transport, id: string, o: WaitOptions = {}): Promise<Job> {
  const path = jobPath(PATHS.jobEvents, id);
  if (o.poll) return pollFor(t, id, o);
  let last = "";
  let failures = 0;
  let reconnectMs = defaultReconnectMs;
  for (;;) {
    let ended: Job | undefined;
    let got = 0;
    try {
      const conn = connect(t, {
        path,
        lastEventId: last,
        signal: o.signal,
        idleTimeoutMs: o.idleTimeoutMs ?? defaultIdleTimeoutMs,
      });
      for await (const chunk of conn.chunks) {
        if (chunk.retryMs !== undefined) reconnectMs = chunk.retryMs;
        for (const m of chunk.messages) {
          const ev = toEvent(m);
          failures = 0;
          got++;
          last = m.id;
          notify(o, ev);
          if (ev.event !== "progress") ended = isTerminal(ev.job.state) ? ev.job : undefined;
        }
        if (ended) conn.endWithin(terminalGraceMs);
      }
      if (ended) return ended;
      // The stream ended before the job did: the gateway stopped and asks
      // for a reconnection, which resumes after the last event. A stream
      // that ended at once with nothing is not tried again blindly: the
      // job is looked at first.
      if (got === 0) {
        const job = await getJob(t, id, o.signal);
        if (isTerminal(job.state)) return job;
      }
      await sleep(reconnectMs, o.signal);
    } catch (err) {
      if (err instanceof CallbackError) throw err.cause;
      if (isAbort(err, o.signal)) throw o.signal?.reason ?? err;
      if (err instanceof StreamUnavailableError) return pollFor(t, id, o);
      if (!streamRetryable(err)) throw err;
      failures++;
      const after = err instanceof ProblemError ? err.retryAfterMs : undefined;
      await sleep(Math.max(backoff(t.policy, failures, after), minPauseMs), o.signal);
    }
  }
}

/** An error thrown by the caller's onEvent: wait passes it on, untouched. */
class CallbackError extends Error {
  constructor(override readonly cause: unknown) {
    super("onEvent threw");
  }
}

/** notify calls onEvent, marking what it throws as the caller's. */
function notify(o: WaitOptions, ev: JobEvent): void {
  try {
    o.onEvent?.(ev);
  } catch (err) {
    throw new CallbackError(err);
  }
}

/** toEvent reads an SSE message of a job stream. */
export function toEvent(m: { id: string; event: string; data: string }): JobEvent {
  let job: Job;
  try {
    job = JSON.parse(m.data) as Job;
  } catch {
    throw new ProblemError({
      type: "about:blank",
      title: "Bad event",
      status: 200,
      detail: `event ${m.id} (${m.event}) does not carry a job resource`,
    });
  }
  return { id: m.id || undefined, event: m.event as JobEvent["event"], job };
}

/** getJob reads job id once, with the transport's retries. */
async function getJob(t: Transport, id: string, signal?: AbortSignal): Promise<Job> {
  const resp = await t.request({ method: "GET", path: jobPath(PATHS.job, id), signal, retry: "safe" });
  return json<Job>(resp);
}

/** pollFor polls job id until it ends, pausing as its Retry-After says. */
async function pollFor(t: Transport, id: string, o: WaitOptions): Promise<Job> {
  const maxPause = o.maxPollIntervalMs ?? 5000;
  let seen = "";
  let failures = 0;
  for (;;) {
    let pause: number;
    try {
      const resp = await t.request({ method: "GET", path: jobPath(PATHS.job, id), signal: o.signal, retry: "none" });
      const job = await json<Job>(resp);
      failures = 0;
      const mark = `${job.state} ${job.updated_at} ${job.attempt}`;
      if (mark !== seen) {
        seen = mark;
        notify(o, { event: job.state, job });
      }
      if (isTerminal(job.state)) return job;
      pause = Math.min(parseRetryAfter(resp.headers.get("retry-after")) ?? 1000, maxPause);
      pause = Math.max(pause, minPauseMs);
    } catch (err) {
      if (err instanceof CallbackError) throw err.cause;
      if (isAbort(err, o.signal)) throw o.signal?.reason ?? err;
      if (!streamRetryable(err)) throw err;
      failures++;
      pause = Math.max(backoff(t.policy, failures, err instanceof ProblemError ? err.retryAfterMs : undefined), minPauseMs);
    }
    await sleep(pause, o.signal);
  }
}
