// Signing helpers for the QStash emulator: the `Upstash-Signature` JWT (HS256) and the
// base64 / base64url / SHA-256 encodings it and the emulator's JSON store need.
import { SignJWT } from "jose";

const encoder = new TextEncoder();

/** Standard base64 of raw bytes (chunked so large bodies don't blow the argument limit). */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

export function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * base64url of SHA-256(body) WITH `=` padding: that is what real QStash puts in the `body`
 * claim (see the §16 vector); the SDK's Receiver strips padding on both sides anyway.
 */
export async function sha256Base64Url(body: Uint8Array): Promise<string> {
  // Copy into a fresh ArrayBuffer-backed view: subtle.digest rejects SharedArrayBuffer views.
  const digest = await crypto.subtle.digest("SHA-256", new Uint8Array(body));
  return bytesToBase64(new Uint8Array(digest)).replace(/\+/g, "-").replace(/\//g, "_");
}

export function randomId(prefix: string, length = 24): string {
  // Base58-ish alphabet so ids look like QStash's and stay URL-safe.
  const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let s = "";
  for (const b of bytes) s += alphabet[b % alphabet.length];
  return prefix + s;
}

export interface SignInput {
  /** Signing key; the HMAC key is its UTF-8 bytes (no base64 decoding), like real QStash. */
  key: string;
  /** Exact destination URL being called: becomes `sub`. */
  url: string;
  /** Raw body bytes as sent. */
  body: Uint8Array;
  /** Clock in ms. */
  nowMs: number;
  /** Token lifetime in seconds (QStash: 5 minutes). */
  ttlSeconds?: number;
  jti?: string;
}

/** Mint the `Upstash-Signature` JWT exactly as QStash does (claim order included). */
export async function signQStashJwt(input: SignInput): Promise<string> {
  const now = Math.floor(input.nowMs / 1000);
  // Claims are passed as one object so the payload key order matches QStash's tokens
  // byte-for-byte (iss, sub, exp, nbf, iat, jti, body), which the §16 vector test checks.
  const payload = {
    iss: "Upstash",
    sub: input.url,
    exp: now + (input.ttlSeconds ?? 300),
    nbf: now,
    iat: now,
    jti: input.jti ?? randomId("jwt_", 20),
    body: await sha256Base64Url(input.body),
  };
  return await new SignJWT(payload)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .sign(encoder.encode(input.key));
}
