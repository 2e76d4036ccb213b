// verifyWebhook against signatures made here with node:crypto, as the
// Standard Webhooks specification describes them (the real deliveries are
// in gateway.test.ts).

import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { describe, it } from "node:test";

import { verifyWebhook, WebhookVerificationError } from "@asyncgw/client";

const key = randomBytes(32);
const secret = "whsec_" + key.toString("base64");
const body = JSON.stringify({ type: "job.succeeded", timestamp: "2026-11-21T10:00:00Z", data: { id: "gqarwptdkwnyl7czi4lvhicj2m", state: "succeeded" } });

function sign(k: Buffer, id: string, ts: number, b: string): string {
  return "v1," + createHmac("sha256", k).update(`${id}.${ts}.${b}`).digest("base64");
}

function delivery(ts = Math.floor(Date.now() / 1000), signature?: string) {
  return {
    "webhook-id": "msg_1",
    "webhook-timestamp": String(ts),
    "webhook-signature": signature ?? sign(key, "msg_1", ts, body),
    "content-type": "application/json",
  };
}

describe("verifyWebhook", () => {
  it("verifies a signed delivery and returns its event", async () => {
    const ev = await verifyWebhook(secret, delivery(), body);
    assert.equal(ev.type, "job.succeeded");
    assert.equal(ev.data.id, "gqarwptdkwnyl7czi4lvhicj2m");
    // as bytes, with Headers, and with header names in any case
    await verifyWebhook(secret, new Headers(delivery()), new TextEncoder().encode(body));
    const upper = Object.fromEntries(Object.entries(delivery()).map(([k, v]) => [k.toUpperCase(), v]));
    await verifyWebhook(secret, upper, body);
  });

  it("accepts any one matching signature of several (rotation)", async () => {
    const ts = Math.floor(Date.now() / 1000);
    const old = randomBytes(32);
    const both = `${sign(old, "msg_1", ts, body)} ${sign(key, "msg_1", ts, body)}`;
    await verifyWebhook(secret, delivery(ts, both), body);
    await verifyWebhook(["whsec_" + old.toString("base64")], delivery(ts, both), body);
    await verifyWebhook([`whsec_${randomBytes(32).toString("base64")}`, secret], delivery(ts), body);
  });

  it("refuses what does not verify", async () => {
    const ts = Math.floor(Date.now() / 1000);
    const cases: [string, Record<string, string | string[]>, string][] = [
      ["a changed body", delivery(ts), body.replace("succeeded", "failed")],
      ["another secret", delivery(ts, sign(randomBytes(32), "msg_1", ts, body)), body],
      ["another id", { ...delivery(ts), "webhook-id": "msg_2" }, body],
      ["another timestamp", { ...delivery(ts), "webhook-timestamp": String(ts - 1) }, body],
      ["an old timestamp", delivery(ts - 301), body],
      ["a future timestamp", delivery(ts + 301), body],
      ["a timestamp that is no number", { ...delivery(ts), "webhook-timestamp": "soon" }, body],
      ["no signature", { ...delivery(ts), "webhook-signature": "" }, body],
      ["a v2 signature only", delivery(ts, sign(key, "msg_1", ts, body).replace("v1,", "v2,")), body],
      ["a signature that is not base64", delivery(ts, "v1,***"), body],
      ["two id headers", { ...delivery(ts), "webhook-id": ["msg_1", "msg_1"] }, body],
      ["no id", { "webhook-timestamp": String(ts), "webhook-signature": sign(key, "msg_1", ts, body) }, body],
    ];
    for (const [name, headers, b] of cases) {
      await assert.rejects(verifyWebhook(secret, headers, b), WebhookVerificationError, name);
    }
  });

  it("takes a tolerance and a clock", async () => {
    const ts = Math.floor(Date.now() / 1000) - 600;
    await assert.rejects(verifyWebhook(secret, delivery(ts), body), /too old/);
    await verifyWebhook(secret, delivery(ts), body, { tolerance: 700 });
    await verifyWebhook(secret, delivery(ts), body, { now: new Date(ts * 1000) });
  });

  it("refuses a secret that is not one", async () => {
    await assert.rejects(verifyWebhook("whsec_***", delivery(), body), TypeError);
    await assert.rejects(verifyWebhook([], delivery(), body), TypeError);
  });
});
