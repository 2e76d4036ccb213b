// The client against a real gateway, worker and Redis: submit and wait,
// reads, cancel, problems, the tenant stream with resume, and webhook
// verification of real deliveries.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Client, type JobEvent, ProblemError, verifyWebhook, WebhookVerificationError } from "@asyncgw/client";

import { type Env, startEnv, waitUntil } from "./harness.js";

describe("client against a real gateway", { timeout: 120_000 }, () => {
  let env: Env;
  let client: Client;

  before(async () => {
    env = await startEnv();
    client = new Client({ baseUrl: env.baseUrl, apiKey: env.apiKey });
  });
  after(async () => {
    await env?.close();
  });

  it("submits to a route and waits for the job to succeed", async () => {
    const events: JobEvent[] = [];
    const sub = await client.submit("/v1/orders/c-1", { sku: "A-1", mark: "submit-wait" });
    assert.match(sub.id, /^[a-z2-7]{26}$/);
    assert.equal(sub.state, "queued");
    assert.equal(sub.status_url, `/v1/jobs/${sub.id}`);
    assert.equal(sub.replayed, false);
    assert.ok(sub.idempotencyKey.length > 0);

    const job = await client.wait(sub.id, { onEvent: (e) => events.push(e), signal: AbortSignal.timeout(30_000) });
    assert.equal(job.id, sub.id);
    assert.equal(job.state, "succeeded");
    assert.equal(job.result?.status, 201);
    assert.deepEqual(
      events.map((e) => e.event),
      ["queued", "running", "succeeded"],
    );
    assert.deepEqual(
      events.map((e) => e.id),
      ["1", "2", "3"],
    );

    const calls = env.upstream.callsWith("submit-wait");
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.path, "/orders/c-1");
    assert.equal(calls[0]!.headers["idempotency-key"], sub.id);

    const got = await client.get(sub.id);
    assert.equal(got.state, "succeeded");

    const res = await client.result(sub.id);
    assert.equal(res.status, 201);
    assert.equal(res.state, "succeeded");
    assert.equal(res.headers.get("x-upstream"), "yes");
    assert.deepEqual(res.json(), { received: { sku: "A-1", mark: "submit-wait" } });
  });

  it("passes on what onEvent throws, and polls when asked to", async () => {
    const sub = await client.submit("/v1/orders/c-7", { mark: "on-event" });
    const boom = new Error("boom");
    await assert.rejects(
      client.wait(sub.id, {
        signal: AbortSignal.timeout(30_000),
        onEvent: () => {
          throw boom;
        },
      }),
      (err: unknown) => err === boom,
    );
    const seen: JobEvent[] = [];
    const job = await client.wait(sub.id, { poll: true, maxPollIntervalMs: 100, onEvent: (e) => seen.push(e), signal: AbortSignal.timeout(30_000) });
    assert.equal(job.state, "succeeded");
    assert.equal(seen[seen.length - 1]?.event, "succeeded");
  });

  it("submits a job by type to POST /v1/jobs and sees it fail for good", async () => {
    const sub = await client.submit({ type: "ledger", payload: { fail: true, mark: "by-type" } });
    const job = await client.wait(sub.id, { signal: AbortSignal.timeout(30_000) });
    assert.equal(job.state, "failed");
    assert.equal(job.result?.status, 400);
    const res = await client.result(sub.id);
    assert.equal(res.status, 400);
    assert.equal(res.state, "failed");
  });

  it("replays the original 202 for a repeated Idempotency-Key", async () => {
    const key = `order-${Date.now()}`;
    const a = await client.submit("/v1/orders/c-2", { mark: "same-key" }, { idempotencyKey: key });
    const b = await client.submit("/v1/orders/c-2", { mark: "same-key" }, { idempotencyKey: key });
    assert.equal(b.id, a.id);
    assert.equal(a.replayed, false);
    assert.equal(b.replayed, true);
    assert.equal(b.idempotencyKey, key);
    await assert.rejects(
      client.submit("/v1/orders/c-2", { mark: "other body" }, { idempotencyKey: key }),
      (err: unknown) => err instanceof ProblemError && err.status === 422 && err.slug === "idempotency-key-reused",
    );
  });

  it("cancels a scheduled job, and a second cancel is a 409", async () => {
    const sub = await client.submit({ type: "ledger", payload: { mark: "cancel" }, delay: "60s" });
    assert.equal(sub.state, "scheduled");
    const job = await client.cancel(sub.id);
    assert.equal(job.state, "canceled");
    assert.equal((await client.wait(sub.id, { signal: AbortSignal.timeout(10_000) })).state, "canceled");
    await assert.rejects(client.cancel(sub.id), (err: unknown) => {
      assert.ok(err instanceof ProblemError);
      assert.equal(err.status, 409);
      assert.equal(err.slug, "job-ended");
      assert.ok(err.requestId, "the problem carries X-Request-ID");
      return true;
    });
    await assert.rejects(client.result(sub.id), (err: unknown) => err instanceof ProblemError && err.status === 404 && err.slug === "no-result");
  });

  it("throws problems as ProblemError: 404 and 400 with field errors", async () => {
    const missing = "a".repeat(26);
    for (const call of [() => client.get(missing), () => client.wait(missing, { signal: AbortSignal.timeout(10_000) }), () => client.cancel(missing)]) {
      await assert.rejects(call(), (err: unknown) => {
        assert.ok(err instanceof ProblemError, String(err));
        assert.equal(err.status, 404);
        assert.equal(err.slug, "not-found");
        assert.equal(err.type, "https://asyncgw.dev/problems/not-found");
        return true;
      });
    }
    await assert.rejects(client.submit({ type: "ledger", payload: {}, delay: "soon" }), (err: unknown) => {
      assert.ok(err instanceof ProblemError);
      assert.equal(err.status, 400);
      assert.equal(err.title, "Bad Request");
      assert.ok(err.errors.some((e) => "pointer" in e && e.pointer === "/delay"), JSON.stringify(err.problem));
      return true;
    });
    await assert.rejects(client.submit("/v1/orders/c-3", "{not json"), (err: unknown) => err instanceof ProblemError && err.status === 400 && err.slug === "malformed-json");
    const stranger = new Client({ baseUrl: env.baseUrl, apiKey: "agw_wrong" });
    await assert.rejects(stranger.get(missing), (err: unknown) => err instanceof ProblemError && err.status === 401);
    await assert.rejects(stranger.events().next(), (err: unknown) => err instanceof ProblemError && err.status === 401);
  });

  it("iterates over the tenant's events and resumes after lastEventId", async () => {
    const ctl = new AbortController();
    const live: JobEvent[] = [];
    const collecting = (async () => {
      for await (const ev of client.events({ signal: ctl.signal })) live.push(ev);
    })();
    // The stream is live from the moment it opens, which the client cannot
    // see: submit until the stream carries a job of ours to its end.
    let done: JobEvent | undefined;
    for (let i = 0; i < 10 && !done; i++) {
      const a = await client.submit("/v1/orders/c-4", { mark: `events-a${i}` });
      await client.wait(a.id, { signal: AbortSignal.timeout(30_000) });
      done = await waitUntil("the tenant stream to carry the job's end", 3_000, () =>
        live.find((e) => e.job.id === a.id && e.event === "succeeded"),
      ).catch(() => undefined);
    }
    assert.ok(done?.id, "the tenant stream carried no job's end");
    ctl.abort();
    await collecting;
    const before = new Set(live.map((e) => e.job.id));

    // While nobody listens, another job runs to its end.
    const b = await client.submit("/v1/orders/c-5", { mark: "events-b" });
    assert.equal((await client.wait(b.id, { signal: AbortSignal.timeout(30_000) })).state, "succeeded");

    // Resuming gives b's events, and none of the earlier jobs' again.
    const seen: JobEvent[] = [];
    for await (const ev of client.events({ lastEventId: done.id, signal: AbortSignal.timeout(15_000) })) {
      seen.push(ev);
      if (ev.job.id === b.id && ev.event === "succeeded") break;
    }
    assert.deepEqual(
      seen.filter((e) => e.job.id === b.id).map((e) => e.event),
      ["queued", "running", "succeeded"],
    );
    assert.deepEqual(seen.filter((e) => before.has(e.job.id)), [], "events before lastEventId came again");
  });

  it("verifies a real webhook delivery, and refuses a tampered one", async () => {
    const sub = await client.submit("/v1/orders/c-6", { mark: "webhook" }, { callbackUrl: `${env.receiver.url}/hooks` });
    const d = await waitUntil("the webhook delivery", 30_000, () =>
      env.receiver.deliveries.find((x) => x.body.toString().includes(sub.id)),
    );
    const ev = await verifyWebhook(env.secret, d.headers, d.body);
    assert.equal(ev.type, "job.succeeded");
    assert.equal(ev.data.id, sub.id);
    assert.equal(ev.data.state, "succeeded");
    // The same delivery as fetch Headers and text verifies too.
    const h = new Headers();
    for (const [k, v] of Object.entries(d.headers)) if (typeof v === "string") h.set(k, v);
    assert.equal((await verifyWebhook(env.secret, h, d.body.toString())).data.id, sub.id);

    const tampered = Buffer.from(d.body.toString().replace('"succeeded"', '"failed"'));
    assert.notDeepEqual(tampered, d.body);
    await assert.rejects(verifyWebhook(env.secret, d.headers, tampered), WebhookVerificationError);
    const other = "whsec_" + Buffer.alloc(32, 7).toString("base64");
    await assert.rejects(verifyWebhook(other, d.headers, d.body), WebhookVerificationError);
    await assert.rejects(verifyWebhook(env.secret, { ...d.headers, "webhook-id": "msg_other" }, d.body), WebhookVerificationError);
    const later = new Date((Number(d.headers["webhook-timestamp"]) + 301) * 1000);
    await assert.rejects(verifyWebhook(env.secret, d.headers, d.body, { now: later }), /too old/);
    assert.equal((await verifyWebhook([other, env.secret], d.headers, d.body, { now: later, tolerance: 600 })).data.id, sub.id);
  });
});
