// Standard Webhooks (standardwebhooks.com) for the webhooks Agency OS sends to its clients:
// secret `whsec_<base64 key>`, headers `webhook-id`, `webhook-timestamp` (unix seconds) and
// `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>` - several
// space-separated signatures while a secret rotates. Clients can check our deliveries with any
// Standard Webhooks library (the `standardwebhooks` npm package is cross-checked in the tests);
// this file is our own dependency-free, crypto.subtle implementation so it runs on Deno and Node.
import {
  fromBase64,
  hmacSha256,
  timingSafeEqual,
  toBase64,
  type Bytes,
  type VerifyFailureReason,
  type VerifyResult,
} from "./verify.ts";

export const STANDARD_WEBHOOK_SECRET_PREFIX = "whsec_";
export const STANDARD_WEBHOOK_TOLERANCE_SECONDS = 300;

// A type alias, not an interface, so it is assignable to HeadersInit / Record<string, string>.
export type StandardWebhookHeaders = {
  "webhook-id": string;
  "webhook-timestamp": string;
  "webhook-signature": string;
};

const fail = (reason: VerifyFailureReason): VerifyResult => ({ ok: false, reason });

/** The HMAC key inside a `whsec_…` secret (the prefix is optional, as in the reference libraries). */
export function standardWebhookKey(secret: string): Bytes {
  const encoded = secret.startsWith(STANDARD_WEBHOOK_SECRET_PREFIX) ? secret.slice(STANDARD_WEBHOOK_SECRET_PREFIX.length) : secret;
  const key = fromBase64(encoded);
  if (!key || key.length === 0) throw new Error("webhook secret must be whsec_ followed by a non-empty base64 key");
  return key;
}

/** A new random secret for a client endpoint: 32 random bytes (the spec allows 24-64). */
export function generateWebhookSecret(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 24 || bytes > 64) throw new Error("a Standard Webhooks key is 24 to 64 bytes");
  return STANDARD_WEBHOOK_SECRET_PREFIX + toBase64(crypto.getRandomValues(new Uint8Array(bytes)));
}

// The timestamp is signed exactly as it appears in the header.
function signatureBytes(key: Bytes, id: string, timestamp: string, body: string): Promise<Bytes> {
  return hmacSha256(key, `${id}.${timestamp}.${body}`);
}

/**
 * The three headers for delivering `body` as message `id` at `timestamp`. `secret` may be a list
 * (during rotation: old and new), which yields one `v1,` signature per secret.
 */
export async function signStandardWebhook(
  secret: string | readonly string[],
  id: string,
  timestamp: Date,
  body: string,
): Promise<StandardWebhookHeaders> {
  if (id.length === 0) throw new Error("webhook-id must not be empty");
  const secrets = typeof secret === "string" ? [secret] : secret;
  if (secrets.length === 0) throw new Error("no webhook secret given");
  const ts = Math.floor(timestamp.getTime() / 1000);
  const signatures = await Promise.all(secrets.map(async (s) => `v1,${toBase64(await signatureBytes(standardWebhookKey(s), id, String(ts), body))}`));
  return { "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": signatures.join(" ") };
}

/**
 * Verifies a Standard Webhooks delivery. Accepts when any `v1,` signature in the header matches any
 * of `secret` (rotation) and the timestamp is within `toleranceSeconds` of `now` either way.
 * Signatures of other versions (e.g. `v1a,` asymmetric) are ignored. Never throws on header input.
 */
export async function verifyStandardWebhook(
  secret: string | readonly string[],
  rawBody: string,
  headers: Headers,
  now: Date = new Date(),
  toleranceSeconds: number = STANDARD_WEBHOOK_TOLERANCE_SECONDS,
): Promise<VerifyResult> {
  const keys = (typeof secret === "string" ? [secret] : secret).map(standardWebhookKey);
  if (keys.length === 0) throw new Error("no webhook secret given");
  const id = headers.get("webhook-id");
  const timestamp = headers.get("webhook-timestamp")?.trim();
  const signatureHeader = headers.get("webhook-signature")?.trim();
  if (!id || !timestamp || !signatureHeader) return fail("missing");
  if (!/^\d{1,12}$/.test(timestamp)) return fail("malformed");

  const presented: Bytes[] = [];
  for (const entry of signatureHeader.split(/\s+/)) {
    const comma = entry.indexOf(",");
    if (comma === -1 || entry.slice(0, comma) !== "v1") continue;
    const bytes = fromBase64(entry.slice(comma + 1));
    if (bytes && bytes.length === 32) presented.push(bytes);
  }
  if (presented.length === 0) return fail("malformed");

  let matched = false;
  for (const key of keys) {
    const expected = await signatureBytes(key, id, timestamp, rawBody);
    for (const candidate of presented) matched = timingSafeEqual(expected, candidate) || matched;
  }
  if (!matched) return fail("mismatch");
  const age = now.getTime() / 1000 - Number(timestamp);
  return Math.abs(age) <= toleranceSeconds ? { ok: true } : fail("stale");
}
