import { ProblemError, problemFrom } from "./errors.js";
import { backoff, isAbort, type RetryPolicy, sleep } from "./retry.js";

/** The fetch the client calls: the platform's, or one the caller gives. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** When a request is tried again. */
export type RetryMode =
  /** never */
  | "none"
  /** after a network error, 429, 502, 503 or 504: for reads and for writes that carry an Idempotency-Key */
  | "safe"
  /** only after 429 and 503, which say that nothing was done */
  | "refused";

/** One request to the gateway. */
export interface RequestSpec {
  method: string;
  /** The path, with its query, under the base URL. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
  retry: RetryMode;
}

/** Transport sends requests to one gateway with one API key. */
export class Transport {
  readonly baseUrl: string;
  readonly fetch: FetchLike;
  readonly policy: RetryPolicy;
  private readonly apiKey: string | undefined;

  constructor(baseUrl: string, apiKey: string | undefined, fetchFn: FetchLike | undefined, policy: RetryPolicy) {
    let u: URL;
    try {
      u = new URL(baseUrl);
    } catch {
      throw new TypeError(`baseUrl must be an absolute http(s) URL, not ${JSON.stringify(baseUrl)}`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new TypeError(`baseUrl must be an http or https URL, not ${JSON.stringify(baseUrl)}`);
    }
    this.baseUrl = u.href.replace(/\/+$/, "");
    this.apiKey = apiKey || undefined;
    this.fetch = fetchFn ?? ((input, init) => globalThis.fetch(input, init));
    this.policy = policy;
  }

  /** url is the absolute URL of path (which starts with `/`). */
  url(path: string): string {
    return this.baseUrl + path;
  }

  /** headers are the headers every request carries, plus extra. */
  headers(extra?: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.apiKey) h["Authorization"] = `Bearer ${this.apiKey}`;
    return h;
  }

  /**
   * request sends spec and returns a 2xx answer, trying again as
   * spec.retry allows. Any other answer is thrown as a ProblemError; a
   * network error, after the last try, as it came.
   */
  async request(spec: RequestSpec): Promise<Response> {
    const resp = await this.send(spec);
    if (resp.ok) return resp;
    throw await problemFrom(resp);
  }

  /**
   * send is request without the check of the final answer's status: the
   * last answer is returned whatever it is, except that a retryable answer
   * that is not retried after all (a 409 other than
   * idempotency-key-in-use, a Retry-After beyond maxRetryAfterMs) is
   * thrown as a ProblemError, its body having been read.
   */
  async send(spec: RequestSpec): Promise<Response> {
    const attempts = spec.retry === "none" ? 1 : this.policy.attempts;
    for (let n = 1; ; n++) {
      let resp: Response;
      try {
        resp = await this.fetch(this.url(spec.path), {
          method: spec.method,
          headers: this.headers(spec.headers),
          body: spec.body as BodyInit | undefined,
          signal: spec.signal,
          redirect: "manual",
        });
      } catch (err) {
        if (isAbort(err, spec.signal) || spec.retry !== "safe" || n >= attempts) throw err;
        await sleep(backoff(this.policy, n), spec.signal);
        continue;
      }
      if (n >= attempts || !retryable(spec.retry, resp.status)) return resp;
      const p = await problemFrom(resp);
      if (resp.status === 409 && p.slug !== "idempotency-key-in-use") throw p;
      // An answer that asks for a longer wait than the policy allows is
      // the caller's to handle.
      if (p.retryAfterMs !== undefined && p.retryAfterMs > this.policy.maxRetryAfterMs) throw p;
      await sleep(backoff(this.policy, n, p.retryAfterMs), spec.signal);
    }
  }
}

/** retryable reports whether an answer with status may be tried again under mode. */
function retryable(mode: RetryMode, status: number): boolean {
  switch (mode) {
    case "none":
      return false;
    case "refused":
      return status === 429 || status === 503;
    case "safe":
      // 409 only as idempotency-key-in-use, which send checks.
      return status === 409 || status === 429 || status === 502 || status === 503 || status === 504;
  }
}

/** json reads a 2xx answer's body as JSON. */
export async function json<T>(resp: Response): Promise<T> {
  const text = await resp.text();
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ProblemError({
      type: "about:blank",
      title: "Bad answer",
      status: resp.status,
      detail: `the gateway's answer is not JSON: ${text.slice(0, 100)}`,
    });
  }
}
