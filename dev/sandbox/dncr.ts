// ACMA Do Not Call Register sandbox: the Real Time Access SOAP service (providers.md §12) on one POST
// endpoint, RPC/encoded envelopes in the http://rtw.dncrtelem namespace, credentials in the body.
// Stateful: accounts with wash credits, every wash stored under its ClientReferenceId so
// GetWashResult answers it later, and a charge per submitted number per WashNumbers call (a
// resubmission is charged again, as ACMA would — the client must never do it).
// Mount anywhere, e.g. /sandbox/dncr; DNCR_BASE_URL=<that>/dncrtelem/rtw/washing.cfc (any path works).
//
// Deterministic answers, from the national number:
//   - invalid ("I"): not an Australian number shape (0[2378]xxxxxxxx, 04xxxxxxxx, 1300/1800xxxxxx, 13xxxx),
//     e.g. 05… or a wrong length;
//   - registered ("Y"): ends in 0, or listed in opts.registered (E.164 or national);
//   - not registered ("N"): everything else.
// Magic numbers (ACMA's range reserved for fiction, 0491 570 xxx):
//   - 0491570156 (+61491570156) "slow": the answer is held for opts.slowMs (default 2 s) — longer than a
//     test client's timeout — but the wash is stored and charged at once, so GetWashResult recovers it;
//     while opts.washingMs (default 0) has not passed since receipt, GetWashResult answers code 4;
//   - 0491570158 (+61491570158) "servererror": a SOAP Server fault with HTTP 500, nothing stored or charged.
// Magic credentials (any password): TelemarketerId not numeric or empty → code 1; "3333" → code 3;
// "4444" → code 4 (subscription expired); "5555" → an account with no credits (code 5 on any wash).
// The regular account is opts.telemarketerId / opts.password (default "1234567" / "sandbox"); a wrong
// password or an unknown id → code 3.
import { Hono } from "hono";
import type { Context } from "hono";
import {
  DNCR_NAMESPACE,
  e164ToNational,
  parseXml,
  soapBodyElement,
  xmlChildren,
  xmlEscape,
  XmlParseError,
  type XmlElement,
} from "../../shared/integrations/dncr.ts";
import { delay } from "./seeded.ts";

export const DNCR_SLOW_NUMBER = "+61491570156";
export const DNCR_SERVER_ERROR_NUMBER = "+61491570158";

export interface DncrSandboxOptions {
  telemarketerId?: string;
  password?: string;
  /** Wash credits of the regular account (default 100,000). */
  balance?: number;
  /** Numbers (E.164 or national) that are on the register besides those ending in 0. */
  registered?: string[];
  /** How long the slow magic number holds its answer (default 2000 ms). */
  slowMs?: number;
  /** How long a wash stays "still washing" (code 4) for GetWashResult (default 0). */
  washingMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface DncrSandboxWash {
  clientReferenceId: string;
  telemarketerId: string;
  numbers: Array<{ number: string; result: "Y" | "N" | "I" }>;
  receivedAt: number;
  readyAt: number;
  /** How many WashNumbers calls carried this reference (each was charged). */
  submissions: number;
}

export interface DncrSandboxState {
  washes(): DncrSandboxWash[];
  wash(clientReferenceId: string): DncrSandboxWash | undefined;
  /** Credits left on an account (default: the regular one). */
  balance(telemarketerId?: string): number;
  /** Credits charged in all. */
  charged(): number;
  /** Every call: operation and system code (or "fault"). */
  calls(): Array<{ operation: string; code: number | "fault"; clientReferenceId?: string }>;
}

interface Account {
  password: string | null;
  balance: number;
  subscriptionActive: boolean;
}

const SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/";

/** The sandbox's verdict on one national number. */
export function dncrSandboxResult(national: string, registered: ReadonlySet<string> = new Set()): "Y" | "N" | "I" {
  const digits = national.replace(/[\s()\-]/g, "");
  const valid = /^0[2378]\d{8}$/.test(digits) || /^04\d{8}$/.test(digits) || /^1[38]00\d{6}$/.test(digits) || /^13\d{4}$/.test(digits);
  if (!valid) return "I";
  return digits.endsWith("0") || registered.has(digits) ? "Y" : "N";
}

function envelope(inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="${SOAP_ENV}" ` +
    `xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` +
    `<soapenv:Body>${inner}</soapenv:Body></soapenv:Envelope>`;
}

/** An operation's answer: the Document with a SystemCode, as the client's parser reads it. */
function answer(operation: string, code: number, message: string, inner = ""): string {
  return envelope(
    `<ns1:${operation}Response soapenv:encodingStyle="${SOAP_ENC}" xmlns:ns1="${DNCR_NAMESPACE}">` +
      `<${operation}Return xsi:type="ns2:Document" xmlns:ns2="http://xml.apache.org/xml-soap">` +
      `<SystemCode>${code}</SystemCode><SystemMessage>${xmlEscape(message)}</SystemMessage>${inner}` +
      `</${operation}Return></ns1:${operation}Response>`,
  );
}

function fault(code: string, message: string): string {
  return envelope(`<soapenv:Fault><faultcode>${code}</faultcode><faultstring>${xmlEscape(message)}</faultstring></soapenv:Fault>`);
}

function numbersXml(numbers: DncrSandboxWash["numbers"]): string {
  return `<NumbersSubmitted>${numbers.map((n) => `<Number Result="${n.result}" ErrorCode="0">${xmlEscape(n.number)}</Number>`).join("")}</NumbersSubmitted>`;
}

export function createDncrSandbox(opts: DncrSandboxOptions = {}): { app: Hono; state: DncrSandboxState } {
  const now = opts.now ?? Date.now;
  const mainId = opts.telemarketerId ?? "1234567";
  const accounts = new Map<string, Account>([
    [mainId, { password: opts.password ?? "sandbox", balance: opts.balance ?? 100_000, subscriptionActive: true }],
    ["4444", { password: null, balance: 100_000, subscriptionActive: false }],
    ["5555", { password: null, balance: 0, subscriptionActive: true }],
  ]);
  const registered = new Set((opts.registered ?? []).map((n) => (e164ToNational(n) ?? n).replace(/[\s()\-]/g, "")));
  const washes = new Map<string, DncrSandboxWash>();
  const calls: Array<{ operation: string; code: number | "fault"; clientReferenceId?: string }> = [];
  let charged = 0;

  const state: DncrSandboxState = {
    washes: () => [...washes.values()].map((w) => ({ ...w, numbers: [...w.numbers] })),
    wash: (ref) => washes.get(ref),
    balance: (id = mainId) => accounts.get(id)?.balance ?? 0,
    charged: () => charged,
    calls: () => [...calls],
  };

  const xml = (c: Context, body: string, status: 200 | 500 = 200) =>
    c.body(body, status, { "content-type": "text/xml; charset=utf-8" });

  /** code 1 / 3, or the account. */
  function authenticate(params: Map<string, string>): { code: 1 | 3 } | { account: Account; id: string } {
    const id = params.get("telemarketerid") ?? "";
    const password = params.get("telemarketerpassword") ?? "";
    if (!/^\d+$/.test(id) || !password) return { code: 1 };
    if (id === "3333") return { code: 3 };
    const account = accounts.get(id);
    if (!account || (account.password !== null && account.password !== password)) return { code: 3 };
    return { account, id };
  }

  const app = new Hono();

  app.post("*", async (c) => {
    let call: XmlElement;
    try {
      call = soapBodyElement(parseXml(await c.req.text()));
    } catch (err) {
      calls.push({ operation: "unknown", code: "fault" });
      return xml(c, fault("soapenv:Client", `could not read the request: ${err instanceof XmlParseError ? err.message : "bad XML"}`), 500);
    }
    const operation = call.local;
    const params = new Map(call.children.map((p) => [p.local.toLowerCase(), p.text.trim()]));
    const done = (code: number, message: string, inner = "", ref?: string) => {
      calls.push({ operation, code, clientReferenceId: ref });
      return xml(c, answer(operation, code, message, inner));
    };

    if (operation === "GetAccountBalance") {
      const auth = authenticate(params);
      if ("code" in auth) return done(auth.code, auth.code === 1 ? "Missing or non-numeric Telemarketer ID or password" : "Account does not exist");
      return done(0, "Successful", `<AccountBalance>${auth.account.balance}</AccountBalance>`);
    }

    if (operation === "WashNumbers") {
      const ref = params.get("clientreferenceid") ?? "";
      const list = xmlChildren(call, "NumbersToWash")[0];
      const numbers = list ? list.children.map((n) => n.text.trim()) : [];
      const auth = authenticate(params);
      if ("code" in auth) return done(auth.code, auth.code === 1 ? "Missing Telemarketer ID or password, or ID not numeric" : "Account does not exist, is not active or is suspended", "", ref);
      if (!numbers.length || !ref) return done(1, "Missing numbers to wash or Client Reference ID", "", ref);
      if (numbers.length > 500) return done(1, "More than 500 numbers in one call", "", ref);
      if (!auth.account.subscriptionActive) return done(4, "Current subscription does not exist or has expired", "", ref);
      if (auth.account.balance < numbers.length) return done(5, "Insufficient account balance", "", ref);
      const digits = numbers.map((n) => n.replace(/[\s()\-]/g, ""));
      if (digits.includes(e164ToNational(DNCR_SERVER_ERROR_NUMBER)!)) {
        calls.push({ operation, code: "fault", clientReferenceId: ref });
        return xml(c, fault("soapenv:Server.userException", "coldfusion.xml.rpc.CFCInvocationException: simulated server error"), 500);
      }
      // Received: charged now, stored now, whatever happens to the answer.
      auth.account.balance -= numbers.length;
      charged += numbers.length;
      const previous = washes.get(ref);
      const wash: DncrSandboxWash = {
        clientReferenceId: ref,
        telemarketerId: auth.id,
        numbers: numbers.map((number) => ({ number, result: dncrSandboxResult(number, registered) })),
        receivedAt: now(),
        readyAt: now() + (opts.washingMs ?? 0),
        submissions: (previous?.submissions ?? 0) + 1,
      };
      washes.set(ref, wash);
      // Logged at receipt: the slow answer below may never reach a client that gave up.
      calls.push({ operation, code: 0, clientReferenceId: ref });
      if (digits.includes(e164ToNational(DNCR_SLOW_NUMBER)!)) await delay(opts.slowMs ?? 2000);
      return xml(c, answer(operation, 0, "Successful", `<ClientReferenceId>${xmlEscape(ref)}</ClientReferenceId>${numbersXml(wash.numbers)}`));
    }

    if (operation === "GetWashResult") {
      const ref = params.get("clientreferenceid") ?? "";
      const auth = authenticate(params);
      if ("code" in auth) return done(3, "Account does not exist", "", ref);
      const wash = washes.get(ref);
      if (!wash || wash.telemarketerId !== auth.id) return done(2, "Client Reference ID does not exist", "", ref);
      if (now() < wash.readyAt) return done(4, "Washing started but not yet finished", "", ref);
      return done(0, "Successful", `<ClientReferenceId>${xmlEscape(ref)}</ClientReferenceId>${numbersXml(wash.numbers)}`, ref);
    }

    calls.push({ operation, code: "fault" });
    return xml(c, fault("soapenv:Client", `No such operation '${operation}'`), 500);
  });

  app.all("*", (c) => c.text("Method Not Allowed", 405));
  return { app, state };
}
