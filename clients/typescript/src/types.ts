// The client's public types. Each one is taken from the types generated
// from the gateway's OpenAPI document (src/generated/openapi.ts), so that a
// change of the document that the client does not follow breaks the build.

import type { components, paths } from "./generated/openapi.js";

type Schemas = components["schemas"];

/** A job resource, as `GET /v1/jobs/{id}`, every event and every webhook carry it. */
export type Job = Schemas["Job"];

/** A job's state: `queued`, `scheduled`, `running`, `retrying` are live; the others are terminal. */
export type JobState = Schemas["JobState"];

/** The answer to an accepted write (`202 Accepted`). */
export type Accepted = Schemas["Accepted"];

/** The body of `POST /v1/jobs`. */
export type SubmitRequest = Schemas["SubmitRequest"];

/** An RFC 9457 problem, as asyncgw answers every error. */
export type Problem = Schemas["Problem"];

/** One entry of a problem's `errors`. */
export type ProblemFieldError = NonNullable<Problem["errors"]>[number];

/** The upstream's answer recorded in a job's `result`. */
export type UpstreamResult = Schemas["Result"];

/** The body of a webhook delivery. */
export type WebhookEvent = Schemas["WebhookEvent"];

/**
 * The answer to `POST /v1/jobs/{id}/stream-token` and
 * `POST /v1/events/stream-token`. Taken from the OpenAPI document once it
 * describes the answer as `StreamToken`; until then, the contract's shape.
 */
export type StreamToken = Schemas extends { StreamToken: infer T }
  ? T
  : { token: string; expires_at: string };

/**
 * Whether each state is terminal. A `Record` over `JobState`: a state
 * added to the document or taken from it breaks the build until this
 * table says what it is.
 */
export const TERMINAL: Readonly<Record<JobState, boolean>> = Object.freeze({
  queued: false,
  scheduled: false,
  running: false,
  retrying: false,
  succeeded: true,
  failed: true,
  dead: true,
  canceled: true,
});

/** isTerminal reports whether a job in state s has ended. */
export function isTerminal(s: JobState): boolean {
  return TERMINAL[s] === true;
}

/**
 * The document's paths the client calls. Each must be a key of the
 * generated `paths`, so that a path renamed or removed in the document
 * breaks the build.
 */
export const PATHS = {
  jobs: "/v1/jobs",
  job: "/v1/jobs/{id}",
  result: "/v1/jobs/{id}/result",
  jobEvents: "/v1/jobs/{id}/events",
  events: "/v1/events",
} as const satisfies Record<string, keyof paths>;

/** One event of a job's or the tenant's stream. */
export interface JobEvent {
  /**
   * The event's `id:`: where the stream stands, to resume from with
   * `lastEventId`. Absent on a state seen by polling.
   */
  id?: string;
  /** The event's kind: the job's new state, or `progress`. */
  event: JobState | "progress";
  /** The job resource at that moment. */
  job: Job;
}
