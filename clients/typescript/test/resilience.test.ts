// The client when things go wrong between it and a real gateway: a submit
// answered 503, a submit whose answer is lost, a gateway that restarts
// during a submit and during a wait, and a path on which no event stream
// can be had.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Client, type FetchLike, type JobEvent } from "@asyncgw/client";

import { closeServer, type Env, Proxy, type ProxyAction, startEnv, waitUntil } from "./harness.js";

describe("client resilience against a real gateway", { timeout: 120_000 }, () => {
  let env: Env;
  let client: Client;
  const fast = { attempts: 30, baseDelayMs: 50, maxDelayMs: 500 };

  before(async () => {
    env = await startEnv();
    client = new Client({ baseUrl: env.baseUrl, apiKey: env.apiKey, retry: fast });
  });
  after(async () => {
    await env?.close();
  });

  /** proxied starts a proxy to the gateway and a client that goes through it. */
  async function proxied(decide: (r: Parameters<ConstructorParameters<typeof Proxy>[1]>[0]) => ProxyAction) {
    const proxy = new Proxy(env.baseUrl, decide);
    await proxy.start();
    return { proxy, client: new Client({ baseUrl: proxy.url, apiKey: env.apiKey, retry: fast }) };
  }

  it("retries a submit answered 503, honouring Retry-After, with the same Idempotency-Key", async () => {
    let posts = 0;
    const { proxy, client: c } = await proxied((r) =>
      r.method === "POST" && ++posts === 1
        ? {
            kind: "answer",
            status: 503,
            headers: { "Content-Type": "application/problem+json", "Retry-After": "1" },
            body: JSON.stringify({ type: "https://asyncgw.dev/problems/unavailable", title: "Service Unavailable", status: 503 }),
          }
        : { kind: "forward" },
    );
    try {
      const started = Date.now();
      const sub = await c.submit("/v1/orders/r-1", { mark: "retry-503" });
      assert.ok(Date.now() - started >= 900, "the retry came before Retry-After");
      const postsSeen = proxy.seen.filter((r) => r.method === "POST");
      assert.equal(postsSeen.length, 2);
      const key = postsSeen[0]!.headers["idempotency-key"];
      assert.ok(key, "the submit carried an Idempotency-Key");
      assert.equal(postsSeen[1]!.headers["idempotency-key"], key);
      assert.equal(sub.replayed, false);
      assert.equal((await client.wait(sub.id, { signal: AbortSignal.timeout(30_000) })).state, "succeeded");
      assert.equal(env.upstream.callsWith("retry-503").length, 1);
    } finally {
      await closeServer(proxy.server);
    }
  });

  it("retries a submit whose answer was lost and gets the job it made, not a second one", async () => {
    let posts = 0;
    const { proxy, client: c } = await proxied((r) =>
      r.method === "POST" && ++posts === 1 ? { kind: "drop-answer" } : { kind: "forward" },
    );
    try {
      const sub = await c.submit("/v1/orders/r-2", { mark: "lost-answer" });
      const postsSeen = proxy.seen.filter((r) => r.method === "POST");
      assert.equal(postsSeen.length, 2);
      assert.equal(postsSeen[0]!.answer?.status, 202, "the first try reached the gateway");
      const first = JSON.parse(postsSeen[0]!.answer!.body) as { id: string };
      assert.equal(sub.id, first.id, "the retry answered the job the first try made");
      assert.equal(sub.replayed, true);
      assert.equal(postsSeen[1]!.headers["idempotency-key"], postsSeen[0]!.headers["idempotency-key"]);
      assert.equal((await client.wait(sub.id, { signal: AbortSignal.timeout(30_000) })).state, "succeeded");
      assert.equal(env.upstream.callsWith("lost-answer").length, 1, "the upstream was called once");
    } finally {
      await closeServer(proxy.server);
    }
  });

  it("retries a submit while the gateway restarts", async () => {
    let submitting: Promise<unknown> | undefined;
    const tries: string[] = [];
    const counting: FetchLike = (input, init) => {
      tries.push(`${init.method} ${input}`);
      return fetch(input, init);
    };
    const c = new Client({ baseUrl: env.baseUrl, apiKey: env.apiKey, retry: fast, fetch: counting });
    await env.restartGateway(async () => {
      submitting = c.submit("/v1/orders/r-3", { mark: "restart-submit" });
      submitting.catch(() => {});
      await waitUntil("a refused try", 10_000, () => tries.length >= 2);
    });
    const sub = (await submitting) as { id: string };
    assert.equal((await client.wait(sub.id, { signal: AbortSignal.timeout(30_000) })).state, "succeeded");
    assert.equal(env.upstream.callsWith("restart-submit").length, 1);
  });

  it("waits across a gateway restart, resuming with Last-Event-ID", async () => {
    const streams: (string | null)[] = [];
    const recording: FetchLike = (input, init) => {
      if (input.endsWith("/events")) streams.push(new Headers(init.headers).get("last-event-id"));
      return fetch(input, init);
    };
    const c = new Client({ baseUrl: env.baseUrl, apiKey: env.apiKey, retry: fast, fetch: recording });
    const sub = await c.submit("/v1/orders/r-4", { mark: "restart-wait", hold: "restart-wait" });
    const events: JobEvent[] = [];
    const waiting = c.wait(sub.id, { onEvent: (e) => events.push(e), signal: AbortSignal.timeout(60_000) });
    waiting.catch(() => {});
    await waitUntil("the running event", 30_000, () => events.some((e) => e.event === "running"));

    await env.restartGateway();
    // The job ends after the restart, and only the new gateway can tell.
    env.upstream.release("restart-wait");
    const job = await waiting;
    assert.equal(job.state, "succeeded");
    assert.deepEqual(
      events.map((e) => `${e.id} ${e.event}`),
      ["1 queued", "2 running", "3 succeeded"],
      "every event once, in order",
    );
    assert.equal(streams[0], null);
    assert.ok(streams.length >= 2, `one stream only: ${JSON.stringify(streams)}`);
    assert.ok(streams.slice(1).every((id) => id === "2"), `resumed with ${JSON.stringify(streams)}`);
  });

  it("falls back to polling when no event stream can be had", async () => {
    const { proxy, client: c } = await proxied((r) =>
      r.path.endsWith("/events")
        ? { kind: "answer", status: 200, headers: { "Content-Type": "text/html" }, body: "<html>streaming is not allowed here</html>" }
        : { kind: "forward" },
    );
    try {
      const sub = await c.submit("/v1/orders/r-5", { mark: "polling", hold: "polling" });
      const events: JobEvent[] = [];
      const waiting = c.wait(sub.id, { onEvent: (e) => events.push(e), maxPollIntervalMs: 200, signal: AbortSignal.timeout(30_000) });
      waiting.catch(() => {});
      await waitUntil("a poll", 10_000, () => proxy.seen.some((r) => r.method === "GET" && r.path === `/v1/jobs/${sub.id}`));
      env.upstream.release("polling");
      const job = await waiting;
      assert.equal(job.state, "succeeded");
      assert.equal(events[events.length - 1]?.event, "succeeded");
      assert.ok(events.every((e) => e.id === undefined), "polled states carry no event id");
      assert.equal(proxy.seen.filter((r) => r.path.endsWith("/events")).length, 1, "the stream was tried once");
      assert.ok(proxy.seen.filter((r) => r.path === `/v1/jobs/${sub.id}`).length >= 2, "polled more than once");
    } finally {
      await closeServer(proxy.server);
    }
  });

  it("stops waiting when its signal is aborted", async () => {
    const sub = await client.submit("/v1/orders/r-6", { mark: "abort", hold: "abort" });
    const ctl = new AbortController();
    const waiting = client.wait(sub.id, { signal: ctl.signal });
    ctl.abort(new Error("enough"));
    await assert.rejects(waiting, /enough/);
    env.upstream.release("abort");
    assert.equal((await client.wait(sub.id, { signal: AbortSignal.timeout(30_000) })).state, "succeeded");
  });
});
