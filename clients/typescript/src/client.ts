import { problemFrom } from "./errors.js";
import { type EventsOptions, followEvents } from "./events.js";
import { type FetchLike, json, Transport } from "./http.js";
import { retryPolicy, type RetryOptions } from "./retry.js";
import {
  type Accepted,
  type Job,
  type JobEvent,
  type JobState,
  PATHS,
  type StreamToken,
  type SubmitRequest,
} from "./types.js";
import { jobPath, waitFor, type WaitOptions } from "./wait.js";

/** Options of new Client. */
export interface ClientOptions {
  /** The gateway's base URL, such as `https://api.example.com`; a path prefix is kept. */
  baseUrl: string;
  /** The API key, sent as `Authorization: Bearer`. Leave it out when auth is off. */
  apiKey?: string;
  /** The fetch to use. Defaults to the platform's `fetch`. */
  fetch?: FetchLike;
  /** How submits and reads are retried after 429, 503 and network errors. */
  retry?: RetryOptions;
}

/** Options of Client.submit. */
export interface SubmitOptions {
  /**
   * The `Idempotency-Key`: printable ASCII, up to 255 characters. Defaults
   * to a fresh random UUID. Every retry of the submit reuses it, so that a
   * retry never makes a second job; pass your own to make a submit safe
   * to repeat across restarts of your program too.
   */
  idempotencyKey?: string;
  /** `X-Priority`: `critical`, `default`, `low`, or a queue the route allows. */
  priority?: string;
  /** `X-Callback-URL`: where the job's webhooks go. */
  callbackUrl?: string;
  /** The body's content type for a route. Defaults to `application/json`. */
  contentType?: string;
  /** More headers to send. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** What submit returns: the `202` answer, and how it came. */
export interface Submitted extends Accepted {
  /** The Idempotency-Key the submit was sent with. */
  idempotencyKey: string;
  /** True when the gateway had the job already (`Idempotent-Replayed: true`). */
  replayed: boolean;
}

/** Options of the reads (get, result, cancel, stream tokens). */
export interface RequestOptions {
  signal?: AbortSignal;
}

/** The upstream's answer to a job, as it came (`GET /v1/jobs/{id}/result`). */
export interface JobResult {
  /** The upstream's status, whatever it is. */
  status: number;
  /** The upstream's headers (connection headers aside). */
  headers: Headers;
  /** The job's state (`X-Asyncgw-Job-State`). */
  state: JobState;
  /** The body, byte for byte. */
  body: Uint8Array;
  /** text decodes the body as UTF-8. */
  text(): string;
  /** json parses the body as JSON. */
  json<T = unknown>(): T;
}

/** A stream token, with the URL a browser's `EventSource` opens with it. */
export interface StreamTokenGrant extends StreamToken {
  /** The stream's absolute URL with `?token=`. */
  url: string;
}

/**
 * Client talks to one asyncgw gateway as one tenant: it submits writes as
 * jobs and follows them. Its methods reject with a ProblemError when the
 * gateway answers an error.
 */
export class Client {
  private readonly t: Transport;

  constructor(options: ClientOptions) {
    if (!options || typeof options.baseUrl !== "string") throw new TypeError("new Client: baseUrl is required");
    this.t = new Transport(options.baseUrl, options.apiKey, options.fetch, retryPolicy(options.retry));
  }

  /**
   * submit sends a write to a configured route (`path` and its body), or a
   * job to `POST /v1/jobs` (`{type, payload, …}`), and returns the `202`
   * answer. It always sends an `Idempotency-Key` and retries after 429,
   * 502, 503, 504 and network errors with the same key, waiting as
   * `Retry-After` says: a retry never makes a second job.
   */
  submit(path: string, body: unknown, options?: SubmitOptions): Promise<Submitted>;
  submit(job: SubmitRequest, options?: SubmitOptions): Promise<Submitted>;
  async submit(
    target: string | SubmitRequest,
    bodyOrOptions?: unknown,
    maybeOptions?: SubmitOptions,
  ): Promise<Submitted> {
    let path: string;
    let body: string | Uint8Array;
    let o: SubmitOptions;
    const headers: Record<string, string> = {};
    if (typeof target === "string") {
      if (!target.startsWith("/")) throw new TypeError(`submit: the path must start with "/", not ${JSON.stringify(target)}`);
      path = target;
      o = maybeOptions ?? {};
      const b = bodyOrOptions;
      body = typeof b === "string" || b instanceof Uint8Array ? b : JSON.stringify(b ?? null);
      headers["Content-Type"] = o.contentType ?? "application/json";
    } else {
      if (!target || typeof target.type !== "string") throw new TypeError("submit: a job needs a type");
      path = PATHS.jobs;
      o = (bodyOrOptions as SubmitOptions | undefined) ?? {};
      body = JSON.stringify(target);
      headers["Content-Type"] = "application/json";
    }
    const key = o.idempotencyKey ?? globalThis.crypto.randomUUID();
    headers["Idempotency-Key"] = sfString(key);
    if (o.priority !== undefined) headers["X-Priority"] = o.priority;
    if (o.callbackUrl !== undefined) headers["X-Callback-URL"] = o.callbackUrl;
    const resp = await this.t.request({
      method: "POST",
      path,
      headers: { ...o.headers, ...headers },
      body,
      signal: o.signal,
      retry: "safe",
    });
    const accepted = await json<Accepted>(resp);
    return {
      ...accepted,
      idempotencyKey: key,
      replayed: resp.headers.get("idempotent-replayed") === "true",
    };
  }

  /** get returns job id (`GET /v1/jobs/{id}`). */
  async get(id: string, options: RequestOptions = {}): Promise<Job> {
    const resp = await this.t.request({ method: "GET", path: jobPath(PATHS.job, id), signal: options.signal, retry: "safe" });
    return json<Job>(resp);
  }

  /**
   * result returns the upstream's answer to job id as it came, whatever
   * its status. Before the job has ended, or when it ended without an
   * answer, it rejects with a ProblemError (`404`, slug `no-result`).
   */
  async result(id: string, options: RequestOptions = {}): Promise<JobResult> {
    const resp = await this.t.send({ method: "GET", path: jobPath(PATHS.result, id), signal: options.signal, retry: "safe" });
    const state = resp.headers.get("x-asyncgw-job-state");
    if (state === null) {
      // asyncgw's own answer: an error, or a gateway too old to say
      if (!resp.ok) throw await problemFrom(resp);
    }
    const body = new Uint8Array(await resp.arrayBuffer());
    return {
      status: resp.status,
      headers: resp.headers,
      state: (state ?? "succeeded") as JobState,
      body,
      text: () => new TextDecoder().decode(body),
      json: <T>() => JSON.parse(new TextDecoder().decode(body)) as T,
    };
  }

  /** cancel cancels a live job and returns it, `canceled`; a job that has ended is a `409` (`job-ended`). */
  async cancel(id: string, options: RequestOptions = {}): Promise<Job> {
    const resp = await this.t.request({ method: "DELETE", path: jobPath(PATHS.job, id), signal: options.signal, retry: "refused" });
    return json<Job>(resp);
  }

  /**
   * wait follows job id until it ends and returns it. It follows the job's
   * event stream, reconnects with `Last-Event-ID` after a dropped
   * connection (a gateway restart included) and polls instead when no
   * event stream can be had. It rejects with the signal's reason when
   * options.signal is aborted.
   */
  wait(id: string, options: WaitOptions = {}): Promise<Job> {
    return waitFor(this.t, id, options);
  }

  /**
   * events iterates over every event of the tenant's jobs, live, resuming
   * after `lastEventId` when given and after every dropped connection.
   * It goes on until the loop breaks or the signal is aborted.
   */
  events(options: EventsOptions = {}): AsyncGenerator<JobEvent, void, undefined> {
    return followEvents(this.t, options);
  }

  /**
   * streamToken gets a short-lived token that opens job id's event stream
   * without the API key (`POST /v1/jobs/{id}/stream-token`), for a
   * browser's `EventSource`: `new EventSource(grant.url)`.
   */
  async streamToken(id: string, options: RequestOptions = {}): Promise<StreamTokenGrant> {
    const events = jobPath(PATHS.jobEvents, id);
    return this.token(`${jobPath(PATHS.job, id)}/stream-token`, events, options);
  }

  /** eventsStreamToken is streamToken for the tenant's stream (`POST /v1/events/stream-token`). */
  async eventsStreamToken(options: RequestOptions = {}): Promise<StreamTokenGrant> {
    return this.token(`${PATHS.events}/stream-token`, PATHS.events, options);
  }

  private async token(path: string, stream: string, options: RequestOptions): Promise<StreamTokenGrant> {
    const resp = await this.t.request({ method: "POST", path, signal: options.signal, retry: "refused" });
    const tok = await json<StreamToken>(resp);
    if (typeof tok?.token !== "string" || tok.token === "") {
      throw new TypeError(`POST ${path} answered without a token`);
    }
    return { ...tok, url: `${this.t.url(stream)}?token=${encodeURIComponent(tok.token)}` };
  }
}

/**
 * sfString writes key as an RFC 8941 string, the form the Idempotency-Key
 * header takes; a key that cannot be one is refused.
 */
function sfString(key: string): string {
  if (typeof key !== "string" || key.length === 0 || key.length > 255 || !/^[\x20-\x7e]+$/.test(key)) {
    throw new TypeError("idempotencyKey must be 1 to 255 printable ASCII characters");
  }
  return `"${key.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
