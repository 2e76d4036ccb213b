import type { Problem, ProblemFieldError } from "./types.js";

/** The prefix of the `type` of asyncgw's own problems. */
const problemBase = "https://asyncgw.dev/problems/";

/**
 * An error answer of the gateway: the fields of its problem+json body
 * (RFC 9457), the HTTP status and the headers that came with it. Check
 * `slug` (such as `not-found`, `validation`, `job-ended`) to tell kinds of
 * problem apart.
 */
export class ProblemError extends Error {
  override readonly name = "ProblemError";
  /** The problem's `type`, a URI. */
  readonly type: string;
  /** The status's reason phrase. */
  readonly title: string;
  /** The HTTP status. */
  readonly status: number;
  /** What went wrong, for people. */
  readonly detail: string | undefined;
  /** For invalid input: one entry per problem, each with a JSON pointer. */
  readonly errors: ProblemFieldError[];
  /** The last segment of `type` (`not-found`, `validation`, …). */
  readonly slug: string;
  /** `X-Request-ID` of the answer, to find it in the gateway's log. */
  readonly requestId: string | undefined;
  /** `Retry-After` of the answer in milliseconds, when it had one. */
  readonly retryAfterMs: number | undefined;
  /** The whole problem as it came, members beyond RFC 9457's included. */
  readonly problem: Problem;

  constructor(problem: Problem, headers?: Headers) {
    super(message(problem));
    this.problem = problem;
    this.type = problem.type;
    this.title = problem.title;
    this.status = problem.status;
    this.detail = problem.detail;
    this.errors = problem.errors ?? [];
    this.slug = problem.type.startsWith(problemBase)
      ? problem.type.slice(problemBase.length)
      : problem.type;
    this.requestId = headers?.get("x-request-id") ?? undefined;
    this.retryAfterMs = headers ? parseRetryAfter(headers.get("retry-after")) : undefined;
  }
}

/** message says what problem is in one line: status, title, detail and the field errors. */
function message(problem: Problem): string {
  let m = `${problem.status} ${problem.title}`;
  if (problem.detail) m += `: ${problem.detail}`;
  for (const e of problem.errors ?? []) {
    const at = "pointer" in e ? e.pointer : `?${e.parameter}`;
    m += `; ${at || "(body)"}: ${e.detail}`;
  }
  return m;
}

/**
 * problemFrom reads an error answer as a ProblemError. An answer that is
 * not problem+json (say a proxy's HTML page) becomes a problem of type
 * `about:blank` with the status and the start of the body as its detail.
 */
export async function problemFrom(resp: Response): Promise<ProblemError> {
  const text = await resp.text().catch(() => "");
  const ct = resp.headers.get("content-type") ?? "";
  if (/json/i.test(ct)) {
    try {
      const p = JSON.parse(text) as Partial<Problem>;
      if (p && typeof p === "object" && typeof p.type === "string") {
        return new ProblemError(
          {
            ...p,
            type: p.type,
            title: typeof p.title === "string" ? p.title : resp.statusText,
            status: typeof p.status === "number" ? p.status : resp.status,
          } as Problem,
          resp.headers,
        );
      }
    } catch {
      // not JSON after all: described below
    }
  }
  return new ProblemError(
    {
      type: "about:blank",
      title: resp.statusText || `HTTP ${resp.status}`,
      status: resp.status,
      detail: text.slice(0, 200) || undefined,
    },
    resp.headers,
  );
}

/**
 * parseRetryAfter reads a Retry-After value (seconds or an HTTP date) as
 * milliseconds from now; undefined when there is none or it is malformed.
 */
export function parseRetryAfter(v: string | null): number | undefined {
  if (v === null) return undefined;
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const at = Date.parse(s);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - Date.now());
}

/** A webhook delivery that does not verify: bad signature, headers or timestamp. */
export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";
}

/**
 * The gateway gave no event stream where one was asked for (an
 * intermediary answered something else, or the platform's fetch cannot
 * read a body as a stream).
 */
export class StreamUnavailableError extends Error {
  override readonly name = "StreamUnavailableError";
}
