import { WebhookVerificationError } from "./errors.js";
import type { WebhookEvent } from "./types.js";

/**
 * The headers of a delivery: a fetch `Headers`, or a plain object such as
 * Node's `request.headers` (names in any case; a list is refused).
 */
export type HeadersLike = Headers | Record<string, string | string[] | undefined>;

/** Options of verifyWebhook. */
export interface VerifyOptions {
  /** How far `webhook-timestamp` may be from now, in seconds. Defaults to 300. */
  tolerance?: number;
  /** The time to check the timestamp against. Defaults to now. */
  now?: Date;
}

const secretPrefix = "whsec_";
const encoder = new TextEncoder();

/**
 * verifyWebhook checks a delivery's Standard Webhooks signature, as
 * asyncgw signs them, and returns its body as a WebhookEvent.
 *
 * `secret` is the tenant's `whsec_…` signing secret (several while they
 * are rotated: any one that verifies will do); `body` the raw body as it
 * came, before any JSON parsing. It checks that `webhook-timestamp` is
 * within `tolerance` seconds of now, and compares the HMAC-SHA256 of
 * `id.timestamp.body` with each `v1,` signature of `webhook-signature` in
 * constant time. It throws a WebhookVerificationError when the delivery
 * does not verify. It does not remember `webhook-id`s: drop deliveries
 * whose ID you have handled already.
 */
export async function verifyWebhook(
  secret: string | readonly string[],
  headers: HeadersLike,
  body: string | Uint8Array | ArrayBuffer,
  options: VerifyOptions = {},
): Promise<WebhookEvent> {
  const secrets = typeof secret === "string" ? [secret] : [...secret];
  if (secrets.length === 0) throw new TypeError("verifyWebhook: no secret");
  const keys = secrets.map(decodeSecret);

  const id = header(headers, "webhook-id");
  const ts = header(headers, "webhook-timestamp");
  const sigs = header(headers, "webhook-signature");
  if (!/^\d{1,15}$/.test(ts)) throw new WebhookVerificationError("webhook-timestamp is not a Unix time in seconds");
  const tolerance = options.tolerance ?? 300;
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const at = Number(ts);
  if (at < now - tolerance) throw new WebhookVerificationError("webhook-timestamp is too old");
  if (at > now + tolerance) throw new WebhookVerificationError("webhook-timestamp is in the future");

  const raw = bytes(body);
  const prefix = encoder.encode(`${id}.${ts}.`);
  const signed = new Uint8Array(prefix.length + raw.length);
  signed.set(prefix, 0);
  signed.set(raw, prefix.length);

  const candidates: Uint8Array[] = [];
  for (const entry of sigs.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
    const sig = base64(entry.slice(comma + 1));
    if (sig) candidates.push(sig);
  }
  if (candidates.length === 0) throw new WebhookVerificationError("webhook-signature holds no v1 signature");

  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new TypeError("verifyWebhook needs crypto.subtle (a secure context in browsers)");
  for (const k of keys) {
    const key = await subtle.importKey("raw", k as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    for (const sig of candidates) {
      // subtle.verify compares in constant time.
      if (await subtle.verify("HMAC", key, sig as Uint8Array<ArrayBuffer>, signed)) return parse(signed, prefix.length);
    }
  }
  throw new WebhookVerificationError("no signature matches");
}

/** parse reads the body (signed from offset on) as a WebhookEvent. */
function parse(signed: Uint8Array, offset: number): WebhookEvent {
  const text = new TextDecoder("utf-8", { fatal: true }).decode(signed.subarray(offset));
  try {
    return JSON.parse(text) as WebhookEvent;
  } catch {
    throw new WebhookVerificationError("the body is not JSON");
  }
}

/** decodeSecret returns the key bytes of a `whsec_` secret (the prefix may be left out). */
function decodeSecret(s: string): Uint8Array {
  const key = base64(s.startsWith(secretPrefix) ? s.slice(secretPrefix.length) : s);
  if (!key || key.length === 0) throw new TypeError("verifyWebhook: the secret must be whsec_ and base64");
  return key;
}

/** header returns the one value of a header; a missing or repeated one does not verify. */
function header(h: HeadersLike, name: string): string {
  let v: string | string[] | null | undefined;
  if (typeof (h as Headers).get === "function") {
    v = (h as Headers).get(name);
  } else {
    for (const [k, val] of Object.entries(h)) {
      if (k.toLowerCase() === name) {
        if (v !== undefined) throw new WebhookVerificationError(`${name} is given twice`);
        v = val;
      }
    }
  }
  if (Array.isArray(v)) {
    if (v.length !== 1) throw new WebhookVerificationError(`${name} is given ${v.length} times`);
    v = v[0];
  }
  if (typeof v !== "string" || v === "") throw new WebhookVerificationError(`${name} is missing`);
  return v;
}

/** bytes returns body as bytes (a string as UTF-8). */
function bytes(body: string | Uint8Array | ArrayBuffer): Uint8Array {
  if (typeof body === "string") return encoder.encode(body);
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  return body;
}

/** base64 decodes standard base64; undefined when s is not. */
function base64(s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return undefined;
  try {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}
