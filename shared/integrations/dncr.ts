// Australian Do Not Call Register (ACMA) Real Time Access client (providers.md §12, compliance D1–D3):
// the SOAP/RPC-encoded washing service at donotcall.gov.au. Numbers are washed before any call or text
// to an Australian number; a wash result is relied on for 30 days (washIsValidFor).
//
// Three rules shape this file:
//  - Every submitted number costs a credit, valid or not, so numbers are validated and de-duplicated
//    here before anything is sent.
//  - ClientReferenceId is the recovery handle. A WashNumbers call is never retried or resubmitted: after
//    a timeout the client waits and asks GetWashResult for the stored answer (ACMA's procedure: wait
//    ≥30 s, ask; on another timeout or "reference does not exist" wait 30 s and ask again; then give up
//    and leave it to a later GetWashResult). The waits are injectable so tests run fast.
//  - The response is an apachesoap:Document whose exact layout ACMA does not publish (providers.md:
//    "capture a real response before finalising the parser"). The parser looks for the elements by
//    name, anywhere in the return value: <Number Result="Y|N|I">…</Number> (as seen in public
//    integrations) and a system code element or attribute (SystemCode, ReturnCode, ErrorCode).
//
// XML is built and parsed by the small hand-rolled helpers below (no XML package): values are always
// escaped, DOCTYPEs are refused (no entity expansion), only the five predefined entities and numeric
// references are decoded.
//
// providerFetch sends JSON bodies and parses JSON answers; the SOAP codec (soapFetch) sits in the
// spec's fetch and turns the JSON-encoded envelope back into XML on the way out and the XML answer into
// {xml} on the way back, so timeouts, the shared rate limit and provider_calls rows are providerFetch's.
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { readEnv } from "../config/env.ts";
import { PROVIDERS } from "../config/providers.ts";
import {
  isLocalUrl,
  ProviderError,
  providerFetch,
  rateLimitFromEnv,
  truncate,
  type ProviderCallContext,
  type ProviderErrorCode,
  type ProviderSpec,
  type RateLimitSpec,
  type RecordCall,
  type RetrySpec,
  type SqlTag,
} from "./provider-http.ts";

/** An environment variable, or undefined when unset or blank. */
function envValue(name: string): string | undefined {
  return readEnv(name)?.trim() || undefined;
}

export const DNCR_DEFAULT_ENDPOINT = "https://www.donotcall.gov.au/dncrtelem/rtw/washing.cfc";
export const DNCR_NAMESPACE = "http://rtw.dncrtelem";
/** ACMA's hard limit per WashNumbers call. */
export const DNCR_MAX_NUMBERS_PER_CALL = 500;
/** ACMA's recommended batch: larger calls time out under load. */
export const DNCR_CHUNK_SIZE = 200;
/** ACMA: wait at least 30 s after a timeout before asking GetWashResult, and 30 s between asks. */
export const DNCR_RECOVERY_DELAYS_MS = [30_000, 30_000] as const;

// ---------------------------------------------------------------------------------------------
// Public shapes
// ---------------------------------------------------------------------------------------------

export type DncrResult = "registered" | "not_registered" | "invalid";

export interface DncrWashResult {
  phoneE164: string;
  result: DncrResult;
}

export type DncrWashOutcome =
  | { state: "complete"; clientReferenceId: string; results: DncrWashResult[] }
  /** System code 4: washing started but not finished; ask again later. */
  | { state: "pending"; clientReferenceId: string }
  /** System code 2: ACMA has no wash under this reference (yet). */
  | { state: "unknown_reference"; clientReferenceId: string };

/**
 * A wash that did not complete. `pending` true: ACMA may have washed (and charged) it — recover with
 * getWashResult(clientReferenceId), never by washing the same numbers again. `completed` holds the
 * results of the earlier chunks of the same washNumbers call, which were washed and charged.
 */
export class DncrWashError extends ProviderError {
  readonly clientReferenceId: string;
  readonly pending: boolean;
  readonly completed: DncrWashResult[];

  constructor(init: {
    clientReferenceId: string;
    pending: boolean;
    completed: DncrWashResult[];
    code: ProviderErrorCode;
    retryable: boolean;
    message: string;
    status?: number;
    cause?: unknown;
  }) {
    super({
      provider: "dncr", operation: "wash_numbers", code: init.code, retryable: init.retryable, status: init.status,
      message: init.message, cause: init.cause,
    });
    this.name = "DncrWashError";
    this.clientReferenceId = init.clientReferenceId;
    this.pending = init.pending;
    this.completed = init.completed;
  }
}

export interface DncrConfig {
  /** The WSDL endpoint URL (DNCR_BASE_URL), e.g. https://www.donotcall.gov.au/dncrtelem/rtw/washing.cfc */
  baseUrl?: string;
  /** Account ID (numeric). */
  telemarketerId?: string;
  /** Only when washing under a wash-only sub-account; sent empty otherwise. */
  washOnlyUserId?: string;
  /** The TelemarketerPassword (DNCR_API_KEY). */
  password?: string;
  /** Default 60 calls/min shared (DNCR_RATE_LIMIT overrides): ACMA asks for load spread across seconds. */
  rateLimit?: RateLimitSpec | false;
  /** Retries of the read-only calls (GetAccountBalance). WashNumbers and GetWashResult are never retried here. */
  retry?: RetrySpec;
  /** Per WashNumbers call (default 60 s: 200 numbers can take a while). */
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  fetch?: typeof fetch;
  /** What one wash credit costs in US cents (default 0.33: plan D, A$5,058 per 1,000,000 ≈ 0.51 AU cents). */
  centsPerNumber?: number;
  /** Waits before each GetWashResult after a timeout (default 30 s, 30 s). */
  recoveryDelaysMs?: readonly number[];
  /** Extra polls allowed while ACMA answers code 4 "still washing" (default 5); they don't count as failures. */
  maxPendingPolls?: number;
  /** How the client waits (tests inject a fake). */
  wait?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Numbers per WashNumbers call (default 200, at most 500). */
  chunkSize?: number;
}

export interface DncrClient {
  /**
   * Washes E.164 Australian numbers. Duplicates are sent once. More than chunkSize numbers go in several
   * calls, the k-th (k ≥ 1) under `${clientReferenceId}-${k}`; a single call uses clientReferenceId itself.
   * Throws ProviderError invalid_request (before any I/O) for numbers that are not +61 E.164, and
   * DncrWashError when a call fails.
   */
  washNumbers(numbersE164: string[], clientReferenceId: string, ctx?: ProviderCallContext): Promise<DncrWashResult[]>;
  /** The stored answer of an earlier WashNumbers call; costs nothing. */
  getWashResult(clientReferenceId: string, ctx?: ProviderCallContext & { chargedNumbers?: number }): Promise<DncrWashOutcome>;
  /** Wash credits left. */
  getAccountBalance(ctx?: ProviderCallContext): Promise<number>;
}

// ---------------------------------------------------------------------------------------------
// Numbers: E.164 ↔ Australian national format
// ---------------------------------------------------------------------------------------------

/** The same pattern dncr_washes.phone_e164 enforces. */
const AU_E164 = /^\+61[0-9]{8,10}$/;

/**
 * "+61412345678" → "0412345678"; "+611300123456" → "1300123456" (13/1300/1800 numbers have no trunk
 * prefix). null when the input is not a +61 E.164 number.
 */
export function e164ToNational(e164: string): string | null {
  const v = e164.trim();
  if (!AU_E164.test(v)) return null;
  const nsn = v.slice(3);
  return nsn.startsWith("1") ? nsn : `0${nsn}`;
}

/** "0412 345 678", "(03) 9999-8888", "1300123456" → E.164, or null. */
export function nationalToE164(national: string): string | null {
  const digits = national.replace(/[\s()\-]/g, "");
  if (!/^[0-9]+$/.test(digits)) return null;
  const e164 = digits.startsWith("0") ? `+61${digits.slice(1)}` : digits.startsWith("1") ? `+61${digits}` : null;
  return e164 && AU_E164.test(e164) ? e164 : null;
}

// ---------------------------------------------------------------------------------------------
// D1: a wash is valid for calls on a day when it was done within the 30 days ending on that day
// ---------------------------------------------------------------------------------------------

const SYDNEY_DATE = new Intl.DateTimeFormat("en-CA", { timeZone: "Australia/Sydney", year: "numeric", month: "2-digit", day: "2-digit" });

/** Days since 1970-01-01 of the calendar date in Sydney at this instant. */
function sydneyDayNumber(at: Date): number {
  const parts = Object.fromEntries(SYDNEY_DATE.formatToParts(at).map((p) => [p.type, p.value]));
  return Math.round(Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day)) / 86_400_000);
}

/**
 * Compliance D1 (DNCR Act s11(3)): a call at callAt may rely on a wash done at washedAt when the wash
 * happened no later than the call and its Australian (Sydney) calendar date is at most 30 days before
 * the call's Australian date: washed_day ≥ call_day − 30. Only the date matters, not the time of day.
 * (The result must also be "not_registered"; that is the caller's check.)
 */
export function washIsValidFor(washedAt: Date, callAt: Date): boolean {
  if (Number.isNaN(washedAt.getTime()) || Number.isNaN(callAt.getTime())) return false;
  if (washedAt.getTime() > callAt.getTime()) return false;
  return sydneyDayNumber(callAt) - sydneyDayNumber(washedAt) <= 30;
}

// ---------------------------------------------------------------------------------------------
// Minimal XML: escape, build, parse
// ---------------------------------------------------------------------------------------------

export interface XmlElement {
  /** As written, with any prefix ("soapenv:Body"). */
  name: string;
  /** Without the prefix ("Body"). */
  local: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (entities decoded, CDATA included), not its children's. */
  text: string;
}

// Characters XML 1.0 forbids: dropped rather than sent, since ACMA would reject the whole call.
// deno-lint-ignore no-control-regex
const XML_FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g;

/** Escapes text or an attribute value. */
export function xmlEscape(value: string): string {
  return value.replace(XML_FORBIDDEN, "")
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

export class XmlParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "XmlParseError";
  }
}

const NAMED_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeEntities(raw: string): string {
  return raw.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[A-Za-z]+);/g, (whole, ent: string) => {
    if (ent[0] === "#") {
      const code = ent[1] === "x" || ent[1] === "X" ? parseInt(ent.slice(2), 16) : parseInt(ent.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    const named = NAMED_ENTITIES[ent];
    if (named === undefined) throw new XmlParseError(`unknown entity &${ent};`);
    return named;
  });
}

const NAME = /[A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?/y;
const MAX_DEPTH = 64;

/** Parses a document into its root element. Comments, processing instructions and CDATA are handled; DOCTYPE is refused. */
export function parseXml(source: string): XmlElement {
  const s = source.charCodeAt(0) === 0xfeff ? source.slice(1) : source;
  let i = 0;
  const fail = (what: string): never => {
    throw new XmlParseError(`${what} at offset ${i}`);
  };
  const skipSpace = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\n" || s[i] === "\r" || s[i] === "\t")) i++;
  };
  const skipPast = (end: string) => {
    const at = s.indexOf(end, i);
    if (at < 0) fail(`unterminated construct, expected "${end}"`);
    i = at + end.length;
  };
  const readName = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(s);
    if (!m) return fail("expected a name");
    i += m[0].length;
    return m[0];
  };
  const skipMisc = () => {
    for (;;) {
      skipSpace();
      if (s.startsWith("<?", i)) skipPast("?>");
      else if (s.startsWith("<!--", i)) skipPast("-->");
      else if (s.startsWith("<!", i)) fail("DOCTYPE and declarations are not accepted");
      else return;
    }
  };

  const parseElement = (depth: number): XmlElement => {
    if (depth > MAX_DEPTH) fail("nesting too deep");
    if (s[i] !== "<") fail("expected '<'");
    i++;
    const name = readName();
    const attrs: Record<string, string> = {};
    for (;;) {
      skipSpace();
      if (s.startsWith("/>", i)) {
        i += 2;
        return { name, local: localOf(name), attrs, children: [], text: "" };
      }
      if (s[i] === ">") {
        i++;
        break;
      }
      const attr = readName();
      skipSpace();
      if (s[i] !== "=") fail("expected '=' after an attribute name");
      i++;
      skipSpace();
      const quote = s[i];
      if (quote !== '"' && quote !== "'") fail("expected a quoted attribute value");
      const end = s.indexOf(quote, i + 1);
      if (end < 0) fail("unterminated attribute value");
      const raw = s.slice(i + 1, end);
      if (raw.includes("<")) fail("'<' in an attribute value");
      attrs[attr] = decodeEntities(raw);
      i = end + 1;
    }
    const children: XmlElement[] = [];
    let text = "";
    for (;;) {
      if (i >= s.length) fail(`unclosed element <${name}>`);
      if (s.startsWith("</", i)) {
        i += 2;
        const closing = readName();
        if (closing !== name) fail(`</${closing}> closes <${name}>`);
        skipSpace();
        if (s[i] !== ">") fail("expected '>'");
        i++;
        return { name, local: localOf(name), attrs, children, text };
      }
      if (s.startsWith("<!--", i)) skipPast("-->");
      else if (s.startsWith("<![CDATA[", i)) {
        const end = s.indexOf("]]>", i + 9);
        if (end < 0) fail("unterminated CDATA");
        text += s.slice(i + 9, end);
        i = end + 3;
      } else if (s.startsWith("<?", i)) skipPast("?>");
      else if (s.startsWith("<!", i)) fail("declarations are not accepted inside elements");
      else if (s[i] === "<") children.push(parseElement(depth + 1));
      else {
        const end = s.indexOf("<", i);
        const stop = end < 0 ? s.length : end;
        text += decodeEntities(s.slice(i, stop));
        i = stop;
      }
    }
  };

  skipMisc();
  if (s[i] !== "<") fail("no root element");
  const root = parseElement(0);
  skipMisc();
  if (i < s.length) fail("content after the root element");
  return root;
}

function localOf(name: string): string {
  const colon = name.indexOf(":");
  return colon < 0 ? name : name.slice(colon + 1);
}

/** Direct children with this local name (case-insensitive). */
export function xmlChildren(el: XmlElement, local: string): XmlElement[] {
  const want = local.toLowerCase();
  return el.children.filter((c) => c.local.toLowerCase() === want);
}

/** Every descendant with this local name, document order; `skip` prunes subtrees. */
export function xmlFindAll(el: XmlElement, local: string, skip?: (e: XmlElement) => boolean): XmlElement[] {
  const want = local.toLowerCase();
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    for (const c of e.children) {
      if (skip?.(c)) continue;
      if (c.local.toLowerCase() === want) out.push(c);
      walk(c);
    }
  };
  walk(el);
  return out;
}

export function xmlFind(el: XmlElement, local: string, skip?: (e: XmlElement) => boolean): XmlElement | undefined {
  return xmlFindAll(el, local, skip)[0];
}

/** An attribute by local name (case-insensitive), whatever its prefix. */
export function xmlAttr(el: XmlElement, local: string): string | undefined {
  const want = local.toLowerCase();
  for (const [k, v] of Object.entries(el.attrs)) if (localOf(k).toLowerCase() === want) return v;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// SOAP envelopes
// ---------------------------------------------------------------------------------------------

export type DncrOperation = "GetAccountBalance" | "WashNumbers" | "GetWashResult";

const SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/";

/**
 * An RPC/encoded request as the WSDL describes it: the operation element in the rtw namespace, its
 * parts as xsd:string elements in parameterOrder, NumbersToWash as a soapenc array of <Number>.
 */
export function buildSoapRequest(operation: DncrOperation, parts: ReadonlyArray<readonly [string, string]>, numbers?: readonly string[]): string {
  const body = parts.map(([k, v]) => `<${k} xsi:type="xsd:string">${xmlEscape(v)}</${k}>`);
  if (numbers) {
    body.push(
      `<NumbersToWash xsi:type="rtw:ArrayOf_xsd_anyType" soapenc:arrayType="xsd:anyType[${numbers.length}]">` +
        numbers.map((n) => `<Number xsi:type="xsd:string">${xmlEscape(n)}</Number>`).join("") +
        `</NumbersToWash>`,
    );
  }
  return `<?xml version="1.0" encoding="UTF-8"?>` +
    `<soapenv:Envelope xmlns:soapenv="${SOAP_ENV}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" ` +
    `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:soapenc="${SOAP_ENC}" xmlns:rtw="${DNCR_NAMESPACE}">` +
    `<soapenv:Header/><soapenv:Body><rtw:${operation} soapenv:encodingStyle="${SOAP_ENC}">${body.join("")}</rtw:${operation}>` +
    `</soapenv:Body></soapenv:Envelope>`;
}

export interface SoapFault {
  code: string;
  message: string;
}

/** The SOAP Body's first element: the operation's response (or request), or a Fault. */
export function soapBodyElement(root: XmlElement): XmlElement {
  if (root.local !== "Envelope") throw new XmlParseError(`root element is <${root.name}>, not a SOAP Envelope`);
  const body = xmlChildren(root, "Body")[0];
  if (!body) throw new XmlParseError("SOAP Envelope without a Body");
  const first = body.children[0];
  if (!first) throw new XmlParseError("empty SOAP Body");
  return first;
}

export function soapFaultOf(el: XmlElement): SoapFault | null {
  if (el.local !== "Fault") return null;
  return {
    code: (xmlChildren(el, "faultcode")[0]?.text ?? "").trim(),
    message: (xmlChildren(el, "faultstring")[0]?.text ?? "").trim() || "SOAP fault",
  };
}

interface SoapAnswer {
  /** The <…Return> part: the Document. */
  ret: XmlElement;
  systemCode: number | null;
  numbers: Array<{ number: string; result: string | null }>;
  balance: number | null;
  message: string | null;
}

const isNumberElement = (e: XmlElement) => e.local.toLowerCase() === "number";
const CODE_NAMES = ["SystemCode", "ReturnCode", "ResultCode", "ErrorCode", "StatusCode"];

function systemCodeOf(ret: XmlElement): number | null {
  for (const name of CODE_NAMES) {
    const el = xmlFind(ret, name, isNumberElement);
    if (el && /^\s*-?\d+\s*$/.test(el.text)) return Number(el.text.trim());
  }
  // …or an attribute of the return value or one of its (non-Number) elements
  const stack: XmlElement[] = [ret];
  while (stack.length) {
    const el = stack.shift()!;
    for (const name of CODE_NAMES) {
      const v = xmlAttr(el, name);
      if (v !== undefined && /^\s*-?\d+\s*$/.test(v)) return Number(v.trim());
    }
    stack.push(...el.children.filter((c) => !isNumberElement(c)));
  }
  return null;
}

/** Reads an operation's response envelope. Throws XmlParseError when it is not one. */
export function parseSoapAnswer(xml: string): SoapAnswer | { fault: SoapFault } {
  const first = soapBodyElement(parseXml(xml));
  const fault = soapFaultOf(first);
  if (fault) return { fault };
  const ret = first.children[0] ?? first;
  const numbers = xmlFindAll(ret, "Number").map((n) => ({ number: n.text.trim(), result: xmlAttr(n, "Result")?.trim() ?? null }));
  const balanceEl = ["AccountBalance", "Balance", "CreditBalance", "WashCredits"].map((n) => xmlFind(ret, n, isNumberElement)).find(Boolean);
  const balance = balanceEl && /^\s*-?\d+(\.\d+)?\s*$/.test(balanceEl.text) ? Number(balanceEl.text.trim())
    : ret.children.length === 0 && /^\s*\d+\s*$/.test(ret.text) && first.local === "GetAccountBalanceResponse" ? Number(ret.text.trim())
    : null;
  const messageEl = ["SystemMessage", "Message", "Description"].map((n) => xmlFind(ret, n, isNumberElement)).find(Boolean);
  return { ret, systemCode: systemCodeOf(ret), numbers, balance, message: messageEl?.text.trim() || null };
}

// ---------------------------------------------------------------------------------------------
// System codes (ACMA's SOAP fact sheet): scoped per operation
// ---------------------------------------------------------------------------------------------

const CODE_MEANINGS: Record<DncrOperation, Record<number, string>> = {
  GetAccountBalance: {
    1: "missing or non-numeric Telemarketer ID or password",
    3: "the account or wash-only user does not exist",
  },
  WashNumbers: {
    1: "missing Telemarketer ID, password or numbers, or a non-numeric Telemarketer ID",
    3: "the account or wash-only user does not exist, is not active or is suspended",
    4: "no current subscription (missing or expired)",
    5: "insufficient account balance for this wash",
  },
  GetWashResult: {
    2: "the Client Reference ID does not exist",
    3: "the account does not exist",
    4: "washing started but has not finished",
  },
};

export function dncrCodeMeaning(operation: DncrOperation, code: number): string {
  return CODE_MEANINGS[operation][code] ?? `unknown system code ${code}`;
}

// ---------------------------------------------------------------------------------------------
// The SOAP codec inside providerFetch
// ---------------------------------------------------------------------------------------------

const SOAP_HEADERS = { "content-type": "text/xml; charset=utf-8", soapaction: '""' };

/**
 * providerFetch JSON-encodes bodies and JSON-parses answers: this fetch sends the envelope as XML and
 * hands back {xml} for the schema. SOAP faults arrive as HTTP 500; their faultstring becomes the error
 * message, and a Client fault (our request is wrong) becomes a 400 so it is not retried.
 */
function soapFetch(base: typeof fetch): typeof fetch {
  return async (input: RequestInfo | URL, init?: RequestInit) => {
    const body = typeof init?.body === "string" ? JSON.parse(init.body) as string : undefined;
    const res = await base(input, { ...init, body });
    const text = await res.text();
    const headers = new Headers();
    const retryAfter = res.headers.get("retry-after");
    if (retryAfter) headers.set("retry-after", retryAfter);
    headers.set("content-type", "application/json");
    if (res.ok) return new Response(JSON.stringify({ xml: text }), { status: res.status, headers });
    let status = res.status;
    let message = truncate(text.trim() || "(empty body)");
    try {
      const answer = parseSoapAnswer(text);
      if ("fault" in answer) {
        message = `SOAP fault ${answer.fault.code}: ${answer.fault.message}`;
        if (/client/i.test(answer.fault.code)) status = 400;
      }
    } catch {
      // not SOAP: keep the raw text
    }
    return new Response(JSON.stringify({ message }), { status, headers });
  };
}

const SoapWire = z.object({ xml: z.string() }).transform((v, ctx) => {
  try {
    const answer = parseSoapAnswer(v.xml);
    if ("fault" in answer) {
      ctx.addIssue({ code: "custom", message: `SOAP fault ${answer.fault.code}: ${answer.fault.message}` });
      return z.NEVER;
    }
    return answer;
  } catch (err) {
    ctx.addIssue({ code: "custom", message: `not a SOAP answer: ${err instanceof Error ? err.message : String(err)}` });
    return z.NEVER;
  }
});

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** baseUrl + path for providerFetch from the endpoint URL (…/rtw/washing.cfc → …/rtw + washing.cfc). */
function splitEndpoint(endpoint: string): { baseUrl: string; path: string } {
  const url = new URL(endpoint);
  const cut = url.pathname.lastIndexOf("/");
  const path = url.pathname.slice(cut + 1);
  url.pathname = url.pathname.slice(0, cut) || "/";
  return { baseUrl: url.toString().replace(/\/$/, ""), path: `${path}${url.search}` };
}

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

const RESULT_OF: Record<string, DncrResult> = { Y: "registered", N: "not_registered", I: "invalid" };

export function createDncrClient(config: DncrConfig = {}): DncrClient {
  const endpoint = config.baseUrl ?? envValue(PROVIDERS.dncr.baseUrl) ?? DNCR_DEFAULT_ENDPOINT;
  const local = isLocalUrl(endpoint);
  // A local base URL is a sandbox: default the credentials so it runs without secrets.
  const telemarketerId = config.telemarketerId ?? envValue("DNCR_TELEMARKETER_ID") ?? (local ? "1234567" : undefined);
  const washOnlyUserId = config.washOnlyUserId ?? envValue("DNCR_WASH_ONLY_USER_ID") ?? "";
  const password = config.password ?? envValue(PROVIDERS.dncr.key) ?? (local ? "sandbox" : undefined);
  const missing = [!telemarketerId && "DNCR_TELEMARKETER_ID", !password && "DNCR_API_KEY"].filter(Boolean);
  const { baseUrl, path } = splitEndpoint(endpoint);
  const centsPerNumber = config.centsPerNumber ?? 0.33;
  const chunkSize = Math.min(DNCR_MAX_NUMBERS_PER_CALL, Math.max(1, config.chunkSize ?? DNCR_CHUNK_SIZE));
  const recoveryDelays = config.recoveryDelaysMs ?? DNCR_RECOVERY_DELAYS_MS;
  const maxPendingPolls = config.maxPendingPolls ?? 5;
  const wait = config.wait ?? sleep;

  const spec: ProviderSpec = {
    provider: "dncr",
    baseUrl,
    missingCredentials: missing.length ? `${missing.join(" and ")} not set` : undefined,
    rateLimit: config.rateLimit ?? rateLimitFromEnv("DNCR_RATE_LIMIT", { limit: 60, window: "1 m" }),
    retry: config.retry,
    timeoutMs: 30_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: soapFetch(config.fetch ?? ((input, init) => fetch(input, init))),
  };
  // A wash is charged when ACMA receives it: one attempt, and no retry after a timeout (GetWashResult instead).
  const onceSpec: ProviderSpec = { ...spec, retry: { ...config.retry, attempts: 1, onTimeout: false } };
  const washTimeoutMs = config.timeoutMs ?? 60_000;

  const credentials = (): Array<[string, string]> => [
    ["TelemarketerId", telemarketerId ?? ""],
    ["WashOnlyUserId", washOnlyUserId],
    ["TelemarketerPassword", password ?? ""],
  ];

  const systemProblem = (operation: DncrOperation, accept: number[]) => (a: SoapAnswer) => {
    const code = a.systemCode ?? 0;
    if (accept.includes(code)) return null;
    return { message: `system code ${code}: ${a.message ?? dncrCodeMeaning(operation, code)}`, retryable: false };
  };

  /** Maps ACMA's per-number answers back onto the E.164 numbers asked about. */
  function mapResults(answer: SoapAnswer, asked: Map<string, string> | null, ref: string): DncrWashResult[] {
    const out = new Map<string, DncrResult>();
    for (const n of answer.numbers) {
      const digits = n.number.replace(/[\s()\-]/g, "");
      const e164 = asked ? asked.get(digits) : nationalToE164(n.number);
      const result = n.result ? RESULT_OF[n.result.toUpperCase()] : undefined;
      if (!e164 || !result) {
        throw new ProviderError({
          provider: "dncr", operation: "wash_numbers", code: "malformed", retryable: false,
          message: `wash ${ref}: unexpected entry "${n.number}" with Result="${n.result}"`,
        });
      }
      out.set(e164, result);
    }
    if (asked) {
      const missing = [...asked.values()].filter((e) => !out.has(e));
      if (missing.length) {
        throw new ProviderError({
          provider: "dncr", operation: "wash_numbers", code: "malformed", retryable: false,
          message: `wash ${ref}: no result for ${missing.length} number(s), e.g. ${missing[0]}; recover with GetWashResult`,
        });
      }
    }
    return [...out].map(([phoneE164, result]) => ({ phoneE164, result }));
  }

  async function fetchWashResult(ref: string, chargedNumbers: number, ctx: ProviderCallContext): Promise<{ code: number; answer: SoapAnswer }> {
    const res = await providerFetch(onceSpec, {
      operation: "get_wash_result",
      method: "POST",
      path,
      body: buildSoapRequest("GetWashResult", [...credentials(), ["ClientReferenceId", ref]]),
      headers: SOAP_HEADERS,
      schema: SoapWire,
      check: systemProblem("GetWashResult", [0, 2, 4]),
      // When this recovers a timed-out wash, the wash's charge is recorded here, once.
      credits: (a) => ((a.systemCode ?? 0) === 0 ? chargedNumbers : 0),
      costCents: (_a, credits) => credits * centsPerNumber,
    }, ctx);
    return { code: res.data.systemCode ?? 0, answer: res.data };
  }

  /** ACMA's timeout procedure: wait, ask GetWashResult, wait again on a timeout or "unknown reference", then give up. */
  async function recover(ref: string, asked: Map<string, string>, ctx: ProviderCallContext, completed: DncrWashResult[]): Promise<DncrWashResult[]> {
    let pendingPolls = 0;
    let lastProblem = "no answer";
    for (let i = 0; i < recoveryDelays.length;) {
      await wait(recoveryDelays[i], ctx.signal);
      try {
        const { code, answer } = await fetchWashResult(ref, asked.size, ctx);
        if (code === 0) return mapResults(answer, asked, ref);
        if (code === 4 && pendingPolls < maxPendingPolls) {
          // Still washing is not a failure: keep waiting at the same step.
          pendingPolls++;
          lastProblem = "still washing";
          continue;
        }
        lastProblem = dncrCodeMeaning("GetWashResult", code);
      } catch (err) {
        if (!(err instanceof ProviderError) || !err.retryable) {
          throw new DncrWashError({
            clientReferenceId: ref, pending: true, completed, code: err instanceof ProviderError ? err.code : "network",
            retryable: false, status: err instanceof ProviderError ? err.status : undefined, cause: err,
            message: `wash ${ref} timed out and GetWashResult failed (${err instanceof Error ? err.message : String(err)}); do not resubmit`,
          });
        }
        lastProblem = err.message;
      }
      i++;
    }
    throw new DncrWashError({
      clientReferenceId: ref, pending: true, completed, code: "timeout", retryable: true,
      message: `wash ${ref} timed out and its result is not available yet (${lastProblem}); ask getWashResult("${ref}") again in 30 minutes or more — never resubmit the numbers`,
    });
  }

  async function washChunk(
    numbers: Array<{ e164: string; national: string }>,
    ref: string,
    ctx: ProviderCallContext,
    completed: DncrWashResult[],
  ): Promise<DncrWashResult[]> {
    const asked = new Map(numbers.map((n) => [n.national, n.e164]));
    try {
      const res = await providerFetch(onceSpec, {
        operation: "wash_numbers",
        method: "POST",
        path,
        body: buildSoapRequest("WashNumbers", [...credentials(), ["ClientReferenceId", ref]], numbers.map((n) => n.national)),
        headers: SOAP_HEADERS,
        schema: SoapWire,
        check: systemProblem("WashNumbers", [0]),
        credits: numbers.length,
        costCents: (_a, credits) => credits * centsPerNumber,
        timeoutMs: washTimeoutMs,
      }, ctx);
      return mapResults(res.data, asked, ref);
    } catch (err) {
      if (err instanceof DncrWashError) throw err;
      if (err instanceof ProviderError && err.code === "timeout") return await recover(ref, asked, ctx, completed);
      const e = err instanceof ProviderError ? err : undefined;
      throw new DncrWashError({
        clientReferenceId: ref,
        // No answer at all: ACMA may have it. An answer (an error status or a system code): it has not washed.
        pending: e?.code === "network",
        completed,
        code: e?.code ?? "network",
        retryable: e?.retryable ?? true,
        status: e?.status,
        cause: err,
        message: e?.code === "network"
          ? `${e.message}; ask getWashResult("${ref}") before washing these numbers again`
          : err instanceof Error ? err.message : String(err),
      });
    }
  }

  return {
    async washNumbers(numbersE164, clientReferenceId, ctx = {}) {
      const ref = clientReferenceId.trim();
      const invalid = (message: string) =>
        new ProviderError({ provider: "dncr", operation: "wash_numbers", code: "invalid_request", retryable: false, message });
      if (!ref) throw invalid("a ClientReferenceId is required (persist it before washing)");
      const bad = numbersE164.filter((n) => e164ToNational(n) === null);
      if (bad.length) throw invalid(`not Australian E.164 numbers (each would still cost a credit): ${bad.slice(0, 5).join(", ")}`);
      // Every submitted number costs a credit: wash each number once.
      const unique = [...new Set(numbersE164.map((n) => n.trim()))].map((e164) => ({ e164, national: e164ToNational(e164)! }));
      if (!unique.length) return [];
      const chunks: Array<typeof unique> = [];
      for (let i = 0; i < unique.length; i += chunkSize) chunks.push(unique.slice(i, i + chunkSize));
      const results: DncrWashResult[] = [];
      for (const [k, chunk] of chunks.entries()) {
        const chunkRef = chunks.length === 1 ? ref : `${ref}-${k + 1}`;
        results.push(...await washChunk(chunk, chunkRef, ctx, [...results]));
      }
      return results;
    },

    async getWashResult(clientReferenceId, ctx = {}) {
      const ref = clientReferenceId.trim();
      const { code, answer } = await fetchWashResult(ref, ctx.chargedNumbers ?? 0, ctx);
      if (code === 2) return { state: "unknown_reference", clientReferenceId: ref };
      if (code === 4) return { state: "pending", clientReferenceId: ref };
      return { state: "complete", clientReferenceId: ref, results: mapResults(answer, null, ref) };
    },

    async getAccountBalance(ctx = {}) {
      const res = await providerFetch(spec, {
        operation: "get_account_balance",
        method: "POST",
        path,
        body: buildSoapRequest("GetAccountBalance", credentials()),
        headers: SOAP_HEADERS,
        schema: SoapWire,
        check: systemProblem("GetAccountBalance", [0]),
      }, ctx);
      if (res.data.balance === null) {
        throw new ProviderError({
          provider: "dncr", operation: "get_account_balance", code: "malformed", retryable: false,
          message: "no balance in the GetAccountBalance answer",
        });
      }
      return res.data.balance;
    },
  };
}

/** The client configured from DNCR_BASE_URL, DNCR_TELEMARKETER_ID, DNCR_WASH_ONLY_USER_ID, DNCR_API_KEY. */
export function dncrFromEnv(overrides: Partial<DncrConfig> = {}): DncrClient {
  return createDncrClient(overrides);
}
