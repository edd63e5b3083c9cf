// Inbound webhook signature checks (shared/webhooks/verify.ts) and the public-URL rebuild
// (shared/webhooks/public-url.ts): every providers.md §16 vector, the failure reasons (missing,
// malformed, mismatch, stale - never a throw on caller input), scheme details (Twilio repeated
// params, default port, bodySHA256; Vapi plan options; PostGrid alg), fast-check properties, and
// agreement with the official twilio SDK's validateRequest and with jose for the PostGrid JWT.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import twilio from "twilio";
import { parse as parseQuery } from "node:querystring";
import { jwtVerify, SignJWT } from "jose";
import {
  CAL_NO_SECRET,
  fromBase64,
  fromBase64Url,
  fromHex,
  hmacSha1,
  hmacSha256,
  hmacSha512,
  sha256,
  signCalCom,
  signCalendly,
  signPostGridJwt,
  signTwilio,
  signVapi,
  timingSafeEqual,
  toBase64,
  toBase64Url,
  toHex,
  twilioSigningString,
  twilioUrlVariants,
  utf8,
  verifyCalCom,
  verifyCalendly,
  verifyPostGridJwt,
  verifySecretToken,
  verifyTwilio,
  verifyVapi,
  verifyVapiLegacySecret,
  withTwilioBodyHash,
  type VapiHmacPlan,
} from "../../shared/webhooks/verify.ts";
import { publicFunctionsBaseUrl, publicUrlForRequest, publicWebhookUrl } from "../../shared/webhooks/public-url.ts";

// --- §16 vectors ---------------------------------------------------------------------------------

const TWILIO = {
  token: "12345",
  url: "https://mycompany.com/myapp.php?foo=1&bar=2",
  urlWithPort: "https://mycompany.com:443/myapp.php?foo=1&bar=2",
  params: { CallSid: "CA1234567890ABCDE", Caller: "+12349013030", Digits: "1234", From: "+12349013030", To: "+18005551212" },
  signingString:
    "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+12349013030Digits1234From+12349013030To+18005551212",
  signature: "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
  signatureWithPort: "EpDEmp1PyjDYp77YxYU3GILBWzE=",
};
const CAL = {
  secret: "cal_test_secret",
  body: '{"triggerEvent":"BOOKING_CREATED","createdAt":"2026-01-01T00:00:00.000Z","payload":{"uid":"abc123"}}',
  signature: "a4890dc9a9ae7e1ec2829500cd28ab8e8fc07c6feadcf2aa4b7eb55e626b5515",
};
const CALENDLY = {
  key: "calendly_test_signing_key",
  t: 1767225600,
  body: '{"event":"invitee.created","payload":{"email":"a@b.com"}}',
  header: "t=1767225600,v1=9d73351335b941389f1346bf01e42e1f7fa9e3ede311fa02309391ab63f7d63c",
};
const VAPI = {
  secret: "vapi_test_secret",
  timestamp: "1767225600",
  body: '{"message":{"type":"status-update","status":"ended"}}',
  signature: "1b61874a71d29d84c7fa15f1aa53ef362f34f2d73047e447ecdf4cedcc88280f",
};
const POSTGRID = {
  secret: "postgrid_test_webhook_secret",
  payload: '{"id":"event_test1","type":"letter.updated","data":{"id":"letter_test1","status":"printing"}}',
  token:
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6ImV2ZW50X3Rlc3QxIiwidHlwZSI6ImxldHRlci51cGRhdGVkIiwiZGF0YSI6eyJpZCI6ImxldHRlcl90ZXN0MSIsInN0YXR1cyI6InByaW50aW5nIn19.ajbgSWHe2O3dUhCHVhAPUjci3m7NCYDSVdtC33VP5t4",
};

const atSeconds = (s: number) => new Date(s * 1000);
const VECTOR_NOW = atSeconds(1767225600 + 30);

/** Flips one bit of a byte array (a guaranteed-different signature of the same length). */
function flipBit(bytes: Uint8Array, index: number, bit: number): Uint8Array {
  const out = new Uint8Array(bytes);
  out[index % out.length]! ^= 1 << (bit % 8);
  return out;
}

/** A different string of (about) the same shape: change one character, or append one to "". */
function mutate(text: string, index: number, replacement: string): string {
  if (text.length === 0) return replacement;
  const i = index % text.length;
  const ch = text[i] === replacement ? (replacement === "a" ? "b" : "a") : replacement;
  return text.slice(0, i) + ch + text.slice(i + 1);
}

/** Flips the lowest bit of one byte of a string's UTF-8 (for "one flipped body byte"). */
function flipBodyByte(body: string, index: number): string {
  const bytes = utf8(body);
  bytes[index % bytes.length]! ^= 1;
  return new TextDecoder().decode(bytes);
}

/** Header values that a real request could carry (Headers rejects CR, LF, NUL and non-Latin-1). */
const headerValue = fc.string({ unit: "binary", maxLength: 120 }).filter((s) => {
  try {
    new Headers({ x: s });
    return true;
  } catch {
    return false;
  }
});

// --- helpers -------------------------------------------------------------------------------------

describe("byte helpers", () => {
  it("timingSafeEqual compares bytes exactly and rejects different lengths", () => {
    expect(timingSafeEqual(utf8("abc"), utf8("abc"))).toBe(true);
    expect(timingSafeEqual(utf8("abc"), utf8("abd"))).toBe(false);
    expect(timingSafeEqual(utf8("abc"), utf8("abcd"))).toBe(false);
    expect(timingSafeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  });

  it("HMAC helpers match RFC 4231 / RFC 2202 test case 2", async () => {
    expect(toHex(await hmacSha256("Jefe", "what do ya want for nothing?"))).toBe(
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
    expect(toHex(await hmacSha1("Jefe", "what do ya want for nothing?"))).toBe("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    expect(toHex(await hmacSha512("Jefe", "what do ya want for nothing?"))).toBe(
      "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    );
    expect(toHex(await sha256(""))).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    await expect(hmacSha256("", "x")).rejects.toThrow(/empty/);
  });

  it("encoders round-trip and the decoders reject junk and non-canonical text", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        expect(fromHex(toHex(bytes))).toEqual(bytes);
        expect(fromBase64(toBase64(bytes))).toEqual(bytes);
        expect(fromBase64Url(toBase64Url(bytes))).toEqual(bytes);
      }),
    );
    expect(fromHex("abc")).toBeNull();
    expect(fromHex("zz")).toBeNull();
    expect(fromBase64("a")).toBeNull();
    expect(fromBase64("ab=c")).toBeNull();
    expect(fromBase64("QR==")).toBeNull(); // unused bits set: only "QQ==" encodes 0x41
    expect(fromBase64("QQ==")).toEqual(new Uint8Array([0x41]));
    expect(fromBase64Url("a+b")).toBeNull();
  });
});

describe("verifySecretToken (ClickSend / Salesforge URL token, Unipile header)", () => {
  it("accepts the exact token and nothing else", async () => {
    expect(await verifySecretToken("s3cr3t-token", "s3cr3t-token")).toEqual({ ok: true });
    expect(await verifySecretToken("s3cr3t-tokeN", "s3cr3t-token")).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifySecretToken("s3cr3t-token ", "s3cr3t-token")).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifySecretToken("s3cr3t", "s3cr3t-token")).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifySecretToken(null, "s3cr3t-token")).toEqual({ ok: false, reason: "missing" });
    expect(await verifySecretToken(undefined, "s3cr3t-token")).toEqual({ ok: false, reason: "missing" });
    expect(await verifySecretToken("", "s3cr3t-token")).toEqual({ ok: false, reason: "missing" });
  });

  it("throws on an empty expected token: a misconfiguration must not accept or silently reject", async () => {
    await expect(verifySecretToken("", "")).rejects.toThrow(/not configured/);
  });

  it("a presented token equals the expected one exactly when it is accepted (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), async (a, b) => {
        expect((await verifySecretToken(a, b)).ok).toBe(a === b);
      }),
    );
  });
});

// --- Twilio --------------------------------------------------------------------------------------

describe("verifyTwilio", () => {
  const params = () => new URLSearchParams(TWILIO.params);

  it("builds the §16 signing string and signs both port variants", async () => {
    expect(twilioSigningString(TWILIO.url, params())).toBe(TWILIO.signingString);
    expect(await signTwilio(TWILIO.url, params(), TWILIO.token)).toBe(TWILIO.signature);
    expect(await signTwilio(TWILIO.urlWithPort, params(), TWILIO.token)).toBe(TWILIO.signatureWithPort);
  });

  it("accepts the §16 vector with and without the explicit :443, whichever URL we rebuilt", async () => {
    for (const url of [TWILIO.url, TWILIO.urlWithPort]) {
      for (const sig of [TWILIO.signature, TWILIO.signatureWithPort]) {
        expect(await verifyTwilio(url, params(), sig, TWILIO.token)).toEqual({ ok: true });
      }
    }
  });

  it("default-port rule: only :443 for https and :80 for http; other ports must match", () => {
    expect(twilioUrlVariants("https://a.example/x?y=1")).toEqual(["https://a.example/x?y=1", "https://a.example:443/x?y=1"]);
    expect(twilioUrlVariants("https://a.example:443/x")).toEqual(["https://a.example:443/x", "https://a.example/x"]);
    expect(twilioUrlVariants("http://a.example/x")).toEqual(["http://a.example/x", "http://a.example:80/x"]);
    expect(twilioUrlVariants("http://a.example:443/x")).toEqual(["http://a.example:443/x"]);
    expect(twilioUrlVariants("https://a.example:8443/x")).toEqual(["https://a.example:8443/x"]);
    expect(twilioUrlVariants("https://u:p@[::1]/x#rc=3")).toEqual(["https://u:p@[::1]/x", "https://u:p@[::1]:443/x"]);
  });

  it("rejects a signature made for a non-default port when verifying without it, and http:443", async () => {
    const sig = await signTwilio("https://a.example:8443/hook", params(), TWILIO.token);
    expect(await verifyTwilio("https://a.example/hook", params(), sig, TWILIO.token)).toEqual({ ok: false, reason: "mismatch" });
    const sigHttp = await signTwilio("http://a.example:443/hook", params(), TWILIO.token);
    expect(await verifyTwilio("http://a.example/hook", params(), sigHttp, TWILIO.token)).toEqual({ ok: false, reason: "mismatch" });
  });

  it("ignores the URL fragment (connection overrides are not signed)", async () => {
    expect(await verifyTwilio(`${TWILIO.url}#rc=3&rp=all`, params(), TWILIO.signature, TWILIO.token)).toEqual({ ok: true });
  });

  it("signs repeated names once per distinct value, values sorted, regardless of arrival order", async () => {
    const a = new URLSearchParams("MediaUrl=b&To=%2B1&MediaUrl=a&MediaUrl=b&Body=hi+there");
    expect(twilioSigningString("https://x.test/h", a)).toBe("https://x.test/hBodyhi thereMediaUrlaMediaUrlbTo+1");
    const b = new URLSearchParams("Body=hi+there&MediaUrl=a&MediaUrl=b&To=%2B1");
    const sig = await signTwilio("https://x.test/h", a, TWILIO.token);
    expect(await signTwilio("https://x.test/h", b, TWILIO.token)).toBe(sig);
    expect(await verifyTwilio("https://x.test/h", b, sig, TWILIO.token)).toEqual({ ok: true });
    // ...and agrees with the SDK on the parsed form body.
    expect(twilio.validateRequest(TWILIO.token, sig, "https://x.test/h", parseQuery(a.toString()))).toBe(true);
  });

  it("a GET (no body params) signs just the URL", async () => {
    const url = "https://x.test/voice?CallSid=CA1&From=%2B61400000000";
    const sig = toBase64(await hmacSha1(TWILIO.token, url));
    expect(await verifyTwilio(url, new URLSearchParams(), sig, TWILIO.token)).toEqual({ ok: true });
  });

  it("one changed param, URL, token or query → mismatch", async () => {
    const changed = params();
    changed.set("Digits", "1235");
    expect(await verifyTwilio(TWILIO.url, changed, TWILIO.signature, TWILIO.token)).toEqual({ ok: false, reason: "mismatch" });
    const extra = params();
    extra.append("Extra", "");
    expect(await verifyTwilio(TWILIO.url, extra, TWILIO.signature, TWILIO.token)).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyTwilio(TWILIO.url.replace("foo=1", "foo=2"), params(), TWILIO.signature, TWILIO.token)).toEqual({
      ok: false,
      reason: "mismatch",
    });
    expect(await verifyTwilio("https://mycompany.com/myapp.php", params(), TWILIO.signature, TWILIO.token)).toEqual({
      ok: false,
      reason: "mismatch",
    });
    expect(await verifyTwilio(TWILIO.url, params(), TWILIO.signature, "54321")).toEqual({ ok: false, reason: "mismatch" });
  });

  it("missing / malformed headers are reported, never thrown", async () => {
    for (const h of [null, undefined, "", "   "]) {
      expect(await verifyTwilio(TWILIO.url, params(), h, TWILIO.token)).toEqual({ ok: false, reason: "missing" });
    }
    for (const h of ["not base64!", "0/KCTR6DLpKmkAf8muzZqo1nDgQ", "AAAA", toBase64(new Uint8Array(32)), "0/KCTR6DLpKmkAf8muzZqo1nDgR="]) {
      expect(await verifyTwilio(TWILIO.url, params(), h, TWILIO.token)).toEqual({ ok: false, reason: "malformed" });
    }
    await expect(verifyTwilio(TWILIO.url, params(), TWILIO.signature, "")).rejects.toThrow(/not configured/);
  });

  describe("JSON body (bodySHA256 query variant)", () => {
    const body = '{"event":"message.delivered","sid":"SM123"}';

    it("signs the URL only and checks the body hash separately", async () => {
      const url = await withTwilioBodyHash("https://x.test/hook?a=1", body);
      expect(url).toBe(`https://x.test/hook?a=1&bodySHA256=${toHex(await sha256(body))}`);
      const sig = await signTwilio(url, { jsonBody: body }, TWILIO.token);
      expect(sig).toBe(toBase64(await hmacSha1(TWILIO.token, url)));
      expect(await verifyTwilio(url, { jsonBody: body }, sig, TWILIO.token)).toEqual({ ok: true });
      // the SDK's own JSON-body check agrees
      expect(twilio.validateRequestWithBody(TWILIO.token, sig, url, body)).toBe(true);
    });

    it("a flipped body byte fails even though the URL signature is valid", async () => {
      const url = await withTwilioBodyHash("https://x.test/hook", body);
      const sig = await signTwilio(url, { jsonBody: body }, TWILIO.token);
      expect(await verifyTwilio(url, { jsonBody: flipBodyByte(body, 5) }, sig, TWILIO.token)).toEqual({ ok: false, reason: "mismatch" });
    });

    it("a URL without bodySHA256 is missing its body hash; signing one throws", async () => {
      const sig = toBase64(await hmacSha1(TWILIO.token, "https://x.test/hook"));
      expect(await verifyTwilio("https://x.test/hook", { jsonBody: body }, sig, TWILIO.token)).toEqual({ ok: false, reason: "missing" });
      await expect(signTwilio("https://x.test/hook", { jsonBody: body }, TWILIO.token)).rejects.toThrow(/bodySHA256/);
    });

    it("a forged bodySHA256 (matching a different body) fails the URL signature", async () => {
      const url = await withTwilioBodyHash("https://x.test/hook", body);
      const sig = await signTwilio(url, { jsonBody: body }, TWILIO.token);
      const other = '{"event":"forged"}';
      const forgedUrl = await withTwilioBodyHash("https://x.test/hook", other);
      expect(await verifyTwilio(forgedUrl, { jsonBody: other }, sig, TWILIO.token)).toEqual({ ok: false, reason: "mismatch" });
    });
  });

  // Random form deliveries: names/values of any Unicode, repeated names, both port forms.
  const pair = fc.tuple(fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }), fc.string({ unit: "grapheme", maxLength: 20 }));
  const repeated = fc.tuple(fc.constantFrom("MediaUrl", "To", "Body"), fc.string({ maxLength: 8 }));
  const formPairs = fc.array(fc.oneof(pair, repeated), { maxLength: 12 });
  const twilioUrl = fc
    .record({
      scheme: fc.constantFrom("https", "http"),
      host: fc.constantFrom("mycompany.com", "abc.supabase.co", "127.0.0.1"),
      port: fc.constantFrom("none", "default"),
      path: fc.array(fc.stringMatching(/^[A-Za-z0-9_.-]{1,8}$/), { maxLength: 3 }),
      query: fc.array(fc.tuple(fc.stringMatching(/^[a-z]{1,5}$/), fc.stringMatching(/^[A-Za-z0-9]{0,6}$/)), { maxLength: 3 }),
    })
    .map(({ scheme, host, port, path, query }) => {
      const p = port === "none" ? "" : scheme === "https" ? ":443" : ":80";
      const q = query.length ? `?${query.map(([k, v]) => `${k}=${v}`).join("&")}` : "";
      return `${scheme}://${host}${p}/${path.join("/")}${q}`;
    });
  const token = fc.stringMatching(/^[0-9a-f]{32}$/);
  /** The delivery as it arrives: a form body, parsed by us (URLSearchParams) and by Express (querystring). */
  const toForm = (pairs: Array<[string, string]>) => new URLSearchParams(pairs).toString();

  it("property: sign-then-verify is ok for either port form; the twilio SDK agrees", async () => {
    await fc.assert(
      fc.asyncProperty(twilioUrl, formPairs, token, fc.boolean(), async (url, pairs, authToken, signOtherPort) => {
        const form = toForm(pairs);
        const signedUrl = signOtherPort ? twilioUrlVariants(url)[1]! : url;
        const sig = await signTwilio(signedUrl, new URLSearchParams(form), authToken);
        expect(await verifyTwilio(url, new URLSearchParams(form), sig, authToken)).toEqual({ ok: true });
        expect(twilio.validateRequest(authToken, sig, url, parseQuery(form))).toBe(true);
        // and the SDK's signature is ours
        expect(twilio.getExpectedTwilioSignature(authToken, signedUrl, parseQuery(form))).toBe(sig);
      }),
      { numRuns: 150 },
    );
  });

  it("property: any changed signature bit, param or token is rejected by us and by the SDK", async () => {
    await fc.assert(
      fc.asyncProperty(twilioUrl, formPairs, token, fc.nat(), fc.nat(7), pair, async (url, pairs, authToken, at, bit, extra) => {
        const form = toForm(pairs);
        const sig = await signTwilio(url, new URLSearchParams(form), authToken);
        const badSig = toBase64(flipBit(fromBase64(sig)!, at, bit));
        expect(await verifyTwilio(url, new URLSearchParams(form), badSig, authToken)).toEqual({ ok: false, reason: "mismatch" });
        expect(twilio.validateRequest(authToken, badSig, url, parseQuery(form))).toBe(false);

        const moreForm = toForm([...pairs, [`${extra[0]}~`, extra[1]]]);
        expect(await verifyTwilio(url, new URLSearchParams(moreForm), sig, authToken)).toEqual({ ok: false, reason: "mismatch" });
        expect(twilio.validateRequest(authToken, sig, url, parseQuery(moreForm))).toBe(false);

        const otherToken = mutate(authToken, at, "z");
        expect(await verifyTwilio(url, new URLSearchParams(form), sig, otherToken)).toEqual({ ok: false, reason: "mismatch" });
      }),
      { numRuns: 100 },
    );
  });

  it("property: never throws and never accepts on arbitrary header strings; agrees with the SDK", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 60 }), async (header) => {
        const result = await verifyTwilio(TWILIO.url, params(), header, TWILIO.token);
        expect(result.ok).toBe(false);
        expect(twilio.validateRequest(TWILIO.token, header, TWILIO.url, TWILIO.params)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

// --- Cal.com -------------------------------------------------------------------------------------

describe("verifyCalCom", () => {
  it("§16 vector: signs and verifies", async () => {
    expect(await signCalCom(CAL.body, CAL.secret)).toBe(CAL.signature);
    expect(await verifyCalCom(CAL.body, CAL.signature, CAL.secret)).toEqual({ ok: true });
  });

  it("one flipped body byte, a changed digit or the wrong secret → mismatch", async () => {
    expect(await verifyCalCom(flipBodyByte(CAL.body, 10), CAL.signature, CAL.secret)).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyCalCom(CAL.body + " ", CAL.signature, CAL.secret)).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyCalCom(CAL.body, mutate(CAL.signature, 0, "b"), CAL.secret)).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyCalCom(CAL.body, CAL.signature, "other")).toEqual({ ok: false, reason: "mismatch" });
  });

  it("rejects the no-secret marker, absent and garbage headers", async () => {
    expect(await verifyCalCom(CAL.body, CAL_NO_SECRET, CAL.secret)).toEqual({ ok: false, reason: "missing" });
    expect(await verifyCalCom(CAL.body, null, CAL.secret)).toEqual({ ok: false, reason: "missing" });
    expect(await verifyCalCom(CAL.body, "", CAL.secret)).toEqual({ ok: false, reason: "missing" });
    expect(await verifyCalCom(CAL.body, "sha256=" + CAL.signature, CAL.secret)).toEqual({ ok: false, reason: "malformed" });
    expect(await verifyCalCom(CAL.body, CAL.signature.slice(2), CAL.secret)).toEqual({ ok: false, reason: "malformed" });
    expect(await verifyCalCom(CAL.body, "z".repeat(64), CAL.secret)).toEqual({ ok: false, reason: "malformed" });
    await expect(verifyCalCom(CAL.body, CAL.signature, "")).rejects.toThrow();
  });

  it("property: sign-then-verify ok; body or signature mutations fail; junk headers never throw", async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "grapheme" }), fc.string({ minLength: 1 }), fc.nat(), fc.nat(7), async (body, secret, at, bit) => {
        const sig = await signCalCom(body, secret);
        expect(await verifyCalCom(body, sig, secret)).toEqual({ ok: true });
        expect((await verifyCalCom(mutate(body, at, "x"), sig, secret)).ok).toBe(false);
        expect(await verifyCalCom(body, toHex(flipBit(fromHex(sig)!, at, bit)), secret)).toEqual({ ok: false, reason: "mismatch" });
      }),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 80 }), async (header) => {
        expect((await verifyCalCom(CAL.body, header, CAL.secret)).ok).toBe(header.trim() === CAL.signature);
      }),
      { numRuns: 300 },
    );
  });
});

// --- Calendly ------------------------------------------------------------------------------------

describe("verifyCalendly", () => {
  it("§16 vector: signs and verifies with an injected now", async () => {
    expect(await signCalendly(CALENDLY.body, CALENDLY.key, atSeconds(CALENDLY.t))).toBe(CALENDLY.header);
    expect(await verifyCalendly(CALENDLY.body, CALENDLY.header, CALENDLY.key, VECTOR_NOW)).toEqual({ ok: true });
    // whitespace around parts and any part order
    const [t, v1] = CALENDLY.header.split(",");
    expect(await verifyCalendly(CALENDLY.body, ` ${v1} , ${t} `, CALENDLY.key, VECTOR_NOW)).toEqual({ ok: true });
  });

  it("3-minute window both ways: older or further in the future → stale", async () => {
    const at = (offset: number) => atSeconds(CALENDLY.t + offset);
    expect(await verifyCalendly(CALENDLY.body, CALENDLY.header, CALENDLY.key, at(180))).toEqual({ ok: true });
    expect(await verifyCalendly(CALENDLY.body, CALENDLY.header, CALENDLY.key, at(-180))).toEqual({ ok: true });
    expect(await verifyCalendly(CALENDLY.body, CALENDLY.header, CALENDLY.key, at(181))).toEqual({ ok: false, reason: "stale" });
    expect(await verifyCalendly(CALENDLY.body, CALENDLY.header, CALENDLY.key, at(-181))).toEqual({ ok: false, reason: "stale" });
    expect(await verifyCalendly(CALENDLY.body, CALENDLY.header, CALENDLY.key, at(3600), 7200)).toEqual({ ok: true });
    // default now is the real clock: a 2026-01-01 signature is long stale by then... or not yet valid
    expect((await verifyCalendly(CALENDLY.body, CALENDLY.header, CALENDLY.key)).ok).toBe(
      Math.abs(Date.now() / 1000 - CALENDLY.t) <= 180,
    );
  });

  it("a re-timestamped header (replay with a fresh t) fails the signature", async () => {
    const fresh = CALENDLY.t + 3600;
    const replay = CALENDLY.header.replace(`t=${CALENDLY.t}`, `t=${fresh}`);
    expect(await verifyCalendly(CALENDLY.body, replay, CALENDLY.key, atSeconds(fresh))).toEqual({ ok: false, reason: "mismatch" });
  });

  it("flipped body byte → mismatch; missing → missing; garbage → malformed", async () => {
    expect(await verifyCalendly(flipBodyByte(CALENDLY.body, 3), CALENDLY.header, CALENDLY.key, VECTOR_NOW)).toEqual({
      ok: false,
      reason: "mismatch",
    });
    expect(await verifyCalendly(CALENDLY.body, null, CALENDLY.key, VECTOR_NOW)).toEqual({ ok: false, reason: "missing" });
    for (const h of ["garbage", "t=1767225600", "v1=" + "a".repeat(64), "t=abc,v1=" + "a".repeat(64), "t=1767225600,v1=xyz", "t=,v1="]) {
      expect(await verifyCalendly(CALENDLY.body, h, CALENDLY.key, VECTOR_NOW)).toEqual({ ok: false, reason: "malformed" });
    }
    // an extra valid-looking v1 next to the real one is fine (key rotation style); two wrong ones are not
    const [t, v1] = CALENDLY.header.split(",");
    expect(await verifyCalendly(CALENDLY.body, `${t},v1=${"0".repeat(64)},${v1}`, CALENDLY.key, VECTOR_NOW)).toEqual({ ok: true });
    expect(await verifyCalendly(CALENDLY.body, `${t},v1=${"0".repeat(64)},v1=${"1".repeat(64)}`, CALENDLY.key, VECTOR_NOW)).toEqual({
      ok: false,
      reason: "mismatch",
    });
  });

  it("property: sign-then-verify ok at any time within tolerance; mutations fail; junk never throws", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "grapheme" }),
        fc.string({ minLength: 1 }),
        fc.integer({ min: 1_000_000_000, max: 4_000_000_000 }),
        fc.integer({ min: -180, max: 180 }),
        fc.nat(),
        fc.nat(7),
        async (body, key, t, skew, at, bit) => {
          const header = await signCalendly(body, key, atSeconds(t));
          const now = atSeconds(t + skew);
          expect(await verifyCalendly(body, header, key, now)).toEqual({ ok: true });
          expect((await verifyCalendly(mutate(body, at, "x"), header, key, now)).ok).toBe(false);
          const v1 = header.split("v1=")[1]!;
          const bad = `t=${t},v1=${toHex(flipBit(fromHex(v1)!, at, bit))}`;
          expect(await verifyCalendly(body, bad, key, now)).toEqual({ ok: false, reason: "mismatch" });
        },
      ),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 120 }), async (header) => {
        expect((await verifyCalendly(CALENDLY.body, header, CALENDLY.key, VECTOR_NOW)).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

// --- Vapi ----------------------------------------------------------------------------------------

describe("verifyVapi", () => {
  const plan: VapiHmacPlan = { secret: VAPI.secret };
  const vectorHeaders = () => new Headers({ "x-timestamp": VAPI.timestamp, "x-signature": VAPI.signature });

  it("§16 vector (defaults: sha256, hex, {timestamp}.{body})", async () => {
    expect(await signVapi(VAPI.body, plan, atSeconds(Number(VAPI.timestamp)))).toEqual({
      "x-signature": VAPI.signature,
      "x-timestamp": VAPI.timestamp,
    });
    expect(await verifyVapi(VAPI.body, vectorHeaders(), plan, VECTOR_NOW)).toEqual({ ok: true });
    // header names are case-insensitive on the wire
    const upper = new Headers({ "X-Timestamp": VAPI.timestamp, "X-Signature": VAPI.signature });
    expect(await verifyVapi(VAPI.body, upper, plan, VECTOR_NOW)).toEqual({ ok: true });
  });

  it("flipped body byte / wrong secret → mismatch; stale and future timestamps → stale", async () => {
    expect(await verifyVapi(flipBodyByte(VAPI.body, 7), vectorHeaders(), plan, VECTOR_NOW)).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyVapi(VAPI.body, vectorHeaders(), { secret: "nope" }, VECTOR_NOW)).toEqual({ ok: false, reason: "mismatch" });
    const t = Number(VAPI.timestamp);
    expect(await verifyVapi(VAPI.body, vectorHeaders(), plan, atSeconds(t + 300))).toEqual({ ok: true });
    expect(await verifyVapi(VAPI.body, vectorHeaders(), plan, atSeconds(t + 301))).toEqual({ ok: false, reason: "stale" });
    expect(await verifyVapi(VAPI.body, vectorHeaders(), plan, atSeconds(t - 301))).toEqual({ ok: false, reason: "stale" });
    expect(await verifyVapi(VAPI.body, vectorHeaders(), plan, atSeconds(t + 900), 1000)).toEqual({ ok: true });
    // a changed timestamp header is part of the signed string
    const moved = new Headers({ "x-timestamp": String(t + 1), "x-signature": VAPI.signature });
    expect(await verifyVapi(VAPI.body, moved, plan, VECTOR_NOW)).toEqual({ ok: false, reason: "mismatch" });
  });

  it("missing and malformed headers", async () => {
    expect(await verifyVapi(VAPI.body, new Headers(), plan, VECTOR_NOW)).toEqual({ ok: false, reason: "missing" });
    expect(await verifyVapi(VAPI.body, new Headers({ "x-signature": VAPI.signature }), plan, VECTOR_NOW)).toEqual({
      ok: false,
      reason: "missing",
    });
    expect(await verifyVapi(VAPI.body, new Headers({ "x-timestamp": VAPI.timestamp }), plan, VECTOR_NOW)).toEqual({
      ok: false,
      reason: "missing",
    });
    const bad = (ts: string, sig: string) => verifyVapi(VAPI.body, new Headers({ "x-timestamp": ts, "x-signature": sig }), plan, VECTOR_NOW);
    expect(await bad("yesterday", VAPI.signature)).toEqual({ ok: false, reason: "malformed" });
    expect(await bad("-1767225600", VAPI.signature)).toEqual({ ok: false, reason: "malformed" });
    expect(await bad(VAPI.timestamp, "xyz")).toEqual({ ok: false, reason: "malformed" });
    expect(await bad(VAPI.timestamp, VAPI.signature.slice(1))).toEqual({ ok: false, reason: "malformed" });
  });

  it("custom plans: sha512/sha1, base64, prefix, header names, base64 secret, {method}/{url}/{svix-id}", async () => {
    const now = atSeconds(2_000_000_000);
    const plans: VapiHmacPlan[] = [
      { secret: "k", algorithm: "sha512" },
      { secret: "k", algorithm: "sha1", encoding: "base64" },
      { secret: "k", prefix: "sha256=", signatureHeader: "x-vapi-signature", timestampHeader: "x-vapi-timestamp" },
      { secret: toBase64(utf8("raw-key-bytes")), secretIsBase64: true },
      { secret: "k", payloadFormat: "{method} {url}\n{svix-id}\n{timestamp}\n{body}", messageIdHeader: "svix-id" },
      { secret: "k", includeTimestamp: false },
    ];
    const request = { method: "POST", url: "https://x.test/functions/v1/vapi-webhook", messageId: "msg_1" };
    for (const p of plans) {
      const headers = new Headers(await signVapi(VAPI.body, p, now, request));
      expect(await verifyVapi(VAPI.body, headers, p, now, 300, request)).toEqual({ ok: true });
      expect((await verifyVapi(VAPI.body + " ", headers, p, now, 300, request)).ok).toBe(false);
    }
    // known values for the non-default algorithms
    const sha512 = await signVapi("b", { secret: "k", algorithm: "sha512" }, atSeconds(1));
    expect(sha512["x-signature"]).toBe(toHex(await hmacSha512("k", "1.b")));
    const b64 = await signVapi("b", { secret: "k", algorithm: "sha1", encoding: "base64", prefix: "v0=" }, atSeconds(1));
    expect(b64["x-signature"]).toBe("v0=" + toBase64(await hmacSha1("k", "1.b")));
    // the base64 secret is decoded before use
    const decoded = await signVapi("b", { secret: toBase64(utf8("raw")), secretIsBase64: true }, atSeconds(1));
    expect(decoded["x-signature"]).toBe(toHex(await hmacSha256("raw", "1.b")));
    // without the timestamp the body alone is signed and no freshness applies
    const noTs = await signVapi("b", { secret: "k", includeTimestamp: false }, atSeconds(1));
    expect(noTs).toEqual({ "x-signature": toHex(await hmacSha256("k", "b")) });
    // a wrong URL / method / message id fails when the format signs it
    const p = plans[4]!;
    const headers = new Headers(await signVapi(VAPI.body, p, now, request));
    expect(await verifyVapi(VAPI.body, headers, p, now, 300, { ...request, url: "https://evil.test/" })).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyVapi(VAPI.body, headers, p, now, 300, { ...request, method: "PUT" })).toEqual({ ok: false, reason: "mismatch" });
    headers.set("svix-id", "msg_2");
    expect(await verifyVapi(VAPI.body, headers, p, now, 300, request)).toEqual({ ok: false, reason: "mismatch" });
    // prefix required when configured
    const pre = plans[2]!;
    const preHeaders = new Headers(await signVapi(VAPI.body, pre, now));
    preHeaders.set("x-vapi-signature", preHeaders.get("x-vapi-signature")!.slice("sha256=".length));
    expect(await verifyVapi(VAPI.body, preHeaders, pre, now)).toEqual({ ok: false, reason: "malformed" });
  });

  it("the body is inserted verbatim: a body containing {timestamp} is not re-substituted", async () => {
    const body = '{"text":"{timestamp}.{body}"}';
    const headers = await signVapi(body, plan, atSeconds(100));
    expect(headers["x-signature"]).toBe(toHex(await hmacSha256(VAPI.secret, `100.${body}`)));
    expect(await verifyVapi(body, new Headers(headers), plan, atSeconds(100))).toEqual({ ok: true });
  });

  it("a millisecond timestamp is understood as milliseconds for the freshness check", async () => {
    const ms = "1767225600000";
    const sig = toHex(await hmacSha256(VAPI.secret, `${ms}.${VAPI.body}`));
    const headers = new Headers({ "x-timestamp": ms, "x-signature": sig });
    expect(await verifyVapi(VAPI.body, headers, plan, VECTOR_NOW)).toEqual({ ok: true });
    expect(await verifyVapi(VAPI.body, headers, plan, atSeconds(1767225600 + 301))).toEqual({ ok: false, reason: "stale" });
  });

  it("rejects an empty secret, a bad base64 secret or an unknown algorithm at configuration time", async () => {
    await expect(verifyVapi(VAPI.body, vectorHeaders(), { secret: "" }, VECTOR_NOW)).rejects.toThrow();
    await expect(verifyVapi(VAPI.body, vectorHeaders(), { secret: "!!", secretIsBase64: true }, VECTOR_NOW)).rejects.toThrow();
    await expect(
      verifyVapi(VAPI.body, vectorHeaders(), { secret: "k", algorithm: "md5" as unknown as "sha1" }, VECTOR_NOW),
    ).rejects.toThrow(/algorithm/);
  });

  it("legacy X-Vapi-Secret: exact static secret", async () => {
    expect(await verifyVapiLegacySecret(new Headers({ "X-Vapi-Secret": "legacy" }), "legacy")).toEqual({ ok: true });
    expect(await verifyVapiLegacySecret(new Headers({ "x-vapi-secret": "Legacy" }), "legacy")).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyVapiLegacySecret(new Headers(), "legacy")).toEqual({ ok: false, reason: "missing" });
    expect(await verifyVapiLegacySecret(new Headers({ authorization: "legacy" }), "legacy", "authorization")).toEqual({ ok: true });
  });

  it("property: sign-then-verify ok; body/signature mutations fail; junk headers never throw", async () => {
    const algorithm = fc.constantFrom("sha1" as const, "sha256" as const, "sha512" as const);
    const encoding = fc.constantFrom("hex" as const, "base64" as const);
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "grapheme" }),
        fc.string({ minLength: 1 }),
        algorithm,
        encoding,
        fc.integer({ min: 1_000_000_000, max: 4_000_000_000 }),
        fc.nat(),
        fc.nat(7),
        async (body, secret, alg, enc, t, at, bit) => {
          const p: VapiHmacPlan = { secret, algorithm: alg, encoding: enc };
          const now = atSeconds(t + 10);
          const signed = await signVapi(body, p, atSeconds(t));
          expect(await verifyVapi(body, new Headers(signed), p, now)).toEqual({ ok: true });
          expect((await verifyVapi(mutate(body, at, "x"), new Headers(signed), p, now)).ok).toBe(false);
          const raw = enc === "hex" ? fromHex(signed["x-signature"]!)! : fromBase64(signed["x-signature"]!)!;
          const flipped = flipBit(raw, at, bit);
          const badSig = enc === "hex" ? toHex(flipped) : toBase64(flipped);
          const bad = new Headers({ ...signed, "x-signature": badSig });
          expect(await verifyVapi(body, bad, p, now)).toEqual({ ok: false, reason: "mismatch" });
        },
      ),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(headerValue, headerValue, async (sig, ts) => {
        const result = await verifyVapi(VAPI.body, new Headers({ "x-signature": sig, "x-timestamp": ts }), plan, VECTOR_NOW);
        expect(result.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

// --- PostGrid ------------------------------------------------------------------------------------

describe("verifyPostGridJwt", () => {
  const segment = (json: string) => toBase64Url(utf8(json));

  it("§16 vector: signs the same token and returns the decoded event", async () => {
    expect(await signPostGridJwt(POSTGRID.payload, POSTGRID.secret)).toBe(POSTGRID.token);
    expect(await signPostGridJwt(JSON.parse(POSTGRID.payload), POSTGRID.secret)).toBe(POSTGRID.token);
    expect(await verifyPostGridJwt(POSTGRID.token, POSTGRID.secret)).toEqual({ ok: true, payload: JSON.parse(POSTGRID.payload) });
    // a trailing newline around the body is tolerated
    expect((await verifyPostGridJwt(`${POSTGRID.token}\n`, POSTGRID.secret)).ok).toBe(true);
  });

  it("alg none, other algorithms and an unsigned token are refused", async () => {
    const [, payload, sig] = POSTGRID.token.split(".");
    const none = `${segment('{"alg":"none","typ":"JWT"}')}.${payload}.`;
    expect(await verifyPostGridJwt(none, POSTGRID.secret)).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyPostGridJwt(`${segment('{"alg":"none"}')}.${payload}.${sig}`, POSTGRID.secret)).toEqual({
      ok: false,
      reason: "mismatch",
    });
    // a correctly HMAC'd token that claims another algorithm is still refused
    for (const alg of ["HS512", "RS256", "hs256"]) {
      const input = `${segment(JSON.stringify({ alg, typ: "JWT" }))}.${payload}`;
      const token = `${input}.${toBase64Url(await hmacSha256(POSTGRID.secret, input))}`;
      expect(await verifyPostGridJwt(token, POSTGRID.secret)).toEqual({ ok: false, reason: "mismatch" });
    }
    const [header] = POSTGRID.token.split(".");
    expect(await verifyPostGridJwt(`${header}.${payload}.`, POSTGRID.secret)).toEqual({ ok: false, reason: "mismatch" });
  });

  it("tampered payload, wrong secret → mismatch; missing and garbage bodies are reported", async () => {
    const [header, , sig] = POSTGRID.token.split(".");
    const forged = `${header}.${segment(POSTGRID.payload.replace("printing", "completed"))}.${sig}`;
    expect(await verifyPostGridJwt(forged, POSTGRID.secret)).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyPostGridJwt(POSTGRID.token, "wrong")).toEqual({ ok: false, reason: "mismatch" });
    expect(await verifyPostGridJwt(flipBodyByte(POSTGRID.token, 60), POSTGRID.secret)).toMatchObject({ ok: false });
    expect(await verifyPostGridJwt("", POSTGRID.secret)).toEqual({ ok: false, reason: "missing" });
    for (const body of [POSTGRID.payload, "a.b", "a.b.c.d", "!!.@@.##", `${segment("[1]")}.e30.${sig}`, `e30.e30.${sig}`, `${segment('{"alg":"HS256"}')}.e30.${sig}xx`]) {
      expect(await verifyPostGridJwt(body, POSTGRID.secret)).toEqual({ ok: false, reason: "malformed" });
    }
    // a validly signed token whose payload is not JSON
    const input = `${segment('{"alg":"HS256"}')}.${segment("not json")}`;
    const notJson = `${input}.${toBase64Url(await hmacSha256(POSTGRID.secret, input))}`;
    expect(await verifyPostGridJwt(notJson, POSTGRID.secret)).toEqual({ ok: false, reason: "malformed" });
  });

  it("honours an exp claim (with a minute of leeway)", async () => {
    const token = await signPostGridJwt({ id: "event_x", exp: 1767225600 }, POSTGRID.secret);
    expect((await verifyPostGridJwt(token, POSTGRID.secret, atSeconds(1767225600 + 60))).ok).toBe(true);
    expect(await verifyPostGridJwt(token, POSTGRID.secret, atSeconds(1767225600 + 61))).toEqual({ ok: false, reason: "stale" });
  });

  it("agrees with jose both ways", async () => {
    const key = utf8(POSTGRID.secret);
    const { payload } = await jwtVerify(POSTGRID.token, key, { algorithms: ["HS256"] });
    expect(payload).toEqual(JSON.parse(POSTGRID.payload));
    const joseToken = await new SignJWT({ id: "event_j", type: "postcard.updated" }).setProtectedHeader({ alg: "HS256" }).sign(key);
    expect(await verifyPostGridJwt(joseToken, POSTGRID.secret)).toEqual({ ok: true, payload: { id: "event_j", type: "postcard.updated" } });
    const hs512 = await new SignJWT({ id: "event_j" }).setProtectedHeader({ alg: "HS512" }).sign(utf8(POSTGRID.secret.repeat(3)));
    expect(await verifyPostGridJwt(hs512, POSTGRID.secret.repeat(3))).toEqual({ ok: false, reason: "mismatch" });
  });

  it("property: sign-then-verify returns the event; any changed character fails; junk never throws", async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue().map((data) => ({ id: "event_p", data })), fc.string({ minLength: 1 }), fc.nat(), async (event, secret, at) => {
        const token = await signPostGridJwt(event, secret);
        const result = await verifyPostGridJwt(token, secret);
        expect(result.ok).toBe(true);
        expect(result.ok && JSON.stringify(result.payload)).toBe(JSON.stringify(event));
        const i = at % token.length;
        // any other base64url character (or a dot) at any position breaks the token
        const swapped = token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
        expect((await verifyPostGridJwt(swapped, secret)).ok).toBe(false);
      }),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: "binary", maxLength: 200 }), async (body) => {
        expect((await verifyPostGridJwt(body, POSTGRID.secret)).ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

// --- public URL ----------------------------------------------------------------------------------

describe("publicWebhookUrl", () => {
  const base = "https://abc.supabase.co/functions/v1/";

  it("rebuilds base + function + path + the query exactly as received", () => {
    expect(publicWebhookUrl("twilio-webhook", "/sms", "?a=1&b=%2B61", base)).toBe(
      "https://abc.supabase.co/functions/v1/twilio-webhook/sms?a=1&b=%2B61",
    );
    expect(publicWebhookUrl("twilio-webhook", "sms", "a=1", base)).toBe("https://abc.supabase.co/functions/v1/twilio-webhook/sms?a=1");
    expect(publicWebhookUrl("cal", "", "", base)).toBe("https://abc.supabase.co/functions/v1/cal");
    expect(publicWebhookUrl("cal", "", "?", base)).toBe("https://abc.supabase.co/functions/v1/cal");
  });

  it("maps an incoming request (as the app or the gateway sees it) onto the public URL", () => {
    const expected = "https://abc.supabase.co/functions/v1/twilio-webhook/status?token=t1";
    expect(publicUrlForRequest("http://localhost:9999/twilio-webhook/status?token=t1", "twilio-webhook", base)).toBe(expected);
    expect(publicUrlForRequest(new Request("http://edge:8000/functions/v1/twilio-webhook/status?token=t1"), "twilio-webhook", base)).toBe(
      expected,
    );
    expect(publicUrlForRequest("http://edge/twilio-webhook", "twilio-webhook", base)).toBe(
      "https://abc.supabase.co/functions/v1/twilio-webhook",
    );
    // a function whose name is a prefix of another is not confused with it
    expect(publicUrlForRequest("http://edge/twilio-webhooks/x", "twilio-webhook", base)).toBe(
      "https://abc.supabase.co/functions/v1/twilio-webhook/twilio-webhooks/x",
    );
  });

  it("reads PUBLIC_FUNCTIONS_BASE_URL from the environment and refuses a missing or bad one", () => {
    const saved = process.env.PUBLIC_FUNCTIONS_BASE_URL;
    try {
      process.env.PUBLIC_FUNCTIONS_BASE_URL = "https://env.example/functions/v1";
      expect(publicWebhookUrl("vapi", "", "x=1")).toBe("https://env.example/functions/v1/vapi?x=1");
      delete process.env.PUBLIC_FUNCTIONS_BASE_URL;
      expect(() => publicWebhookUrl("vapi")).toThrow(/PUBLIC_FUNCTIONS_BASE_URL is not set/);
    } finally {
      if (saved === undefined) delete process.env.PUBLIC_FUNCTIONS_BASE_URL;
      else process.env.PUBLIC_FUNCTIONS_BASE_URL = saved;
    }
    expect(() => publicFunctionsBaseUrl("not a url")).toThrow(/not a URL/);
    expect(() => publicFunctionsBaseUrl("ftp://x/y")).toThrow(/http/);
    expect(() => publicFunctionsBaseUrl("https://x/y?z=1")).toThrow(/query/);
    expect(() => publicWebhookUrl("../etc", "", "", base)).toThrow(/function name/);
  });

  it("end to end: a Twilio delivery to the public URL verifies against the rebuilt URL, not req.url", async () => {
    const publicUrl = "https://abc.supabase.co/functions/v1/twilio-webhook/sms?client=c1";
    const form = new URLSearchParams({ MessageSid: "SM1", From: "+61400000000", Body: "STOP" });
    const sig = await signTwilio(publicUrl, form, "tok");
    const req = new Request("http://127.0.0.1:54321/twilio-webhook/sms?client=c1", { method: "POST", body: form });
    const rebuilt = publicUrlForRequest(req, "twilio-webhook", base);
    expect(rebuilt).toBe(publicUrl);
    const params = new URLSearchParams(await req.text());
    expect(await verifyTwilio(rebuilt, params, sig, "tok")).toEqual({ ok: true });
    expect(await verifyTwilio(req.url, params, sig, "tok")).toEqual({ ok: false, reason: "mismatch" });
  });
});
