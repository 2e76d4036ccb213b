import { problemFrom, StreamUnavailableError } from "./errors.js";
import type { Transport } from "./http.js";
import { type SSEChunk, SSEParser } from "./sse.js";

/** The longest silence on a stream before it is taken as dead, by default: three heartbeats. */
export const defaultIdleTimeoutMs = 45_000;

/** The silence that ended a stream; the caller reconnects. */
export class IdleTimeoutError extends Error {
  override readonly name = "IdleTimeoutError";
}

/** One connection to an event stream. */
export interface Connection {
  /** The chunks of events as they come; it ends when the server closes the stream. */
  chunks: AsyncGenerator<SSEChunk, void, undefined>;
  /**
   * endWithin ends the stream quietly (as if the server had closed it)
   * when nothing more comes within ms.
   */
  endWithin(ms: number): void;
}

/** What connect needs. */
export interface ConnectOptions {
  /** The stream's path under the base URL. */
  path: string;
  /** Sent as `Last-Event-ID` when not empty. */
  lastEventId?: string;
  signal?: AbortSignal;
  idleTimeoutMs: number;
}

/**
 * connect opens an event stream. An error answer is thrown as a
 * ProblemError, an answer that is not an event stream as a
 * StreamUnavailableError, a stream silent for longer than idleTimeoutMs as
 * an IdleTimeoutError. Leaving the generator closes the connection.
 */
export function connect(t: Transport, o: ConnectOptions): Connection {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(o.signal?.reason);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let quiet = false; // the timer ends the stream without an error
  let fired = false;
  const arm = (ms: number) => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      fired = true;
      ctl.abort(new IdleTimeoutError(`no data on the event stream for ${ms} ms`));
    }, ms);
  };

  async function* chunks(): AsyncGenerator<SSEChunk, void, undefined> {
    if (o.signal?.aborted) throw o.signal.reason;
    o.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      arm(o.idleTimeoutMs);
      const headers: Record<string, string> = {
        Accept: "text/event-stream",
        "Cache-Control": "no-cache",
      };
      if (o.lastEventId) headers["Last-Event-ID"] = o.lastEventId;
      let resp: Response;
      try {
        resp = await t.fetch(t.url(o.path), {
          method: "GET",
          headers: t.headers(headers),
          signal: ctl.signal,
          redirect: "manual",
        });
      } catch (err) {
        throw fired && !quiet ? ctl.signal.reason : err;
      }
      if (!resp.ok) throw await problemFrom(resp);
      const ct = (resp.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (ct !== "text/event-stream" || !resp.body) {
        await resp.body?.cancel().catch(() => {});
        throw new StreamUnavailableError(
          `GET ${o.path} answered ${resp.status} ${ct || "without a content type"}, not an event stream`,
        );
      }
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      const parser = new SSEParser(o.lastEventId);
      try {
        for (;;) {
          let r: ReadableStreamReadResult<Uint8Array>;
          try {
            r = await reader.read();
          } catch (err) {
            if (fired && quiet) return;
            throw fired ? ctl.signal.reason : err;
          }
          // At the end, an event not closed by a blank line is dropped,
          // as the standard says.
          if (r.done) return;
          if (!quiet) arm(o.idleTimeoutMs);
          const chunk = parser.feed(decoder.decode(r.value, { stream: true }));
          if (chunk.messages.length > 0 || chunk.retryMs !== undefined || chunk.comments > 0) {
            yield chunk;
          }
        }
      } finally {
        reader.cancel().catch(() => {});
      }
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      ctl.abort();
    }
  }

  return {
    chunks: chunks(),
    endWithin(ms: number) {
      quiet = true;
      arm(ms);
    },
  };
}
