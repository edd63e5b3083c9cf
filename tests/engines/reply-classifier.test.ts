// The reply classifier: keyword rules for every class they decide (bounce, STOP words, unsubscribe
// phrases, complaints, out-of-office with return dates in several formats, auto-replies), the small
// Claude model through the Anthropic sandbox over HTTP (forced classify_reply tool, zod-checked,
// tokens and cost recorded, one retry with the problems fed back, refusal / spend limit → fallback,
// overload → retry later), and the no-key fallback. Property: a STOP word as the whole message is
// always an unsubscribe.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createAnthropicSandbox, type AnthropicSandboxState } from "../../dev/sandbox/anthropic.ts";
import { createAnthropicClient, DEFAULT_MODELS, type AnthropicClient } from "../../shared/integrations/anthropic.ts";
import type { ProviderCall } from "../../shared/integrations/provider-http.ts";
import {
  addDays,
  CLASSIFY_INPUT_SCHEMA,
  CLASSIFY_TOOL_NAME,
  classifyByKeywords,
  ClassifyRetryableError,
  classifyReply,
  ClassifyToolOutput,
  fallbackClassification,
  isStopMessage,
  LLM_CLASSES,
  parseFollowUpDate,
  parseReturnDate,
  STOP_WORDS,
  type ReplyInput,
} from "../../shared/engines/reply-classifier.ts";

// Tuesday 24 November 2026, 10:00 in Sydney
const NOW = new Date("2026-11-23T23:00:00Z");
const TZ = "Australia/Sydney";
const email = (body: string, extra: Partial<ReplyInput> = {}): ReplyInput => ({ channel: "email", body, subject: "Re: Idea for Acme", fromAddress: "pat@acme.example", ...extra });
const kw = (input: ReplyInput) => classifyByKeywords(input, NOW, TZ);

let server: ServerType;
let base: string;
let state: AnthropicSandboxState;
const calls: ProviderCall[] = [];

beforeAll(async () => {
  const sandbox = createAnthropicSandbox({ apiKey: "sk-ant-test", retryAfterSeconds: 1 });
  state = sandbox.state;
  const root = new Hono();
  root.route("/sandbox/anthropic", sandbox.app);
  await new Promise<void>((resolve) => {
    server = serve({ fetch: root.fetch, port: 0, hostname: "127.0.0.1" }, (info: AddressInfo) => {
      base = `http://127.0.0.1:${info.port}/sandbox/anthropic`;
      resolve();
    });
  });
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  state.reset();
  calls.length = 0;
});

function claude(over: Partial<Parameters<typeof createAnthropicClient>[0]> = {}): AnthropicClient {
  return createAnthropicClient({
    apiKey: "sk-ant-test", baseUrl: base, maxRetries: 0, timeoutMs: 10_000,
    models: { large: DEFAULT_MODELS.large, small: DEFAULT_MODELS.small },
    record: (c) => void calls.push(c),
    ...over,
  });
}

const ctx = (c: AnthropicClient | null, extra: Record<string, unknown> = {}) => ({
  claude: c, now: NOW, timeZone: TZ, bookingLink: "https://cal.example/acme/intro", clientName: "Acme Growth", leadFirstName: "Pat", ...extra,
});

describe("keyword rules", () => {
  it("bounces: mailer-daemon, delivery status notifications, undeliverable; the failed address is read", () => {
    const dsn = email("Delivery to the following recipient failed permanently:\n\n    pat@acme.example\n\nFinal-Recipient: rfc822; pat@acme.example\nStatus: 5.1.1", {
      fromAddress: "MAILER-DAEMON@mail.example", subject: "Delivery Status Notification (Failure)",
    });
    expect(kw(dsn)).toMatchObject({ class: "bounce", source: "keyword", bouncedAddress: "pat@acme.example" });
    expect(kw(email("Your message couldn't be delivered.", { subject: "Undeliverable: Idea for Acme", fromAddress: "postmaster@acme.example" }))?.class).toBe("bounce");
    expect(kw(email("Mail delivery failed: returning message to sender", { subject: "Mail delivery failed", fromAddress: "x@y.example" }))?.class).toBe("bounce");
    // a bounce notice that says "spam" is still a bounce, not a complaint
    expect(kw(email("550 5.7.1 Message rejected as spam", { subject: "Undeliverable: hello", fromAddress: "mailer-daemon@x.example" }))?.class).toBe("bounce");
    // an SMS that says "undeliverable" is not an email bounce
    expect(kw({ channel: "sms", body: "Undeliverable?" })?.class).not.toBe("bounce");
  });

  it("unsubscribe: STOP words as the whole message on every channel, and the usual phrases", () => {
    for (const body of ["STOP", "stop", " Stop. ", "UNSUBSCRIBE", "stopall", "Quit!", "opt out", "END"]) {
      for (const channel of ["sms", "email", "linkedin"] as const) expect(kw({ channel, body })?.class, `${channel}: ${body}`).toBe("unsubscribe");
    }
    for (const body of [
      "please remove me from your list", "Take me off your mailing list thanks", "How do I unsubscribe?", "Do not contact me again.",
      "Stop emailing me", "no more emails please", "I'd like to opt-out",
    ]) expect(kw(email(body)), body).toMatchObject({ class: "unsubscribe", source: "keyword", confidence: 1 });
    // a sentence that merely contains "stop" is not a STOP message
    expect(isStopMessage("we can't stop growing")).toBe(false);
    expect(kw(email("we can't stop growing, tell me more"))).toBeNull();
  });

  it("complaints: spam, reported, harassment — but not a spam folder", () => {
    expect(kw(email("This is spam."))?.class).toBe("complaint");
    expect(kw(email("I have reported this to ACMA"))?.class).toBe("complaint");
    expect(kw(email("Stop harassing me, remove me"))?.class).toBe("complaint");
    expect(kw(email("Found this in my spam folder — yes, interested!"))).toBeNull();
  });

  it("out of office with the return date in several formats (the sequence resumes the day after)", () => {
    const cases: Array<[string, string]> = [
      ["I am out of the office until 2026-12-03 with limited access to email.", "2026-12-03"],
      ["Out of office: back on 3 December 2026.", "2026-12-03"],
      ["I'm on annual leave returning December 3rd.", "2026-12-03"],
      ["I am away from the office until 3/12/2026.", "2026-12-03"],
      ["On leave, back Monday.", "2026-11-30"],
      ["Out of office from 20 Nov, returning 5 Jan.", "2027-01-05"],
      ["I'm on holiday until 12.01.27, please contact my colleague.", "2027-01-12"],
      ["I'm out of office next week.", "2026-11-30"],
    ];
    for (const [body, date] of cases) {
      const c = kw(email(body, { subject: "Automatic reply: Idea for Acme" }));
      expect(c, body).toMatchObject({ class: "out_of_office", source: "keyword", returnDate: date });
      expect(addDays(c!.returnDate!, 1)).toBe(addDays(date, 1));
    }
    // without a date it is still out of office (the action waits a week)
    expect(kw(email("I am currently out of the office."))).toMatchObject({ class: "out_of_office" });
    expect(kw(email("I am currently out of the office."))?.returnDate).toBeUndefined();
    // dates already past are not a return date
    expect(parseReturnDate("back on 2026-11-01", NOW, TZ)).toBeNull();
  });

  it("auto-replies: Auto-Submitted and similar headers, or the usual phrases", () => {
    expect(kw(email("Thanks for your message.", { headers: { "Auto-Submitted": "auto-replied" } }))).toMatchObject({ class: "auto_reply", rule: "auto_submitted_header" });
    expect(kw(email("Thanks for your message.", { headers: { "auto-submitted": "no" } }))).toBeNull();
    expect(kw(email("Hello", { headers: { Precedence: "bulk" } }))?.class).toBe("auto_reply");
    expect(kw(email("This is an automated response. We have received your email and will respond within 2 business days."))?.class).toBe("auto_reply");
    expect(kw(email("Your request has been received. Ticket #48213"))?.class).toBe("auto_reply");
  });

  it("a quoted original (with our unsubscribe footer) does not decide the class", () => {
    const body = "Sounds interesting, can you send pricing?\n\nOn Mon, 23 Nov 2026 at 09:00, Sam <sam@agency.example> wrote:\n> Hi Pat\n> Unsubscribe: https://x.example/unsubscribe?t=abc";
    expect(kw(email(body))).toBeNull();
  });

  it("property: any message that is only a STOP word (any case, spacing, punctuation) is an unsubscribe", () => {
    const word = fc.constantFrom(...STOP_WORDS);
    const casing = fc.array(fc.boolean(), { minLength: 12, maxLength: 12 });
    const pad = fc.constantFrom("", " ", "  ", "\n", "\t ");
    const punct = fc.constantFrom("", ".", "!", "!!", "?", " .", "\"", "*");
    const channel = fc.constantFrom("sms", "email", "linkedin", "voice") as fc.Arbitrary<ReplyInput["channel"]>;
    fc.assert(fc.property(word, casing, pad, pad, punct, channel, (w, caps, before, after, p, ch) => {
      const cased = [...w].map((x, i) => (caps[i % caps.length] ? x.toUpperCase() : x.toLowerCase())).join("");
      const body = `${before}${cased}${p}${after}`;
      const c = classifyByKeywords({ channel: ch, body, subject: ch === "email" ? "Re: hello" : null }, NOW, TZ);
      return c?.class === "unsubscribe" && c.source === "keyword";
    }), { numRuns: 500 });
  });

  it("property: 'remove me' anywhere in an otherwise neutral message is an unsubscribe", () => {
    const words = fc.array(fc.constantFrom("hello", "thanks", "please", "from", "your", "list", "we", "are", "a", "team", "today", "ok"), { maxLength: 8 });
    fc.assert(fc.property(words, words, (a, b) => kw(email(`${a.join(" ")} remove me ${b.join(" ")}`))?.class === "unsubscribe"), { numRuns: 200 });
  });
});

describe("the fallback without Claude", () => {
  it("no key: clear phrases decide, anything unclear is a question for a person", async () => {
    const none = ctx(null);
    expect(await classifyReply(email("No thanks, not interested."), none)).toMatchObject({ class: "not_interested", source: "fallback" });
    expect(await classifyReply(email("Not right now — maybe reach out next quarter."), none)).toMatchObject({ class: "not_now", source: "fallback", followUpDate: "2027-01-01" });
    expect(await classifyReply(email("Sorry, wrong person, I've left the company."), none)).toMatchObject({ class: "wrong_person", source: "fallback" });
    expect(await classifyReply(email("Happy to book a quick call next week"), none)).toMatchObject({
      class: "meeting_request", source: "fallback", suggestedAnswer: expect.stringContaining("https://cal.example/acme/intro"),
    });
    expect(await classifyReply(email("Sounds good, tell me more"), none)).toMatchObject({ class: "interested", source: "fallback" });
    expect(await classifyReply(email("Who gave you my details?"), none)).toMatchObject({ class: "question", source: "fallback", confidence: 0.3 });
    expect((await classifyReply(email("Who gave you my details?"), none)).suggestedAnswer).toBeUndefined();
    // the keyword rules still come first
    expect(await classifyReply(email("STOP"), none)).toMatchObject({ class: "unsubscribe", source: "keyword" });
    expect(fallbackClassification(email("lorem ipsum"), NOW, TZ).class).toBe("question");
  });

  it("follow-up dates: next month / quarter / year, in N months, an explicit date", () => {
    expect(parseFollowUpDate("try me next month", NOW, TZ)).toBe("2026-12-01");
    expect(parseFollowUpDate("next quarter", NOW, TZ)).toBe("2027-01-01");
    expect(parseFollowUpDate("in 3 months", NOW, TZ)).toBe("2027-02-24");
    expect(parseFollowUpDate("after christmas", NOW, TZ)).toBe("2027-01-15");
    expect(parseFollowUpDate("ping me on 15 February", NOW, TZ)).toBe("2027-02-15");
    expect(parseFollowUpDate("later", NOW, TZ)).toBeNull();
  });
});

describe("the small Claude model (sandbox)", () => {
  it("forces the classify_reply tool with the fixed schema on the small model, and records tokens and cost", async () => {
    const c = await classifyReply(email("This sounds interesting — tell me more about how it works."), ctx(claude()));
    expect(c).toMatchObject({ class: "interested", source: "llm" });
    expect(c.suggestedAnswer).toContain("Pat");
    expect(c.llm).toMatchObject({ model: DEFAULT_MODELS.small, calls: 1 });
    expect(c.llm!.usage.inputTokens + c.llm!.usage.outputTokens).toBeGreaterThan(0);
    expect(c.llm!.costCents).toBeGreaterThan(0);
    const [req] = state.messageRequests();
    const body = req.body as Record<string, any>;
    expect(req.status).toBe(200);
    expect(body.model).toBe(DEFAULT_MODELS.small);
    expect(body.tool_choice).toEqual({ type: "tool", name: CLASSIFY_TOOL_NAME });
    expect(body.tools[0].input_schema).toEqual(JSON.parse(JSON.stringify(CLASSIFY_INPUT_SCHEMA)));
    expect(body.temperature).toBeUndefined();
    // the reply travels as data in the user message, not in the system prompt
    expect(JSON.stringify(body.system)).not.toContain("tell me more");
    expect(calls).toEqual([expect.objectContaining({ provider: "anthropic", operation: "replies.classify", status: 200, costCents: c.llm!.costCents })]);
  });

  it("classifies every class the model decides, with its details", async () => {
    const cl = claude();
    expect(await classifyReply(email("Could we set up a call on Thursday?"), ctx(cl))).toMatchObject({
      class: "meeting_request", suggestedAnswer: expect.stringContaining("https://cal.example/acme/intro"),
    });
    expect(await classifyReply(email("What does it cost per month?"), ctx(cl))).toMatchObject({ class: "question", suggestedAnswer: expect.any(String) });
    expect(await classifyReply(email("Not now, but maybe next quarter."), ctx(cl))).toMatchObject({ class: "not_now", followUpDate: "2027-01-01" });
    expect(await classifyReply(email("I'm not the right person. Please speak to Sarah Chen, our Head of Marketing (sarah.chen@acme.example)."), ctx(cl))).toMatchObject({
      class: "referral", referral: { name: "Sarah Chen", email: "sarah.chen@acme.example", title: "Head of Marketing" },
    });
    expect(await classifyReply(email("Wrong person, sorry."), ctx(cl))).toMatchObject({ class: "wrong_person" });
    expect(await classifyReply(email("Not interested, we do this in-house."), ctx(cl))).toMatchObject({ class: "not_interested" });
    expect(await classifyReply({ channel: "linkedin", body: "Hi! Yes that sounds good." }, ctx(cl))).toMatchObject({ class: "interested", source: "llm" });
    expect(await classifyReply(email("Automatic notice: this inbox is read once a week."), ctx(cl))).toMatchObject({ class: "auto_reply", source: "llm" });
  });

  it("an out-of-office the rules saw without a date gets its date from the model", async () => {
    const c = await classifyReply(email("Out of office. I'll reply when I return."), ctx(claude()));
    expect(c).toMatchObject({ class: "out_of_office", source: "keyword", returnDate: "2026-12-01" });
    expect(c.llm?.calls).toBe(1);
  });

  it("keyword matches never call the model", async () => {
    await classifyReply(email("please remove me from your list"), ctx(claude()));
    expect(state.messageRequests()).toHaveLength(0);
  });

  it("a low-confidence answer becomes a question for a person", async () => {
    const c = await classifyReply(email("not interested lowconfidence"), ctx(claude()));
    expect(c).toMatchObject({ class: "question", source: "llm", confidence: 0.2 });
    expect(c.note).toContain("not_interested");
  });

  it("malformed output: one retry with the problems fed back, then the fallback (tokens of both calls counted)", async () => {
    const c = await classifyReply(email("malformed: not interested thanks"), ctx(claude()));
    expect(c).toMatchObject({ class: "not_interested", source: "fallback" });
    expect(c.note).toContain("invalid");
    expect(c.llm?.calls).toBe(2);
    const reqs = state.messageRequests();
    expect(reqs).toHaveLength(2);
    const second = (reqs[1].body as { messages: Array<{ role: string; content: unknown }> }).messages;
    expect(second.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
    expect(JSON.stringify(second[2].content)).toContain("is_error");
    expect(reqs[1].status).toBe(200);
  });

  it("a refusal or the spend limit falls back; an overload is retried later; a bad key falls back", async () => {
    expect(await classifyReply(email("refusal: what is this?"), ctx(claude()))).toMatchObject({ class: "question", source: "fallback", note: expect.stringContaining("declined") });
    expect(await classifyReply(email("spendlimit not interested"), ctx(claude()))).toMatchObject({ class: "not_interested", source: "fallback" });
    await expect(classifyReply(email("overloaded — tell me more"), ctx(claude()))).rejects.toBeInstanceOf(ClassifyRetryableError);
    expect(await classifyReply(email("tell me more"), ctx(claude({ apiKey: "sk-ant-wrong" })))).toMatchObject({ class: "interested", source: "fallback" });
  });

  it("the zod schema accepts what the JSON schema allows and refuses the rest", () => {
    for (const cls of LLM_CLASSES) expect(ClassifyToolOutput.safeParse({ class: cls, confidence: 0.7 }).success).toBe(true);
    expect(ClassifyToolOutput.safeParse({ class: "bounce", confidence: 0.7 }).success).toBe(false);
    expect(ClassifyToolOutput.safeParse({ class: "not_now", confidence: 1.5 }).success).toBe(false);
    expect(ClassifyToolOutput.safeParse({ class: "not_now", confidence: 0.5, follow_up_date: "2027-02-30" }).success).toBe(false);
    expect(ClassifyToolOutput.safeParse({ class: "referral", confidence: 0.5, referral: { name: "X", email: "nope" } }).success).toBe(false);
    expect(ClassifyToolOutput.safeParse({ class: "interested", confidence: 0.5, extra: 1 }).success).toBe(false);
    expect([...CLASSIFY_INPUT_SCHEMA.properties.class.enum]).toEqual(LLM_CLASSES);
  });
});
