/**
 * @asyncgw/client: submit writes to an asyncgw gateway as jobs, follow
 * them over Server-Sent Events (with resume and a polling fallback), and
 * verify the gateway's signed webhooks. No dependencies: the platform's
 * fetch, crypto.subtle and TextDecoder, in Node 20+ and browsers.
 *
 * @example
 * const client = new Client({ baseUrl: "https://gw.example.com", apiKey });
 * const job = await client.submit("/v1/orders", { sku: "A-1" });
 * const done = await client.wait(job.id);
 */

export {
  Client,
  type ClientOptions,
  type JobResult,
  type RequestOptions,
  type StreamTokenGrant,
  type SubmitOptions,
  type Submitted,
} from "./client.js";
export { ProblemError, StreamUnavailableError, WebhookVerificationError, parseRetryAfter } from "./errors.js";
export type { EventsOptions } from "./events.js";
export type { FetchLike } from "./http.js";
export type { RetryOptions } from "./retry.js";
export { SSEParser, type SSEChunk, type SSEMessage } from "./sse.js";
export {
  type Accepted,
  type Job,
  type JobEvent,
  type JobState,
  type Problem,
  type ProblemFieldError,
  type StreamToken,
  type SubmitRequest,
  type UpstreamResult,
  type WebhookEvent,
  TERMINAL,
  isTerminal,
} from "./types.js";
export type { WaitOptions } from "./wait.js";
export { type HeadersLike, type VerifyOptions, verifyWebhook } from "./webhook.js";
