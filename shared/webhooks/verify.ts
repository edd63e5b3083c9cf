// Signature checks (and the matching signers) for every inbound provider webhook: Twilio
// X-Twilio-Signature, Cal.com X-Cal-Signature-256, Calendly-Webhook-Signature, Vapi HMAC credential
// and legacy X-Vapi-Secret, PostGrid's JWT body, and the plain URL/header tokens of providers that
// do not sign (ClickSend, Salesforge, Unipile). Wire formats: the reference providers.md
// (../shared/spec) §3-§8, §13, §14; vectors §16.
//
// Pure functions on node:crypto's HMACs and digests (Node, Deno and Supabase's Edge Runtime all
// provide it), so they run unchanged under Deno and Node. Every verifier takes the RAW body
// (re-serialised JSON changes bytes), never throws on anything a caller on the internet controls
// (headers, body), and answers
//   { ok: true } | { ok: false, reason: "missing" | "malformed" | "mismatch" | "stale" }.
// An empty secret is our own misconfiguration, not bad input: that throws, so it surfaces as a 500
// (and a provider retry) instead of silently rejecting - or accepting - every delivery.
// Where a scheme has a timestamp the signature is checked first, so "stale" always means "genuinely
// signed by the provider, but too old or too far in the future" (replay or clock skew), never a
// forgery. Headers collections are web `Headers` (what Request and Hono hand over); single-header
// schemes take the header's value as `headers.get()` returns it.

import { createHash, createHmac } from "node:crypto";

export type VerifyFailureReason = "missing" | "malformed" | "mismatch" | "stale";
export type VerifyFailure = { ok: false; reason: VerifyFailureReason };
export type VerifyResult = { ok: true } | VerifyFailure;

const fail = (reason: VerifyFailureReason): VerifyFailure => ({ ok: false, reason });
const OK: VerifyResult = { ok: true };

// ---------------------------------------------------------------------------------------------
// Byte, encoding and HMAC helpers
// ---------------------------------------------------------------------------------------------

export type Bytes = Uint8Array<ArrayBuffer>;
export type HmacHash = "SHA-1" | "SHA-256" | "SHA-512";

// HMACs and digests with node:crypto (Node, Deno and Supabase's Edge Runtime all provide it): a
// webhook body is a few kB, and hashing it synchronously costs microseconds, where crypto.subtle
// costs a key import and a thread-pool round trip per delivery — most of a flood's CPU.
const NODE_HASH: Record<HmacHash, string> = { "SHA-1": "sha1", "SHA-256": "sha256", "SHA-512": "sha512" };

const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
export function utf8(text: string): Bytes {
  return encoder.encode(text) as Bytes;
}

function toBytes(data: string | Uint8Array): Bytes {
  return typeof data === "string" ? utf8(data) : (new Uint8Array(data) as Bytes);
}

/**
 * Constant-time equality of two byte arrays: the time taken depends only on the lengths. Unequal
 * lengths return false at once - every caller compares fixed-size MACs or digests, whose length is
 * public, so that leaks nothing.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** HMAC over `message` with `key` (strings are taken as UTF-8). */
export function hmac(hash: HmacHash, key: string | Uint8Array, message: string | Uint8Array): Promise<Bytes> {
  const keyBytes = toBytes(key);
  // an empty secret is our misconfiguration (crypto.subtle refuses a zero-length HMAC key too)
  if (keyBytes.length === 0) return Promise.reject(new Error("HMAC key is empty: the webhook secret is not configured"));
  // a string goes in as is: node:crypto hashes its UTF-8 bytes without an intermediate copy
  return Promise.resolve(new Uint8Array(createHmac(NODE_HASH[hash], keyBytes).update(message).digest()) as Bytes);
}

export const hmacSha1 = (key: string | Uint8Array, message: string | Uint8Array) => hmac("SHA-1", key, message);
export const hmacSha256 = (key: string | Uint8Array, message: string | Uint8Array) => hmac("SHA-256", key, message);
export const hmacSha512 = (key: string | Uint8Array, message: string | Uint8Array) => hmac("SHA-512", key, message);

/** SHA-256 digest of a string (UTF-8) or bytes. */
export function sha256(data: string | Uint8Array): Promise<Bytes> {
  return Promise.resolve(new Uint8Array(createHash("sha256").update(data).digest()) as Bytes);
}

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Decodes hex (either case); null when the text is not whole bytes of hex. */
export function fromHex(text: string): Bytes | null {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return null;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  return out as Bytes;
}

export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * Decodes standard base64 (padding optional); null when the text is not base64 or not in canonical
 * form. Canonical only (unused trailing bits zero), so one byte string has exactly one accepted
 * encoding and comparing bytes means the same as comparing the signature text, as the vendors' SDKs do.
 */
export function fromBase64(text: string): Bytes | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  const unpadded = text.replace(/=+$/, "");
  if (unpadded.length % 4 === 1) return null;
  // Padding, when present, must make the length a multiple of 4.
  if (unpadded.length !== text.length && text.length % 4 !== 0) return null;
  let bytes: Bytes;
  try {
    const binary = atob(unpadded + "=".repeat((4 - (unpadded.length % 4)) % 4));
    bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0)) as Bytes;
  } catch {
    return null;
  }
  return toBase64(bytes).replace(/=+$/, "") === unpadded ? bytes : null;
}

export function toBase64Url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes unpadded base64url (as JWT segments are); null when the text is not base64url. */
export function fromBase64Url(text: string): Bytes | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  return fromBase64(text.replace(/-/g, "+").replace(/_/g, "/"));
}

function requireSecret(secret: string, what: string): void {
  if (typeof secret !== "string" || secret.length === 0) {
    throw new Error(`${what} is empty: the webhook secret is not configured`);
  }
}

/** A header value worth looking at: present and not just whitespace. */
function present(value: string | null | undefined): string | null {
  if (typeof value !== "string") return null;
  const trimmed = value.trim();
  return trimmed.length > 0 ? trimmed : null;
}

// ---------------------------------------------------------------------------------------------
// Shared secrets for providers that do not sign (ClickSend, Salesforge URL token; Unipile header)
// ---------------------------------------------------------------------------------------------

/**
 * Constant-time check of a static token (URL path segment / `?token=` / custom header). Both sides
 * are hashed first so neither the comparison time nor an early length check says anything about
 * the expected token's length.
 */
export async function verifySecretToken(presented: string | null | undefined, expected: string): Promise<VerifyResult> {
  requireSecret(expected, "expected token");
  if (typeof presented !== "string" || presented.length === 0) return fail("missing");
  const [a, b] = await Promise.all([sha256(presented), sha256(expected)]);
  return timingSafeEqual(a, b) ? OK : fail("mismatch");
}

// ---------------------------------------------------------------------------------------------
// Twilio: X-Twilio-Signature = base64(HMAC-SHA1(authToken, url + sorted name+value pairs))
// ---------------------------------------------------------------------------------------------

/** Form params of a form-encoded (or GET: empty) delivery, or the raw body of a JSON delivery. */
export type TwilioPayload = URLSearchParams | { jsonBody: string };

function isJsonPayload(payload: TwilioPayload): payload is { jsonBody: string } {
  return !(payload instanceof URLSearchParams);
}

/** Splits `scheme://authority` off a URL without normalising the rest (Twilio signs exact bytes). */
function splitUrl(url: string): { scheme: string; userInfo: string; host: string; port: string; rest: string } | null {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url);
  if (!match) return null;
  const [prefix, scheme, authority] = match as unknown as [string, string, string];
  const userInfoEnd = authority.lastIndexOf("@");
  const hostAndPort = authority.slice(userInfoEnd + 1);
  // In an IPv6 literal the port colon comes after the closing bracket.
  const portStart = hostAndPort.indexOf(":", hostAndPort.lastIndexOf("]") + 1);
  return {
    scheme,
    userInfo: authority.slice(0, userInfoEnd + 1),
    host: portStart === -1 ? hostAndPort : hostAndPort.slice(0, portStart),
    port: portStart === -1 ? "" : hostAndPort.slice(portStart + 1),
    rest: url.slice(prefix.length),
  };
}

/**
 * The URL as given plus its default-port twin: Twilio's backend sometimes signs
 * `https://host:443/…` and sometimes `https://host/…`. Only the scheme's default port (:443 for
 * https, :80 for http) is added or removed; any other port must match exactly. The fragment is
 * never signed (Twilio uses it for connection overrides).
 */
export function twilioUrlVariants(url: string): string[] {
  const hash = url.indexOf("#");
  const signed = hash === -1 ? url : url.slice(0, hash);
  const parts = splitUrl(signed);
  if (!parts) return [signed];
  const scheme = parts.scheme.toLowerCase();
  const defaultPort = scheme === "https://" ? "443" : scheme === "http://" ? "80" : null;
  if (!defaultPort) return [signed];
  const withoutPort = parts.scheme + parts.userInfo + parts.host + parts.rest;
  const withPort = parts.scheme + parts.userInfo + parts.host + ":" + defaultPort + parts.rest;
  if (parts.port === "") return [signed, withPort];
  if (parts.port === defaultPort) return [signed, withoutPort];
  return [signed];
}

/** The string Twilio signs: url, then for each sorted name each distinct value (sorted) as name+value. */
export function twilioSigningString(url: string, params: URLSearchParams): string {
  const byName = new Map<string, Set<string>>();
  for (const [name, value] of params) {
    let values = byName.get(name);
    if (!values) byName.set(name, (values = new Set()));
    values.add(value);
  }
  let data = url;
  // Plain UTF-16 code-unit order, as twilio-node's Array.prototype.sort().
  for (const name of [...byName.keys()].sort()) {
    for (const value of [...byName.get(name)!].sort()) data += name + value;
  }
  return data;
}

function twilioBodyHashFromUrl(url: string): string | null {
  try {
    return new URL(url).searchParams.get("bodySHA256");
  } catch {
    return null;
  }
}

/** Appends `bodySHA256=<hex sha256 of the raw body>` the way Twilio does for JSON-body webhooks. */
export async function withTwilioBodyHash(url: string, rawBody: string): Promise<string> {
  const hash = toHex(await sha256(rawBody));
  return `${url}${url.includes("?") ? "&" : "?"}bodySHA256=${hash}`;
}

/**
 * Signs a Twilio delivery to `url` (the exact URL Twilio calls, query included). For a JSON body
 * the URL must already carry `bodySHA256` (see withTwilioBodyHash) and only the URL is signed.
 */
export async function signTwilio(url: string, payload: TwilioPayload, authToken: string): Promise<string> {
  requireSecret(authToken, "Twilio auth token");
  if (isJsonPayload(payload)) {
    if (twilioBodyHashFromUrl(url) === null) throw new Error("a JSON-body Twilio URL must carry bodySHA256 (use withTwilioBodyHash)");
    return toBase64(await hmacSha1(authToken, twilioSigningString(url, new URLSearchParams())));
  }
  return toBase64(await hmacSha1(authToken, twilioSigningString(url, payload)));
}

/**
 * Verifies X-Twilio-Signature. `url` is the PUBLIC URL Twilio called (see public-url.ts), query
 * string included; `payload` the parsed form body (an empty URLSearchParams for GET), or
 * `{ jsonBody }` for JSON-body webhooks, where the URL's `bodySHA256` must also equal the hex
 * SHA-256 of the raw body. Twilio has no timestamp: dedupe on MessageSid/CallSid.
 */
export async function verifyTwilio(
  url: string,
  payload: TwilioPayload,
  signatureHeader: string | null | undefined,
  authToken: string,
): Promise<VerifyResult> {
  requireSecret(authToken, "Twilio auth token");
  const header = present(signatureHeader);
  if (!header) return fail("missing");
  // base64 of a 20-byte HMAC-SHA1, padded, exactly as Twilio sends it (twilio-node compares text).
  const presented = /^[A-Za-z0-9+/]{27}=$/.test(header) ? fromBase64(header) : null;
  if (!presented) return fail("malformed");

  let params = payload instanceof URLSearchParams ? payload : new URLSearchParams();
  let bodyOk = true;
  if (isJsonPayload(payload)) {
    const claimed = twilioBodyHashFromUrl(url);
    if (claimed === null) return fail("missing");
    const actual = toHex(await sha256(payload.jsonBody));
    bodyOk = timingSafeEqual(utf8(claimed.toLowerCase()), utf8(actual));
    params = new URLSearchParams();
  }

  let signatureOk = false;
  for (const candidate of twilioUrlVariants(url)) {
    const expected = await hmacSha1(authToken, twilioSigningString(candidate, params));
    // No early exit: every variant costs the same whether or not an earlier one matched.
    signatureOk = timingSafeEqual(expected, presented) || signatureOk;
  }
  return signatureOk && bodyOk ? OK : fail("mismatch");
}

// ---------------------------------------------------------------------------------------------
// Cal.com: X-Cal-Signature-256 = lowercase hex HMAC-SHA256(secret, raw body)
// ---------------------------------------------------------------------------------------------

/** What Cal.com puts in the header when the webhook has no secret. */
export const CAL_NO_SECRET = "no-secret-provided";

export async function signCalCom(rawBody: string, secret: string): Promise<string> {
  requireSecret(secret, "Cal.com webhook secret");
  return toHex(await hmacSha256(secret, rawBody));
}

export async function verifyCalCom(rawBody: string, signatureHeader: string | null | undefined, secret: string): Promise<VerifyResult> {
  requireSecret(secret, "Cal.com webhook secret");
  const header = present(signatureHeader);
  // A webhook saved without a secret is unsigned, whatever else it carries.
  if (!header || header === CAL_NO_SECRET) return fail("missing");
  const presented = header.length === 64 ? fromHex(header) : null;
  if (!presented) return fail("malformed");
  return timingSafeEqual(await hmacSha256(secret, rawBody), presented) ? OK : fail("mismatch");
}

// ---------------------------------------------------------------------------------------------
// Calendly: Calendly-Webhook-Signature: t=<unix s>,v1=<hex HMAC-SHA256(key, "t.body")>
// ---------------------------------------------------------------------------------------------

export const CALENDLY_TOLERANCE_SECONDS = 180;

function unixSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

function isFresh(timestampSeconds: number, now: Date, toleranceSeconds: number): boolean {
  return Math.abs(now.getTime() / 1000 - timestampSeconds) <= toleranceSeconds;
}

/** The Calendly-Webhook-Signature value for a delivery made at `timestamp`. */
export async function signCalendly(rawBody: string, signingKey: string, timestamp: Date): Promise<string> {
  requireSecret(signingKey, "Calendly signing key");
  const t = unixSeconds(timestamp);
  return `t=${t},v1=${toHex(await hmacSha256(signingKey, `${t}.${rawBody}`))}`;
}

export async function verifyCalendly(
  rawBody: string,
  signatureHeader: string | null | undefined,
  signingKey: string,
  now: Date = new Date(),
  toleranceSeconds: number = CALENDLY_TOLERANCE_SECONDS,
): Promise<VerifyResult> {
  requireSecret(signingKey, "Calendly signing key");
  const header = present(signatureHeader);
  if (!header) return fail("missing");
  let t: string | null = null;
  const v1: Bytes[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t") t = value;
    else if (key === "v1") {
      const bytes = value.length === 64 ? fromHex(value) : null;
      if (bytes) v1.push(bytes);
    }
  }
  if (t === null || !/^\d{1,12}$/.test(t) || v1.length === 0) return fail("malformed");
  const expected = await hmacSha256(signingKey, `${t}.${rawBody}`);
  let matched = false;
  for (const candidate of v1) matched = timingSafeEqual(expected, candidate) || matched;
  if (!matched) return fail("mismatch");
  return isFresh(Number(t), now, toleranceSeconds) ? OK : fail("stale");
}

// ---------------------------------------------------------------------------------------------
// Vapi: HMAC credential (HMACAuthenticationPlan) and legacy static X-Vapi-Secret
// ---------------------------------------------------------------------------------------------

/** Vapi's HMACAuthenticationPlan, with Vapi's defaults when a field is left out. */
export interface VapiHmacPlan {
  secret: string;
  algorithm?: "sha256" | "sha512" | "sha1";
  signatureHeader?: string;
  timestampHeader?: string;
  /** Default true: a timestamp header is sent, signed, and checked against the tolerance. */
  includeTimestamp?: boolean;
  /** Tokens {body}, {timestamp}, {method}, {url}, {svix-id}. Default "{timestamp}.{body}" ("{body}" without a timestamp). */
  payloadFormat?: string;
  encoding?: "hex" | "base64";
  /** e.g. "sha256=": stripped from the header before decoding. */
  prefix?: string;
  secretIsBase64?: boolean;
  /** Header carrying the {svix-id} token. */
  messageIdHeader?: string;
}

/** Request facts some payload formats sign ({method}, {url}). */
export interface VapiRequestContext {
  method?: string;
  url?: string;
}

export const VAPI_TOLERANCE_SECONDS = 300;
export const VAPI_LEGACY_SECRET_HEADER = "x-vapi-secret";

const VAPI_HASH: Record<NonNullable<VapiHmacPlan["algorithm"]>, HmacHash> = {
  sha1: "SHA-1",
  sha256: "SHA-256",
  sha512: "SHA-512",
};

interface ResolvedVapiPlan {
  key: Bytes;
  hash: HmacHash;
  signatureHeader: string;
  timestampHeader: string;
  includeTimestamp: boolean;
  payloadFormat: string;
  encoding: "hex" | "base64";
  prefix: string;
  messageIdHeader: string;
}

function resolveVapiPlan(plan: VapiHmacPlan): ResolvedVapiPlan {
  requireSecret(plan.secret, "Vapi HMAC secret");
  const key = plan.secretIsBase64 ? fromBase64(plan.secret) : utf8(plan.secret);
  if (!key || key.length === 0) throw new Error("Vapi HMAC secret is marked base64 but is not valid base64");
  const hash = VAPI_HASH[plan.algorithm ?? "sha256"];
  if (!hash) throw new Error(`unsupported Vapi HMAC algorithm: ${String(plan.algorithm)}`);
  const includeTimestamp = plan.includeTimestamp ?? true;
  return {
    key,
    hash,
    signatureHeader: plan.signatureHeader ?? "x-signature",
    timestampHeader: plan.timestampHeader ?? "x-timestamp",
    includeTimestamp,
    payloadFormat: plan.payloadFormat ?? (includeTimestamp ? "{timestamp}.{body}" : "{body}"),
    encoding: plan.encoding ?? "hex",
    prefix: plan.prefix ?? "",
    messageIdHeader: plan.messageIdHeader ?? "svix-id",
  };
}

/** Fills the template in one pass, so a body that itself contains "{timestamp}" is left alone. */
function vapiSigningString(format: string, tokens: Record<string, string>): string {
  return format.replace(/\{(body|timestamp|method|url|svix-id)\}/g, (_, name: string) => tokens[name] ?? "");
}

/**
 * Vapi timestamps are documented without a unit; the §16 vector is in seconds. A 13+ digit value
 * can only be milliseconds, so accept both rather than reject every delivery if Vapi sends ms.
 */
function vapiTimestampSeconds(value: string): number {
  const n = Number(value);
  return value.length >= 13 ? n / 1000 : n;
}

/** Headers Vapi would send with `rawBody` signed under `plan` at `timestamp`. */
export async function signVapi(
  rawBody: string,
  plan: VapiHmacPlan,
  timestamp: Date = new Date(),
  request: VapiRequestContext & { messageId?: string } = {},
): Promise<Record<string, string>> {
  const p = resolveVapiPlan(plan);
  const ts = p.includeTimestamp ? String(unixSeconds(timestamp)) : "";
  const message = vapiSigningString(p.payloadFormat, {
    body: rawBody,
    timestamp: ts,
    method: (request.method ?? "POST").toUpperCase(),
    url: request.url ?? "",
    "svix-id": request.messageId ?? "",
  });
  const mac = await hmac(p.hash, p.key, message);
  const headers: Record<string, string> = {
    [p.signatureHeader]: p.prefix + (p.encoding === "hex" ? toHex(mac) : toBase64(mac)),
  };
  if (p.includeTimestamp) headers[p.timestampHeader] = ts;
  if (request.messageId !== undefined) headers[p.messageIdHeader] = request.messageId;
  return headers;
}

/**
 * Verifies a Vapi HMAC-credential delivery: recompute HMAC(alg, secret, payloadFormat with tokens
 * filled), strip the prefix, compare in constant time, then require the timestamp within
 * `toleranceSeconds` (Vapi documents none; 5 minutes is our policy).
 */
export async function verifyVapi(
  rawBody: string,
  headers: Headers,
  plan: VapiHmacPlan,
  now: Date = new Date(),
  toleranceSeconds: number = VAPI_TOLERANCE_SECONDS,
  request: VapiRequestContext = {},
): Promise<VerifyResult> {
  const p = resolveVapiPlan(plan);
  const header = present(headers.get(p.signatureHeader));
  const timestamp = p.includeTimestamp ? present(headers.get(p.timestampHeader)) : "";
  if (!header || timestamp === null) return fail("missing");
  if (p.includeTimestamp && !/^\d{1,16}$/.test(timestamp)) return fail("malformed");
  if (p.prefix && !header.startsWith(p.prefix)) return fail("malformed");
  const encoded = header.slice(p.prefix.length);
  const presented = p.encoding === "hex" ? fromHex(encoded) : fromBase64(encoded);
  if (!presented || presented.length === 0) return fail("malformed");

  const message = vapiSigningString(p.payloadFormat, {
    body: rawBody,
    timestamp,
    method: (request.method ?? "POST").toUpperCase(),
    url: request.url ?? "",
    "svix-id": headers.get(p.messageIdHeader) ?? "",
  });
  if (!timingSafeEqual(await hmac(p.hash, p.key, message), presented)) return fail("mismatch");
  if (p.includeTimestamp && !isFresh(vapiTimestampSeconds(timestamp), now, toleranceSeconds)) return fail("stale");
  return OK;
}

/** Legacy `server.secret`: Vapi sends the secret itself in X-Vapi-Secret (or a header you named). */
export function verifyVapiLegacySecret(headers: Headers, secret: string, headerName: string = VAPI_LEGACY_SECRET_HEADER): Promise<VerifyResult> {
  return verifySecretToken(headers.get(headerName), secret);
}

// ---------------------------------------------------------------------------------------------
// PostGrid: the body is a compact HS256 JWT signed with the webhook secret (inferred, §13)
// ---------------------------------------------------------------------------------------------

export type PostGridVerifyResult = { ok: true; payload: unknown } | VerifyFailure;

/** Seconds of clock skew allowed if the token carries an `exp` claim. */
export const POSTGRID_EXP_LEEWAY_SECONDS = 60;

const JWT_HEADER_HS256 = '{"alg":"HS256","typ":"JWT"}';

function decodeJsonSegment(segment: string): unknown {
  const bytes = fromBase64Url(segment);
  if (!bytes) return undefined;
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return undefined;
  }
}

/** A PostGrid-style webhook body: HS256 JWT whose payload is the event (a string is used verbatim as the JSON). */
export async function signPostGridJwt(event: unknown, secret: string): Promise<string> {
  requireSecret(secret, "PostGrid webhook secret");
  const payloadJson = typeof event === "string" ? event : JSON.stringify(event);
  const signingInput = `${toBase64Url(utf8(JWT_HEADER_HS256))}.${toBase64Url(utf8(payloadJson))}`;
  return `${signingInput}.${toBase64Url(await hmacSha256(secret, signingInput))}`;
}

/**
 * Verifies a PostGrid webhook body and returns the decoded event. Only HS256 is accepted: a token
 * naming any other algorithm (notably "none", or RS256 for key-confusion) is refused whatever its
 * signature. An `exp` claim, if PostGrid adds one, is honoured.
 */
export async function verifyPostGridJwt(rawBody: string, secret: string, now: Date = new Date()): Promise<PostGridVerifyResult> {
  requireSecret(secret, "PostGrid webhook secret");
  const token = present(rawBody);
  if (!token) return fail("missing");
  const parts = token.split(".");
  if (parts.length !== 3) return fail("malformed");
  const [headerSegment, payloadSegment, signatureSegment] = parts as [string, string, string];
  const header = decodeJsonSegment(headerSegment);
  if (!header || typeof header !== "object" || Array.isArray(header)) return fail("malformed");
  const alg = (header as { alg?: unknown }).alg;
  if (typeof alg !== "string") return fail("malformed");
  if (alg !== "HS256") return fail("mismatch");
  const signature = fromBase64Url(signatureSegment);
  if (!signature || signature.length !== 32) return fail(signatureSegment === "" ? "mismatch" : "malformed");
  const expected = await hmacSha256(secret, `${headerSegment}.${payloadSegment}`);
  if (!timingSafeEqual(expected, signature)) return fail("mismatch");
  const payload = decodeJsonSegment(payloadSegment);
  if (payload === undefined) return fail("malformed");
  const exp = (payload as { exp?: unknown } | null)?.exp;
  if (typeof exp === "number" && now.getTime() / 1000 > exp + POSTGRID_EXP_LEEWAY_SECONDS) return fail("stale");
  return { ok: true, payload };
}
