// Standard Webhooks signing for our outbound client webhooks (shared/webhooks/standard-webhooks.ts):
// the spec's signed content and header format, tolerance both ways, rotation (several secrets and
// several signatures), failure reasons without throws, and agreement in both directions with the
// reference `standardwebhooks` npm package (1.1.1), on fixed and on fast-check generated inputs.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Webhook } from "standardwebhooks";
import {
  generateWebhookSecret,
  signStandardWebhook,
  standardWebhookKey,
  verifyStandardWebhook,
} from "../../shared/webhooks/standard-webhooks.ts";
import { fromBase64, hmacSha256, toBase64, utf8 } from "../../shared/webhooks/verify.ts";

// The published Standard Webhooks / Svix test vector (the package reproduces it below).
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const T = 1614265330;
const BODY = '{"test": 2432232314}';
// Its expected signature.
const REFERENCE_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

const at = (seconds: number) => new Date(seconds * 1000);
const nowSeconds = () => Math.floor(Date.now() / 1000);
const asHeaders = (h: Record<string, string>) => new Headers(h);

function flipBit(bytes: Uint8Array, index: number, bit: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[index % out.length]! ^= 1 << (bit % 8);
  return out;
}

describe("signStandardWebhook", () => {
  it("matches the reference signature and the spec's signed content", async () => {
    const headers = await signStandardWebhook(SECRET, ID, at(T), BODY);
    expect(headers).toEqual({ "webhook-id": ID, "webhook-timestamp": String(T), "webhook-signature": REFERENCE_SIGNATURE });
    const key = fromBase64(SECRET.slice("whsec_".length))!;
    expect(headers["webhook-signature"]).toBe(`v1,${toBase64(await hmacSha256(key, `${ID}.${T}.${BODY}`))}`);
    // the package computes the same
    expect(new Webhook(SECRET).sign(ID, at(T), BODY)).toBe(REFERENCE_SIGNATURE);
  });

  it("truncates sub-second timestamps and signs once per secret when rotating", async () => {
    const other = generateWebhookSecret();
    const headers = await signStandardWebhook([SECRET, other], ID, new Date(T * 1000 + 999), BODY);
    expect(headers["webhook-timestamp"]).toBe(String(T));
    const [first, second] = headers["webhook-signature"].split(" ");
    expect(first).toBe(REFERENCE_SIGNATURE);
    expect(second).toBe(new Webhook(other).sign(ID, at(T), BODY));
  });

  it("refuses an empty id, no secrets, or a secret that is not base64", async () => {
    await expect(signStandardWebhook(SECRET, "", at(T), BODY)).rejects.toThrow(/webhook-id/);
    await expect(signStandardWebhook([], ID, at(T), BODY)).rejects.toThrow(/secret/);
    await expect(signStandardWebhook("whsec_not*base64", ID, at(T), BODY)).rejects.toThrow(/base64/);
    await expect(signStandardWebhook("whsec_", ID, at(T), BODY)).rejects.toThrow(/non-empty/);
  });
});

describe("generateWebhookSecret", () => {
  it("makes distinct whsec_ secrets of 32 random bytes that the package accepts", () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    expect(a).not.toBe(b);
    expect(standardWebhookKey(a)).toHaveLength(32);
    expect(standardWebhookKey(generateWebhookSecret(24))).toHaveLength(24);
    expect(() => new Webhook(a)).not.toThrow();
    expect(() => generateWebhookSecret(16)).toThrow();
    expect(() => generateWebhookSecret(65)).toThrow();
  });

  it("the whsec_ prefix is optional when reading a key", () => {
    expect(standardWebhookKey(SECRET.slice("whsec_".length))).toEqual(standardWebhookKey(SECRET));
  });
});

describe("verifyStandardWebhook", () => {
  const signed = (extra: Record<string, string> = {}) => ({
    "webhook-id": ID,
    "webhook-timestamp": String(T),
    "webhook-signature": REFERENCE_SIGNATURE,
    ...extra,
  });

  it("accepts the reference delivery with an injected now, within 5 minutes either way", async () => {
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed()), at(T))).toEqual({ ok: true });
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed()), at(T + 300))).toEqual({ ok: true });
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed()), at(T - 300))).toEqual({ ok: true });
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed()), at(T + 301))).toEqual({ ok: false, reason: "stale" });
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed()), at(T - 301))).toEqual({ ok: false, reason: "stale" });
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed()), at(T + 3000), 3600)).toEqual({ ok: true });
    // default now is the real clock, long after 2021
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed()))).toEqual({ ok: false, reason: "stale" });
  });

  it("accepts any matching v1 signature among several, and any of several secrets", async () => {
    const other = generateWebhookSecret();
    const multi = signed({ "webhook-signature": `v1a,ignoredAsymmetric v1,${toBase64(new Uint8Array(32))}  ${REFERENCE_SIGNATURE}` });
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(multi), at(T))).toEqual({ ok: true });
    expect(await verifyStandardWebhook([other, SECRET], BODY, asHeaders(signed()), at(T))).toEqual({ ok: true });
    expect(await verifyStandardWebhook(other, BODY, asHeaders(signed()), at(T))).toEqual({ ok: false, reason: "mismatch" });
  });

  it("one flipped body byte, another id or another timestamp → mismatch", async () => {
    const bytes = utf8(BODY);
    bytes[3]! ^= 1;
    const flipped = new TextDecoder().decode(bytes);
    expect(await verifyStandardWebhook(SECRET, flipped, asHeaders(signed()), at(T))).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed({ "webhook-id": "msg_other" })), at(T))).toEqual({
      ok: false,
      reason: "mismatch",
    });
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed({ "webhook-timestamp": String(T + 1) })), at(T))).toEqual({
      ok: false,
      reason: "mismatch",
    });
  });

  it("missing headers → missing; garbage → malformed; never a throw", async () => {
    for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
      const h = signed();
      delete (h as Record<string, string>)[name];
      expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(h), at(T))).toEqual({ ok: false, reason: "missing" });
    }
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed({ "webhook-timestamp": "soon" })), at(T))).toEqual({
      ok: false,
      reason: "malformed",
    });
    expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed({ "webhook-timestamp": "1614265330.5" })), at(T))).toEqual({
      ok: false,
      reason: "malformed",
    });
    for (const sig of ["garbage", "v2,abc", "v1,not base64!", `v1,${toBase64(new Uint8Array(16))}`, "v1,"]) {
      expect(await verifyStandardWebhook(SECRET, BODY, asHeaders(signed({ "webhook-signature": sig })), at(T))).toEqual({
        ok: false,
        reason: "malformed",
      });
    }
  });

  it("the package's verify accepts what we sign, and we accept what it signs", async () => {
    const secret = generateWebhookSecret();
    const wh = new Webhook(secret);
    const now = new Date();
    const body = JSON.stringify({ type: "lead.booked", data: { leadId: "l_1", startsAt: "2026-12-01T01:00:00Z" } });
    const ours = await signStandardWebhook(secret, "msg_ours", now, body);
    expect(wh.verify(body, ours)).toEqual(JSON.parse(body));
    expect(() => wh.verify(body + " ", ours)).toThrow();

    const theirs = {
      "webhook-id": "msg_theirs",
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "webhook-signature": wh.sign("msg_theirs", now, body),
    };
    expect(await verifyStandardWebhook(secret, body, asHeaders(theirs), now)).toEqual({ ok: true });
  });

  const secretArb = fc.uint8Array({ minLength: 24, maxLength: 64 }).map((b) => `whsec_${toBase64(b)}`);
  const idArb = fc.stringMatching(/^msg_[A-Za-z0-9]{1,24}$/);

  it("property: sign-then-verify ok, and the package agrees both ways", async () => {
    await fc.assert(
      fc.asyncProperty(secretArb, idArb, fc.string({ unit: "grapheme", maxLength: 200 }), async (secret, id, body) => {
        const now = new Date();
        const headers = await signStandardWebhook(secret, id, now, body);
        expect(await verifyStandardWebhook(secret, body, asHeaders(headers), now)).toEqual({ ok: true });
        const wh = new Webhook(secret);
        expect(() => wh.verify(body, headers, { jsonParse: false })).not.toThrow();
        expect(wh.sign(id, now, body)).toBe(headers["webhook-signature"]);
      }),
      { numRuns: 150 },
    );
  });

  it("property: any body change or signature bit flip fails here and in the package", async () => {
    await fc.assert(
      fc.asyncProperty(
        secretArb,
        idArb,
        fc.string({ unit: "grapheme", maxLength: 100 }),
        fc.string({ unit: "grapheme", minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.nat(7),
        async (secret, id, body, suffix, index, bit) => {
          const now = new Date();
          const headers = await signStandardWebhook(secret, id, now, body);
          const wh = new Webhook(secret);
          const changedBody = body + suffix;
          expect(await verifyStandardWebhook(secret, changedBody, asHeaders(headers), now)).toEqual({ ok: false, reason: "mismatch" });
          expect(() => wh.verify(changedBody, headers, { jsonParse: false })).toThrow();
          const sig = fromBase64(headers["webhook-signature"].slice(3))!;
          const bad = { ...headers, "webhook-signature": `v1,${toBase64(flipBit(sig, index, bit))}` };
          expect(await verifyStandardWebhook(secret, body, asHeaders(bad), now)).toEqual({ ok: false, reason: "mismatch" });
          expect(() => wh.verify(body, bad, { jsonParse: false })).toThrow();
        },
      ),
      { numRuns: 150 },
    );
  });

  it("property: arbitrary header strings never throw and never verify", async () => {
    const headerValue = fc.string({ unit: "binary", maxLength: 120 }).filter((s) => {
      try {
        new Headers({ x: s });
        return true;
      } catch {
        return false;
      }
    });
    await fc.assert(
      fc.asyncProperty(headerValue, headerValue, headerValue, async (id, ts, sig) => {
        const headers = new Headers({ "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig });
        const result = await verifyStandardWebhook(SECRET, BODY, headers, at(T));
        expect(result.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
    // ...nor with the timestamp and id right but the signature arbitrary
    await fc.assert(
      fc.asyncProperty(headerValue, async (sig) => {
        fc.pre(sig.trim() !== REFERENCE_SIGNATURE);
        const result = await verifyStandardWebhook(SECRET, BODY, asHeaders(signed({ "webhook-signature": sig })), at(T));
        expect(result.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});
