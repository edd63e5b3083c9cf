// The DNCR (ACMA Real Time Access) client against the stateful SOAP sandbox on a local server:
// E.164 → national conversion, the envelope on the wire, Y/N/I mapping, system codes, chunking,
// the timeout → GetWashResult recovery (never a second charge), and the D1 30-day rule.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createDncrSandbox, DNCR_SERVER_ERROR_NUMBER, DNCR_SLOW_NUMBER, type DncrSandboxState } from "../../dev/sandbox/dncr.ts";
import {
  createDncrClient,
  DncrWashError,
  e164ToNational,
  nationalToE164,
  parseXml,
  washIsValidFor,
  xmlEscape,
  XmlParseError,
  type DncrConfig,
} from "../../shared/integrations/dncr.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";

const PASSWORD = `p<&"'>${Math.random().toString(36).slice(2)}`;
let server: ServerType;
let base: string;
let state: DncrSandboxState;
let slowState: DncrSandboxState;
let clock = Date.UTC(2026, 10, 24);
const wire: Array<{ url: string; headers: Headers; body: string }> = [];

function recordingFetch(): typeof fetch {
  return async (input, init) => {
    wire.push({ url: String(input), headers: new Headers(init?.headers), body: String(init?.body ?? "") });
    return fetch(input, init);
  };
}

function client(overrides: Partial<DncrConfig> = {}, path = "/dncr") {
  const calls: ProviderCall[] = [];
  const waits: number[] = [];
  const c = createDncrClient({
    baseUrl: `${base}${path}/dncrtelem/rtw/washing.cfc`,
    telemarketerId: "7654321",
    password: PASSWORD,
    redis: null,
    rateLimit: false,
    record: (call) => void calls.push(call),
    fetch: recordingFetch(),
    wait: async (ms) => {
      waits.push(ms);
      clock += ms;
    },
    ...overrides,
  });
  return { c, calls, waits };
}

beforeAll(async () => {
  const main = createDncrSandbox({ telemarketerId: "7654321", password: PASSWORD, balance: 10_000, registered: ["+61412345671"] });
  state = main.state;
  // A separate sandbox whose washes stay "still washing" for 45 s on a fake clock.
  const slow = createDncrSandbox({ telemarketerId: "7654321", password: PASSWORD, slowMs: 400, washingMs: 45_000, now: () => clock });
  slowState = slow.state;
  const quick = createDncrSandbox({ telemarketerId: "7654321", password: PASSWORD, slowMs: 400 });
  const root = new Hono();
  root.route("/dncr", main.app);
  root.route("/dncr-slow", slow.app);
  root.route("/dncr-quick", quick.app);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}`;
      resolve();
    });
  });
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe("numbers", () => {
  it("converts E.164 to the national format ACMA accepts, and back", () => {
    expect(e164ToNational("+61412345678")).toBe("0412345678");
    expect(e164ToNational("+61298765432")).toBe("0298765432");
    expect(e164ToNational("+611300123456")).toBe("1300123456");
    expect(e164ToNational("+14155550100")).toBeNull();
    expect(e164ToNational("0412345678")).toBeNull();
    expect(e164ToNational("+6141234")).toBeNull();
    expect(nationalToE164("(03) 9999-8888")).toBe("+61399998888");
    expect(nationalToE164("0412 345 678")).toBe("+61412345678");
    expect(nationalToE164("1800123456")).toBe("+611800123456");
    expect(nationalToE164("abc")).toBeNull();
  });
});

describe("washIsValidFor (compliance D1, Sydney dates)", () => {
  const at = (iso: string) => new Date(iso);
  it("accepts a wash exactly 30 Australian days before the call and refuses 31", () => {
    // 2026-03-01 10:00 AEDT … 2026-03-31 10:00 AEDT: 30 days
    expect(washIsValidFor(at("2026-02-28T23:00:00Z"), at("2026-03-30T23:00:00Z"))).toBe(true);
    expect(washIsValidFor(at("2026-02-28T23:00:00Z"), at("2026-03-31T23:00:00Z"))).toBe(false);
    expect(washIsValidFor(at("2026-03-30T23:00:00Z"), at("2026-03-30T23:00:00Z"))).toBe(true);
  });

  it("counts days on the Sydney calendar, not UTC, across Australian midnight", () => {
    // Wash 2026-06-01 00:30 AEST (= 2026-05-31 14:30Z). Call 2026-07-01 23:30 AEST (= 13:30Z): 30 AU days, 31 UTC days.
    expect(washIsValidFor(at("2026-05-31T14:30:00Z"), at("2026-07-01T13:30:00Z"))).toBe(true);
    // Call 2026-07-02 00:30 AEST (= 2026-07-01 14:30Z): still 2026-07-01 in UTC, but 31 AU days.
    expect(washIsValidFor(at("2026-05-31T14:30:00Z"), at("2026-07-01T14:30:00Z"))).toBe(false);
    // Wash 2026-05-31 23:30 AEST (= 13:30Z) is a day earlier in Sydney than 00:30 the next day.
    expect(washIsValidFor(at("2026-05-31T13:30:00Z"), at("2026-06-30T13:30:00Z"))).toBe(true);
    expect(washIsValidFor(at("2026-05-31T13:30:00Z"), at("2026-06-30T14:30:00Z"))).toBe(false);
  });

  it("refuses a wash after the call and invalid dates", () => {
    expect(washIsValidFor(at("2026-03-02T00:00:00Z"), at("2026-03-01T00:00:00Z"))).toBe(false);
    expect(washIsValidFor(new Date(Number.NaN), at("2026-03-01T00:00:00Z"))).toBe(false);
  });
});

describe("xml", () => {
  it("parses namespaces, entities and CDATA, and refuses DOCTYPE and broken documents", () => {
    const el = parseXml(`<?xml version="1.0"?><a:Root xmlns:a="x" b:attr="1 &amp; 2"><!-- c --><Child>x &lt;y&gt; &#65;<![CDATA[<raw>]]></Child></a:Root>`);
    expect(el.local).toBe("Root");
    expect(el.attrs["b:attr"]).toBe("1 & 2");
    expect(el.children[0].text).toBe("x <y> A<raw>");
    expect(() => parseXml(`<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>`)).toThrow(XmlParseError);
    expect(() => parseXml(`<a><b></a>`)).toThrow(XmlParseError);
    expect(() => parseXml(`<a>&bogus;</a>`)).toThrow(XmlParseError);
    expect(() => parseXml(`<a></a><b/>`)).toThrow(XmlParseError);
    expect(xmlEscape(`a\u0001b<&"'>`)).toBe("ab&lt;&amp;&quot;&apos;&gt;");
    expect(parseXml(`<x a="${xmlEscape(`<&"'>`)}">${xmlEscape("</x><y>")}</x>`)).toMatchObject({ attrs: { a: `<&"'>` }, text: "</x><y>" });
  });
});

describe("WashNumbers", () => {
  it("sends national numbers in an rtw SOAP envelope with the credentials escaped, and maps Y/N/I", async () => {
    const { c, calls } = client();
    wire.length = 0;
    const ref = `t-${Date.now()}-a`;
    const results = await c.washNumbers(["+61412345678", "+61412345670", "+61412345671", "+61512345678", "+61412345678"], ref);
    expect(results).toEqual([
      { phoneE164: "+61412345678", result: "not_registered" },
      { phoneE164: "+61412345670", result: "registered" },
      { phoneE164: "+61412345671", result: "registered" },
      { phoneE164: "+61512345678", result: "invalid" },
    ]);
    expect(wire).toHaveLength(1);
    const sent = wire[0];
    expect(sent.url).toBe(`${base}/dncr/dncrtelem/rtw/washing.cfc`);
    expect(sent.headers.get("soapaction")).toBe('""');
    expect(sent.headers.get("content-type")).toMatch(/^text\/xml/);
    expect(sent.body).toContain('xmlns:rtw="http://rtw.dncrtelem"');
    expect(sent.body).toContain("<rtw:WashNumbers ");
    expect(sent.body).toContain('<Number xsi:type="xsd:string">0412345678</Number>');
    expect(sent.body).not.toContain("+61");
    expect(sent.body).toContain(`<ClientReferenceId xsi:type="xsd:string">${ref}</ClientReferenceId>`);
    expect(sent.body).toContain("<TelemarketerId xsi:type=\"xsd:string\">7654321</TelemarketerId>");
    expect(sent.body).not.toContain(PASSWORD); // escaped, so the raw <&"'> never appears
    expect(sent.body).toContain("p&lt;&amp;&quot;&apos;&gt;");
    // the duplicate was washed (and charged) once
    expect(state.wash(ref)?.numbers).toHaveLength(4);
    expect(calls).toEqual([expect.objectContaining({ operation: "wash_numbers", credits: 4, costCents: 4 * 0.33, status: 200, error: null })]);
  });

  it("splits more than 200 numbers into calls of at most 200 under derived references", async () => {
    const { c } = client();
    const ref = `t-${Date.now()}-chunk`;
    const numbers = Array.from({ length: 450 }, (_, i) => `+614${String(10_000_000 + i).padStart(8, "0")}`);
    const before = state.charged();
    const results = await c.washNumbers(numbers, ref);
    expect(results).toHaveLength(450);
    expect(new Set(results.map((r) => r.phoneE164))).toEqual(new Set(numbers));
    expect(results.filter((r) => r.result === "registered").every((r) => r.phoneE164.endsWith("0"))).toBe(true);
    expect([1, 2, 3].map((k) => state.wash(`${ref}-${k}`)?.numbers.length)).toEqual([200, 200, 50]);
    expect(state.charged() - before).toBe(450);
  });

  it("rejects non-Australian numbers and a missing reference before any I/O", async () => {
    const { c } = client();
    wire.length = 0;
    for (const call of [() => c.washNumbers(["+14155550100"], "t-x"), () => c.washNumbers(["0412345678"], "t-x"), () => c.washNumbers(["+61412345678"], " ")]) {
      const err = await call().catch((e) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect(err).toMatchObject({ code: "invalid_request", retryable: false });
    }
    expect(wire).toHaveLength(0);
  });

  it.each([
    ["abc", 1],
    ["3333", 3],
    ["4444", 4],
    ["5555", 5],
  ])("TelemarketerId %s → system code %i: non-retryable, nothing charged", async (id, code) => {
    const { c } = client({ telemarketerId: id });
    const before = state.charged();
    const err = await c.washNumbers(["+61412345678"], `t-${Date.now()}-code${code}`).catch((e) => e);
    expect(err).toBeInstanceOf(DncrWashError);
    expect(err).toMatchObject({ code: "provider", retryable: false, pending: false });
    expect(err.message).toContain(`system code ${code}`);
    expect(state.charged()).toBe(before);
  });

  it("a wrong password is code 3", async () => {
    const { c } = client({ password: "wrong" });
    const err = await c.washNumbers(["+61412345678"], `t-${Date.now()}-pw`).catch((e) => e);
    expect(err).toMatchObject({ code: "provider", retryable: false });
    expect(err.message).toContain("system code 3");
  });

  it("a SOAP Server fault (HTTP 500) is retryable, not retried, and not charged", async () => {
    const { c, calls } = client();
    const before = state.charged();
    const err = await c.washNumbers([DNCR_SERVER_ERROR_NUMBER], `t-${Date.now()}-500`).catch((e) => e);
    expect(err).toBeInstanceOf(DncrWashError);
    expect(err).toMatchObject({ code: "http", status: 500, retryable: true, pending: false });
    expect(err.message).toContain("simulated server error");
    expect(calls).toHaveLength(1);
    expect(state.charged()).toBe(before);
  });

  it("a body that is not SOAP is malformed", async () => {
    const { c } = client({ fetch: async () => new Response("<html>maintenance</html>", { status: 200 }) });
    const err = await c.washNumbers(["+61412345678"], `t-${Date.now()}-html`).catch((e) => e);
    expect(err).toMatchObject({ code: "malformed", retryable: false });
  });
});

describe("timeout recovery", () => {
  it("after a timeout asks GetWashResult (after waiting 30 s) instead of resubmitting: one charge", async () => {
    const { c, calls, waits } = client({ timeoutMs: 100 }, "/dncr-quick");
    wire.length = 0;
    const ref = `t-${Date.now()}-slow`;
    const results = await c.washNumbers([DNCR_SLOW_NUMBER, "+61412345670"], ref);
    expect(results).toEqual([
      { phoneE164: DNCR_SLOW_NUMBER, result: "not_registered" },
      { phoneE164: "+61412345670", result: "registered" },
    ]);
    expect(waits).toEqual([30_000]);
    const ops = wire.map((w) => /<rtw:(\w+)/.exec(w.body)?.[1]);
    expect(ops).toEqual(["WashNumbers", "GetWashResult"]);
    // the charge is recorded once, on the call that got the answer
    expect(calls.map((x) => [x.operation, x.credits, x.error === null])).toEqual([
      ["wash_numbers", 0, false],
      ["get_wash_result", 2, true],
    ]);
  });

  it("keeps waiting while ACMA says 'still washing' (code 4) without counting it as a failure", async () => {
    const { c, waits } = client({ timeoutMs: 100 }, "/dncr-slow");
    const ref = `t-${Date.now()}-washing`;
    const results = await c.washNumbers([DNCR_SLOW_NUMBER], ref);
    expect(results).toEqual([{ phoneE164: DNCR_SLOW_NUMBER, result: "not_registered" }]);
    expect(waits).toEqual([30_000, 30_000]);
    expect(slowState.calls().filter((x) => x.clientReferenceId === ref).map((x) => [x.operation, x.code])).toEqual([
      ["WashNumbers", 0],
      ["GetWashResult", 4],
      ["GetWashResult", 0],
    ]);
    expect(slowState.wash(ref)?.submissions).toBe(1);
  });

  it("gives up after two GetWashResult misses with a pending error naming the reference, never resubmitting", async () => {
    // The wash never reaches ACMA: the request hangs until the client's timeout.
    const hanging: typeof fetch = async (input, init) => {
      const body = String(init?.body ?? "");
      if (body.includes("<rtw:WashNumbers")) {
        return await new Promise<Response>((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
      }
      wire.push({ url: String(input), headers: new Headers(init?.headers), body });
      return fetch(input, init);
    };
    const { c, waits } = client({ timeoutMs: 100, fetch: hanging });
    wire.length = 0;
    const ref = `t-${Date.now()}-lost`;
    const err = await c.washNumbers(["+61412345678"], ref).catch((e) => e);
    expect(err).toBeInstanceOf(DncrWashError);
    expect(err).toMatchObject({ clientReferenceId: ref, pending: true, retryable: true, code: "timeout" });
    expect(err.message).toContain("never resubmit");
    expect(waits).toEqual([30_000, 30_000]);
    expect(wire.map((w) => /<rtw:(\w+)/.exec(w.body)?.[1])).toEqual(["GetWashResult", "GetWashResult"]);
    expect(state.wash(ref)).toBeUndefined();
  });
});

describe("GetWashResult and GetAccountBalance", () => {
  it("answers a stored wash, an unknown reference, and the balance after charges", async () => {
    const { c, calls } = client();
    const ref = `t-${Date.now()}-stored`;
    await c.washNumbers(["+61298765432", "+61298765430"], ref);
    const outcome = await c.getWashResult(ref);
    expect(outcome).toEqual({
      state: "complete",
      clientReferenceId: ref,
      results: [
        { phoneE164: "+61298765432", result: "not_registered" },
        { phoneE164: "+61298765430", result: "registered" },
      ],
    });
    expect(await c.getWashResult(`${ref}-nope`)).toEqual({ state: "unknown_reference", clientReferenceId: `${ref}-nope` });
    expect(state.wash(ref)?.submissions).toBe(1);
    expect(await c.getAccountBalance()).toBe(state.balance());
    expect(state.balance()).toBe(10_000 - state.charged());
    expect(calls.filter((x) => x.operation === "get_wash_result").every((x) => x.credits === 0)).toBe(true);
  });

  it("balance with bad credentials is a non-retryable system code", async () => {
    const { c } = client({ telemarketerId: "9999999" });
    await expect(c.getAccountBalance()).rejects.toMatchObject({ code: "provider", retryable: false });
  });

  it("without credentials every call fails not_configured before any I/O", async () => {
    const c = createDncrClient({ baseUrl: "https://www.donotcall.gov.au/dncrtelem/rtw/washing.cfc", telemarketerId: "", password: "", redis: null, record: () => {} });
    await expect(c.getAccountBalance()).rejects.toMatchObject({ code: "not_configured", retryable: false });
  });
});
