// Stream tokens: an API-key holder gets a token, and the stream opens
// with ?token= alone, as a browser's EventSource would open it. These need
// the gateway's POST /v1/jobs/{id}/stream-token and POST
// /v1/events/stream-token; a gateway without them fails here, by name.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Client, ProblemError, type SSEMessage, SSEParser, type StreamTokenGrant } from "@asyncgw/client";

import { type Env, startEnv, waitUntil } from "./harness.js";

/** grant gets a token, failing with a clear message when the gateway has no such endpoint. */
async function grant(what: string, get: () => Promise<StreamTokenGrant>): Promise<StreamTokenGrant> {
  try {
    return await get();
  } catch (err) {
    if (err instanceof ProblemError && (err.status === 404 || err.status === 405)) {
      assert.fail(
        `the gateway has no ${what} endpoint (it answered ${err.message}); these tests need a gateway with stream tokens`,
      );
    }
    throw err;
  }
}

/** follow reads the stream at url without an API key, until stop says so or the stream ends. */
async function follow(url: string, stop: (m: SSEMessage) => boolean, onOpen?: () => void): Promise<SSEMessage[]> {
  const resp = await fetch(url, { headers: { Accept: "text/event-stream" }, signal: AbortSignal.timeout(30_000) });
  assert.equal(resp.status, 200, `GET ${new URL(url).pathname}?token=… answered ${resp.status}: ${resp.status === 200 ? "" : await resp.text()}`);
  assert.match(resp.headers.get("content-type") ?? "", /^text\/event-stream/);
  onOpen?.();
  const parser = new SSEParser();
  const decoder = new TextDecoder();
  const got: SSEMessage[] = [];
  const reader = resp.body!.getReader();
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return got;
      for (const m of parser.feed(decoder.decode(r.value, { stream: true })).messages) {
        got.push(m);
        if (stop(m)) return got;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

describe("stream tokens", { timeout: 120_000 }, () => {
  let env: Env;
  let client: Client;

  before(async () => {
    env = await startEnv();
    client = new Client({ baseUrl: env.baseUrl, apiKey: env.apiKey });
  });
  after(async () => {
    await env?.close();
  });

  it("opens a job's stream with the job's token and no API key", async () => {
    const sub = await client.submit("/v1/orders/t-1", { mark: "token-job", hold: "token-job" });
    const g = await grant("POST /v1/jobs/{id}/stream-token", () => client.streamToken(sub.id));
    assert.ok(g.token.length > 0);
    assert.ok(Date.parse(g.expires_at) > Date.now(), `expires_at ${g.expires_at} is not in the future`);
    assert.equal(new URL(g.url).pathname, `/v1/jobs/${sub.id}/events`);
    assert.equal(new URL(g.url).searchParams.get("token"), g.token);

    const noToken = await fetch(`${env.baseUrl}/v1/jobs/${sub.id}/events`);
    assert.equal(noToken.status, 401);
    await noToken.body?.cancel();

    const events = await follow(g.url, () => false, () => env.upstream.release("token-job"));
    assert.deepEqual(
      events.map((m) => m.event),
      ["queued", "running", "succeeded"],
    );
    assert.equal((JSON.parse(events[2]!.data) as { id: string }).id, sub.id);

    const other = await client.submit("/v1/orders/t-2", { mark: "token-other" });
    const elsewhere = await fetch(`${env.baseUrl}/v1/jobs/${other.id}/events?token=${encodeURIComponent(g.token)}`);
    assert.ok(elsewhere.status === 401 || elsewhere.status === 403 || elsewhere.status === 404, `another job's stream answered ${elsewhere.status}`);
    await elsewhere.body?.cancel();
  });

  it("opens the tenant's stream with an events token and no API key", async () => {
    const g = await grant("POST /v1/events/stream-token", () => client.eventsStreamToken());
    assert.equal(new URL(g.url).pathname, "/v1/events");
    let id = "";
    const events = await follow(
      g.url,
      (m) => id !== "" && m.event === "succeeded" && m.data.includes(id),
      () => {
        void client.submit("/v1/orders/t-3", { mark: "token-events" }).then((s) => (id = s.id));
      },
    );
    await waitUntil("the submit", 10_000, () => id !== "");
    assert.deepEqual(
      events.filter((m) => m.data.includes(id)).map((m) => m.event),
      ["queued", "running", "succeeded"],
    );
  });
});
