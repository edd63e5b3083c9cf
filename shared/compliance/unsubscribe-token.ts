// Unsubscribe tokens: what every message's unsubscribe link and RFC 8058 one-click header carry
// (compliance S3, U1, M1). The token names the send and the person, so the unsubscribe function
// can stop them everywhere without a login and without asking for anything (S3).
//
// Format (base64url, no padding, ~95 characters):
//   payload = version (1 byte, 1) | issued-at (uint32, seconds since 1970) | send id (16 bytes,
//             zero when unknown) | lead id (16 bytes)
//   token   = base64url(payload) "." base64url(HMAC-SHA256(secret, payload))
// Binary rather than JSON keeps the URL short enough for SMS. A token is valid for 365 days — the
// law asks for at least 30 (Spam Act s18, CAN-SPAM) — and verification is constant time
// (crypto.subtle.verify). The secret is UNSUBSCRIBE_SECRET; rotating it breaks every link already
// sent, so it must not be rotated lightly.
import { readEnv } from "../config/env.ts";
import { publicWebhookUrl } from "../webhooks/public-url.ts";

export const UNSUBSCRIBE_SECRET_ENV = "UNSUBSCRIBE_SECRET";
/** How long a link works. Compliance S3/U1 require at least 30 days. */
export const UNSUBSCRIBE_TOKEN_TTL_DAYS = 365;
/** A token issued this far in the future (clock skew) is still accepted; beyond it, refused. */
const FUTURE_SKEW_SECONDS = 24 * 3600;
const VERSION = 1;
const PAYLOAD_BYTES = 1 + 4 + 16 + 16;
const ZERO_UUID = "00000000-0000-0000-0000-000000000000";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface UnsubscribeSubject {
  /** The send the link was in; null when the link was not made for one send. */
  sendId: string | null;
  leadId: string;
}

export type VerifiedUnsubscribe =
  | { ok: true; sendId: string | null; leadId: string; issuedAt: Date }
  | { ok: false; reason: "malformed" | "bad_signature" | "expired" };

/** UNSUBSCRIBE_SECRET, or a clear error: no message may go out (or be unsubscribed) without it. */
export function unsubscribeSecret(): string {
  const secret = readEnv(UNSUBSCRIBE_SECRET_ENV)?.trim();
  if (!secret) {
    throw new Error(`${UNSUBSCRIBE_SECRET_ENV} is not set: unsubscribe links can be neither made nor checked`);
  }
  return secret;
}

function requireSecret(secret: string): string {
  if (typeof secret !== "string" || !secret.trim()) {
    throw new Error(`${UNSUBSCRIBE_SECRET_ENV} is empty: unsubscribe links can be neither made nor checked`);
  }
  return secret;
}

function hmacKey(secret: string, usage: "sign" | "verify"): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", new TextEncoder().encode(requireSecret(secret)), { name: "HMAC", hash: "SHA-256" }, false, [usage]);
}

function uuidBytes(id: string): Uint8Array {
  if (!UUID.test(id)) throw new Error(`not a uuid: ${id}`);
  const hex = id.replace(/-/g, "");
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function uuidOf(bytes: Uint8Array): string {
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function toBase64Url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

/** A signed token for this send and person, issued at issuedAt. */
export async function unsubscribeToken(subject: UnsubscribeSubject, secret: string, issuedAt: Date = new Date()): Promise<string> {
  const seconds = Math.floor(issuedAt.getTime() / 1000);
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > 0xffffffff) throw new Error("issuedAt is not a usable date");
  const payload = new Uint8Array(PAYLOAD_BYTES);
  payload[0] = VERSION;
  new DataView(payload.buffer).setUint32(1, seconds);
  payload.set(uuidBytes(subject.sendId ?? ZERO_UUID), 5);
  payload.set(uuidBytes(subject.leadId), 21);
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret, "sign"), payload));
  return `${toBase64Url(payload)}.${toBase64Url(sig)}`;
}

/**
 * Checks a token: its shape, its signature (constant time) and its age (≤ 365 days). Never throws
 * for a bad token — a link scanner or a mangled mail client must get a clean "invalid" — only for a
 * missing secret.
 */
export async function verifyUnsubscribeToken(token: string, secret: string, now: Date = new Date()): Promise<VerifiedUnsubscribe> {
  const key = await hmacKey(secret, "verify");
  const parts = typeof token === "string" ? token.trim().split(".") : [];
  if (parts.length !== 2) return { ok: false, reason: "malformed" };
  const payload = fromBase64Url(parts[0]);
  const sig = fromBase64Url(parts[1]);
  if (!payload || !sig || payload.length !== PAYLOAD_BYTES || payload[0] !== VERSION || sig.length !== 32) {
    return { ok: false, reason: "malformed" };
  }
  if (!(await crypto.subtle.verify("HMAC", key, sig, payload))) return { ok: false, reason: "bad_signature" };
  const issued = new DataView(payload.buffer, payload.byteOffset).getUint32(1);
  const nowSeconds = Math.floor(now.getTime() / 1000);
  if (nowSeconds - issued > UNSUBSCRIBE_TOKEN_TTL_DAYS * 86_400 || issued - nowSeconds > FUTURE_SKEW_SECONDS) {
    return { ok: false, reason: "expired" };
  }
  const sendId = uuidOf(payload.subarray(5, 21));
  return {
    ok: true,
    sendId: sendId === ZERO_UUID ? null : sendId,
    leadId: uuidOf(payload.subarray(21, 37)),
    issuedAt: new Date(issued * 1000),
  };
}

/** The public link: <PUBLIC_FUNCTIONS_BASE_URL>/unsubscribe?t=<token> (base64url needs no escaping). */
export function unsubscribeUrl(token: string): string {
  return publicWebhookUrl("unsubscribe", "", `t=${token}`);
}
