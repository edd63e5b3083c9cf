// The content engine against the Anthropic sandbox over HTTP, through the official SDK: the model
// and tool per tier, cache_control on the shared and client blocks (and cache reads on repeats),
// the Hot research loop and voice knowledge base, the SDK's retry honouring retry-after on 429,
// 529 overloaded, the spend-limit 429 that is not retried, malformed output → retry → template,
// violations fed back and fixed, refusal, budget, no key, Cool = first line only. Also the price
// table, the SDK error mapping, the sandbox's own request checks, and Message Batches.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Hono } from "hono";
import { serve, type ServerType } from "@hono/node-server";
import type { AddressInfo } from "node:net";
import { createAnthropicSandbox, type AnthropicSandboxState } from "../../dev/sandbox/anthropic.ts";
import {
  ANTHROPIC_PRICES,
  anthropicConfigured,
  anthropicFromEnv,
  anthropicModels,
  costCents,
  createAnthropicClient,
  DEFAULT_MODELS,
  toProviderError,
  usageFromApi,
  type AnthropicClient,
  type MessageParams,
} from "../../shared/integrations/anthropic.ts";
import { ProviderError, type ProviderCall } from "../../shared/integrations/provider-http.ts";
import { checkContent, smsSegments } from "../../shared/engines/content-checks.ts";
import {
  ContentRefusedError,
  ContentWriteError,
  estimateCallCents,
  estimateCostCents,
  writeStep,
  type SearchHit,
  type WriteStepDeps,
  type WriteStepInput,
} from "../../shared/engines/content.ts";
import { renderStep } from "../../shared/engines/templates.ts";

let server: ServerType;
let base: string;
let state: AnthropicSandboxState;
let claude: AnthropicClient;
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
  claude = client();
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(() => {
  state.reset();
  calls.length = 0;
});

function client(over: Partial<Parameters<typeof createAnthropicClient>[0]> = {}): AnthropicClient {
  return createAnthropicClient({
    apiKey: "sk-ant-test", baseUrl: base, maxRetries: 2, timeoutMs: 10_000,
    models: { large: DEFAULT_MODELS.large, small: DEFAULT_MODELS.small },
    record: (c) => void calls.push(c),
    ...over,
  });
}

const CLIENT = {
  id: "11111111-1111-4111-8111-111111111111",
  name: "Acme Growth",
  senderName: "Sam Taylor",
  senderTitle: "Director",
  offer: "outbound lead generation for logistics firms",
  callToAction: "a 15-minute call",
  dataSource: "LinkedIn",
};

function input(over: Partial<WriteStepInput> = {}, lead: Partial<WriteStepInput["lead"]> = {}): WriteStepInput {
  return {
    tier: "warm",
    channel: "email",
    isFirstTouch: true,
    stepNumber: 1,
    client: CLIENT,
    lead: {
      id: "22222222-2222-4222-8222-222222222222",
      firstName: "Ada",
      lastName: "Nguyen",
      title: "Head of Operations",
      company: "Harbour Logistics",
      companyDomain: "harbour-logistics.com.au",
      industry: "logistics",
      city: "Sydney",
      country: "AU",
      signals: ["hiring a Head of Sales"],
      ...lead,
    },
    ...over,
  };
}

type Body = {
  model: string;
  max_tokens: number;
  temperature?: number;
  tools?: Array<{ name: string; input_schema: { required?: string[] } }>;
  tool_choice?: { type: string; name?: string };
  system: Array<{ text: string; cache_control?: { type: string } }>;
  messages: MessageParams["messages"];
};
const sent = () => state.messageRequests().map((r) => r.body as Body);

// ---------------------------------------------------------------------------------------------

describe("tiers", () => {
  it("warm: the small model writes the whole step through a forced write_message", async () => {
    const r = await writeStep(input(), { anthropic: claude });
    expect(r.source).toBe("claude");
    expect(r.model).toBe(DEFAULT_MODELS.small);
    expect(r.violations).toEqual([]);
    expect(r.subject).toBe("Idea for Harbour Logistics");
    expect(r.body).toMatch(/^Hi Ada,\n\nI noticed Harbour Logistics is hiring a Head of Sales\./);
    expect(r.body).toContain("Sam Taylor\nDirector\nAcme Growth");
    expect(r.body).toMatch(/Unsubscribe here: \{\{unsubscribe_url\}\}$/);
    const [req] = sent();
    expect(sent()).toHaveLength(1);
    expect(req.model).toBe(DEFAULT_MODELS.small);
    expect(req.tool_choice).toEqual({ type: "tool", name: "write_message" });
    expect(req.tools!.map((t) => t.name)).toEqual(["write_message"]);
    expect(req.temperature).toBeUndefined();
    expect(r.calls).toBe(1);
    expect(r.usage.outputTokens).toBeGreaterThan(0);
    expect(r.costCents).toBeGreaterThan(0);
    expect(r.costCents).toBe(costCents(DEFAULT_MODELS.small, r.usage));
  });

  it("hot: the large model researches with web_search and fetch_company_site, then a forced write cites what it found", async () => {
    const searches: string[] = [];
    const pages: string[] = [];
    const deps: WriteStepDeps = {
      anthropic: claude,
      search: async (q, o): Promise<SearchHit[]> => {
        searches.push(`${o.kind}:${q}`);
        return [{ title: "Harbour Logistics opens Brisbane depot", link: "https://news.example.com/a", snippet: "New 20,000 m² site", date: "2 days ago" }];
      },
      fetchSite: async (url) => {
        pages.push(url);
        return "<p>Harbour Logistics moves freight across Australia.</p>";
      },
    };
    const r = await writeStep(input({ tier: "hot" }), deps);
    expect(r.source).toBe("claude");
    expect(r.model).toBe(DEFAULT_MODELS.large);
    expect(searches).toEqual(["news:Harbour Logistics news"]);
    expect(pages).toEqual(["https://harbour-logistics.com.au/"]);
    expect(r.research).toEqual({ rounds: 3, queries: ["Harbour Logistics news"], pages: ["https://harbour-logistics.com.au/"] });
    expect(r.body).toContain('I read "Harbour Logistics opens Brisbane depot"');
    expect(r.violations).toEqual([]);

    const reqs = sent();
    expect(reqs.map((b) => JSON.stringify(b.tool_choice))).toEqual([
      '{"type":"auto"}', '{"type":"auto"}', '{"type":"auto"}', '{"type":"tool","name":"write_message"}',
    ]);
    expect(reqs.every((b) => b.model === DEFAULT_MODELS.large)).toBe(true);
    // The same tools on every call, so the cached prefix holds.
    for (const b of reqs) expect(b.tools!.map((t) => t.name)).toEqual(["web_search", "fetch_company_site", "write_message"]);
    // Tool results went back to the model, and the final turn asks for the message.
    const last = reqs[3].messages;
    expect(JSON.stringify(last)).toContain("Harbour Logistics opens Brisbane depot");
    expect(JSON.stringify(last[last.length - 1])).toContain("by calling write_message");
    expect(r.calls).toBe(4);
    // The step's cost is the sum of its calls' provider_calls rows.
    expect(calls).toHaveLength(4);
    expect(r.costCents).toBeCloseTo(calls.reduce((n, c) => n + c.costCents, 0), 4);
  });

  it("hot: research stops at maxResearchRounds and failed lookups don't fail the step", async () => {
    const r = await writeStep(input({ tier: "hot" }), {
      anthropic: claude, maxResearchRounds: 1,
      search: async () => {
        throw new Error("serper down");
      },
      fetchSite: async () => "",
    });
    expect(r.source).toBe("claude");
    const reqs = sent();
    expect(reqs.map((b) => b.tool_choice?.type)).toEqual(["auto", "tool"]);
    expect(JSON.stringify(reqs[1].messages)).toContain("lookup failed: serper down");
    expect(r.research?.rounds).toBe(1);
  });

  it("hot without research tools writes straight away with the large model", async () => {
    const r = await writeStep(input({ tier: "hot" }), { anthropic: claude });
    expect(r.source).toBe("claude");
    expect(sent().map((b) => [b.model, b.tool_choice?.type])).toEqual([[DEFAULT_MODELS.large, "tool"]]);
    expect(r.research).toBeUndefined();
  });

  it("hot voice step: an opener with the introduction, and a voice knowledge base", async () => {
    const r = await writeStep(input({ tier: "hot", channel: "voice", isFirstTouch: false }), {
      anthropic: claude,
      search: async () => [{ title: "Harbour Logistics wins rail contract", link: "https://n.example/b" }],
    });
    expect(r.source).toBe("claude");
    expect(r.kind).toBe("voice_opener");
    expect(r.body.startsWith("Hi Ada, this is Sam Taylor calling from Acme Growth. I'm calling because")).toBe(true);
    expect(r.violations).toEqual([]);
    expect(r.voiceKnowledgeBase).toContain("# Call briefing");
    expect(r.voiceKnowledgeBase).toContain("Harbour Logistics wins rail contract");
    expect(r.voiceKnowledgeBase).toContain("If they ask not to be called again");
    const final = sent().at(-1)!;
    expect(JSON.stringify(final.messages[0])).toContain('\\"voice_knowledge_base\\": true');
  });

  it("cool: Claude writes only the first line (write_first_line); subject and the rest are the template", async () => {
    const r = await writeStep(input({ tier: "cool" }), { anthropic: claude });
    expect(r.source).toBe("claude");
    expect(r.model).toBe(DEFAULT_MODELS.small);
    const [req] = sent();
    expect(req.tool_choice).toEqual({ type: "tool", name: "write_first_line" });
    expect(req.tools!.map((t) => t.name)).toEqual(["write_first_line"]);
    const firstLine = "I noticed Harbour Logistics is hiring a Head of Sales.";
    const fields = {
      first_name: "Ada", last_name: "Nguyen", company: "Harbour Logistics", title: "Head of Operations", sender_name: "Sam Taylor",
      sender_title: "Director", client_name: "Acme Growth", offer: CLIENT.offer, data_source: "LinkedIn",
    };
    const expected = renderStep("email_first", fields, { firstLine });
    expect(r.subject).toBe(expected.subject);
    expect(r.body).toBe(expected.body);
    expect(r.violations).toEqual([]);
  });

  it("cold: the template, merge fields filled, no call", async () => {
    const r = await writeStep(input({ tier: "cold" }), { anthropic: claude });
    expect(r).toMatchObject({ source: "template", model: null, calls: 0, costCents: 0, violations: [] });
    expect(r.subject).toBe("Quick question, Ada");
    expect(sent()).toHaveLength(0);
  });

  it("dead, and channels a tier does not allow, are refused", async () => {
    await expect(writeStep(input({ tier: "dead" }), { anthropic: claude })).rejects.toMatchObject({ name: "ContentRefusedError", reason: "dead_tier" });
    await expect(writeStep(input({ tier: "cool", channel: "sms" }), { anthropic: claude })).rejects.toBeInstanceOf(ContentRefusedError);
    await expect(writeStep(input({ tier: "cold", channel: "linkedin" }), {})).rejects.toMatchObject({ reason: "channel_not_allowed" });
    await expect(writeStep(input({ tier: "warm", channel: "mail" }), {})).rejects.toMatchObject({ reason: "channel_not_allowed" });
    expect(sent()).toHaveLength(0);
  });

  it("a step whose content mode is template gets the template for every tier", async () => {
    const r = await writeStep(input({ tier: "hot", contentMode: "template" }), { anthropic: claude });
    expect(r.source).toBe("template");
    expect(sent()).toHaveLength(0);
  });

  it("warm SMS is one GSM-7 segment with the opt-out; a LinkedIn note stays under the free limit", async () => {
    const sms = await writeStep(input({ channel: "sms", isFirstTouch: false }), { anthropic: claude });
    expect(sms.source).toBe("claude");
    expect(smsSegments(sms.body)).toMatchObject({ encoding: "GSM-7", segments: 1 });
    expect(sms.body).toMatch(/- Sam Taylor, Acme Growth\. Reply STOP to opt out$/);
    const step = JSON.parse(/<step>\s*([\s\S]*?)\s*<\/step>/.exec(JSON.stringify(sent()[0].messages[0].content).replace(/\\n/g, "\n").replace(/\\"/g, '"'))![1]);
    expect(step.gsm_only).toBe(true);
    // What the frame leaves: the signature and opt-out (with the space before them) take the rest of 160.
    expect(step.max_chars).toBe(160 - " - Sam Taylor, Acme Growth. Reply STOP to opt out".length);

    const note = await writeStep(input({ channel: "linkedin", linkedinAction: "invitation", linkedinFreeAccount: true }), { anthropic: claude });
    expect(note.kind).toBe("linkedin_note");
    expect(note.body.length).toBeLessThanOrEqual(200);
    expect(note.violations).toEqual([]);
  });

  it("an EU first touch carries the data-source notice", async () => {
    const r = await writeStep(input({}, { country: "DE", city: "Hamburg" }), { anthropic: claude });
    expect(r.source).toBe("claude");
    expect(r.body).toContain("I found your business contact details via LinkedIn");
    expect(r.violations).toEqual([]);
  });
});

describe("prompt caching", () => {
  it("marks the shared system prompt and the client context ephemeral; the lead is only in the messages", async () => {
    await writeStep(input(), { anthropic: claude });
    const [req] = sent();
    expect(req.system).toHaveLength(2);
    expect(req.system[0].cache_control).toEqual({ type: "ephemeral" });
    expect(req.system[1].cache_control).toEqual({ type: "ephemeral" });
    expect(req.system[1].text).toContain('"client_name": "Acme Growth"');
    expect(JSON.stringify(req.system)).not.toContain("Harbour");
    expect(JSON.stringify(req.messages)).toContain("Harbour Logistics");
    // No email or phone goes to the model.
    expect(JSON.stringify(req)).not.toMatch(/@|\+61/);
  });

  it("the second lead of the same client reads the cached prefix; only its own block is new input", async () => {
    const first = await writeStep(input(), { anthropic: claude });
    expect(first.usage.cacheWriteTokens).toBeGreaterThan(0);
    expect(first.usage.cacheReadTokens).toBe(0);
    const second = await writeStep(input({}, { firstName: "Ben", company: "Coastal Freight" }), { anthropic: claude });
    expect(second.usage.cacheReadTokens).toBe(first.usage.cacheWriteTokens);
    expect(second.usage.cacheWriteTokens).toBe(0);
    expect(second.costCents).toBeLessThan(first.costCents);
    // Another client's context misses the second breakpoint but still reads the shared prompt.
    const other = await writeStep(input({ client: { ...CLIENT, name: "Other Co", offer: "payroll" } }), { anthropic: claude });
    expect(other.usage.cacheReadTokens).toBeGreaterThan(0);
    expect(other.usage.cacheReadTokens).toBeLessThan(first.usage.cacheWriteTokens);
    expect(other.usage.cacheWriteTokens).toBeGreaterThan(0);
  });
});

describe("provider failures", () => {
  it("429 with retry-after: the SDK waits as told and retries, and the step succeeds", async () => {
    const t0 = Date.now();
    const r = await writeStep(input({}, { notes: "ratelimit" }), { anthropic: claude });
    const waited = Date.now() - t0;
    expect(r.source).toBe("claude");
    expect(state.messageRequests().map((q) => q.status)).toEqual([429, 200]);
    // retry-after: 1 s; the SDK's own first backoff would be ≤ 0.5 s.
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(calls.map((c) => c.status)).toEqual([200]);
  });

  it("529 overloaded: retried by the SDK, then a retryable ContentWriteError for the caller to reschedule", async () => {
    const c1 = client({ maxRetries: 1 });
    const err = await writeStep(input({}, { notes: "overloaded" }), { anthropic: c1 }).catch((e) => e);
    expect(err).toBeInstanceOf(ContentWriteError);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ retryable: true, status: 529, provider: "anthropic" });
    expect(err.message).toContain("overloaded_error");
    expect(state.messageRequests().map((q) => q.status)).toEqual([529, 529]);
    // Or, when the caller prefers, the template.
    state.reset();
    const r = await writeStep(input({}, { notes: "overloaded" }), { anthropic: client({ maxRetries: 0 }), onTransientError: "template" });
    expect(r.source).toBe("template_error");
    expect(r.error).toContain("529");
    expect(r.violations).toEqual([]);
  });

  it("a transient failure mid-research reports the tokens already spent; a permanent one falls back", async () => {
    const failSecond = (e: ProviderError): AnthropicClient => {
      let n = 0;
      return { ...claude, createMessage: (p, ctx) => (++n === 2 ? Promise.reject(e) : claude.createMessage(p, ctx)) };
    };
    const deps = { search: async () => [] };
    const transient = new ProviderError({ provider: "anthropic", operation: "content.research", code: "http", status: 529, retryable: true, message: "HTTP 529: overloaded" });
    const err = await writeStep(input({ tier: "hot" }), { ...deps, anthropic: failSecond(transient) }).catch((e) => e);
    expect(err).toBeInstanceOf(ContentWriteError);
    expect(err).toMatchObject({ retryable: true, status: 529, model: DEFAULT_MODELS.large });
    expect(err.costCents).toBeGreaterThan(0);
    expect(err.usage.outputTokens).toBeGreaterThan(0);

    const permanent = toProviderError(new Error("socket hang up in a proxy"), "content.research");
    expect(permanent.retryable).toBe(false);
    const r = await writeStep(input({ tier: "hot" }), { ...deps, anthropic: failSecond(permanent) });
    expect(r.source).toBe("template_error");
    expect(r.calls).toBe(1);
    expect(r.costCents).toBeGreaterThan(0);
    expect(r.violations).toEqual([]);
  });

  it("the spend-limit 429 is not retried and falls back to the template", async () => {
    const r = await writeStep(input({}, { notes: "spendlimit" }), { anthropic: claude });
    expect(state.messageRequests().map((q) => q.status)).toEqual([429]);
    expect(r.source).toBe("template_error");
    expect(r.error).toContain("enforced_spend_limit_reached");
    expect(r.violations).toEqual([]);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ provider: "anthropic", status: 429, costCents: 0 });
  });

  it("malformed tool input: one retry with the problems fed back, then the template", async () => {
    const r = await writeStep(input({}, { notes: "malformed" }), { anthropic: claude });
    expect(r.source).toBe("template_fallback");
    expect(r.model).toBe(DEFAULT_MODELS.small);
    expect(r.calls).toBe(2);
    expect(r.costCents).toBeGreaterThan(0);
    expect(r.notes.join(" ")).toContain("body:");
    expect(r.violations).toEqual([]);
    expect(r.subject).toBe("Quick question, Ada");
    const [, retry] = sent();
    const feedback = retry.messages.at(-1)!.content as Array<{ type: string; is_error?: boolean; content?: string }>;
    expect(feedback[0]).toMatchObject({ type: "tool_result", is_error: true });
    expect(feedback[0].content).toContain("body");
    expect(retry.messages.at(-2)!.role).toBe("assistant");
  });

  it("violations (spam words) are fed back and fixed on the retry", async () => {
    const r = await writeStep(input({}, { notes: "spammy" }), { anthropic: claude });
    expect(r.source).toBe("claude");
    expect(r.calls).toBe(2);
    expect(r.body).not.toMatch(/act now/i);
    expect(r.notes.join(" ")).toMatch(/fixed on retry: spam_word/);
    const retry = sent()[1];
    expect(JSON.stringify(retry.messages.at(-1))).toContain("spam-trigger wording");
  });

  it("a refusal falls back to the template without a retry", async () => {
    const r = await writeStep(input({}, { notes: "refusal" }), { anthropic: claude });
    expect(r.source).toBe("template_fallback");
    expect(r.calls).toBe(1);
    expect(r.notes.join(" ")).toContain("refusal");
  });

  it("maps SDK errors to ProviderError", async () => {
    const bad = client({ apiKey: "wrong-key" });
    const e = await bad.createMessage({ model: DEFAULT_MODELS.small, max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).catch((x) => x);
    expect(e).toBeInstanceOf(ProviderError);
    expect(e).toMatchObject({ status: 401, retryable: false, code: "not_configured" });
    // The sandbox's own checks come back as a non-retryable invalid request naming the problem.
    const e2 = await claude.createMessage({ model: "claude-opus-9", max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).catch((x) => x);
    expect(e2).toMatchObject({ status: 400, retryable: false, code: "invalid_request" });
    expect(e2.message).toContain("claude-opus-9");
    const dead = createAnthropicClient({ apiKey: "k", baseUrl: "http://127.0.0.1:1", maxRetries: 0, timeoutMs: 2_000 });
    const e3 = await dead.createMessage({ model: DEFAULT_MODELS.small, max_tokens: 10, messages: [{ role: "user", content: "hi" }] }).catch((x) => x);
    expect(e3).toMatchObject({ code: "network", retryable: true });
  });
});

describe("configuration from the environment", () => {
  const NAMES = ["ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL_LARGE", "ANTHROPIC_MODEL_SMALL", "ANTHROPIC_MAX_RETRIES"];
  function withEnv(vars: Record<string, string | undefined>, fn: () => void) {
    const saved = Object.fromEntries(NAMES.map((n) => [n, process.env[n]]));
    try {
      for (const n of NAMES) delete process.env[n];
      for (const [k, v] of Object.entries(vars)) if (v !== undefined) process.env[k] = v;
      fn();
    } finally {
      for (const n of NAMES) {
        if (saved[n] === undefined) delete process.env[n];
        else process.env[n] = saved[n];
      }
    }
  }

  it("is configured by a key, or by a local sandbox URL; models default and can be overridden", () => {
    withEnv({}, () => {
      expect(anthropicConfigured()).toBe(false);
      expect(anthropicFromEnv()).toBeNull();
      expect(anthropicModels()).toEqual({ large: "claude-sonnet-5-5", small: "claude-haiku-5-5" });
    });
    withEnv({ ANTHROPIC_BASE_URL: "https://api.anthropic.com" }, () => expect(anthropicConfigured()).toBe(false));
    withEnv({ ANTHROPIC_API_KEY: "sk-ant-x" }, () => expect(anthropicConfigured()).toBe(true));
    withEnv({ ANTHROPIC_BASE_URL: `${base}` }, () => {
      expect(anthropicConfigured()).toBe(true);
      expect(anthropicFromEnv()!.baseUrl).toBe(base);
    });
    withEnv({ ANTHROPIC_API_KEY: "k", ANTHROPIC_MODEL_LARGE: "claude-sonnet-4-6", ANTHROPIC_MODEL_SMALL: " claude-haiku-4-5 ", ANTHROPIC_MAX_RETRIES: "0" }, () => {
      const c = anthropicFromEnv()!;
      expect(c.models).toEqual({ large: "claude-sonnet-4-6", small: "claude-haiku-4-5" });
      expect(c.sdk.maxRetries).toBe(0);
    });
  });

  it("an aborted call is thrown, not turned into a template", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(writeStep(input(), { anthropic: claude, signal: ac.signal })).rejects.toMatchObject({ code: "aborted" });
  });
});

describe("budget and keys", () => {
  it("an exhausted budget uses the template without calling", async () => {
    const r = await writeStep(input({ tier: "hot" }), { anthropic: claude, budget: { spentCents: 5_000, limitCents: 5_000 } });
    expect(r.source).toBe("template_budget");
    expect(r.calls).toBe(0);
    expect(sent()).toHaveLength(0);
  });

  it("a budget that can't cover the estimated call uses the template; one that can, Claude", async () => {
    const tight = await writeStep(input(), { anthropic: claude, budget: { spentCents: 999.999, limitCents: 1_000 } });
    expect(tight.source).toBe("template_budget");
    expect(tight.notes.join(" ")).toContain("would pass the budget");
    expect(sent()).toHaveLength(0);
    const roomy = await writeStep(input(), { anthropic: claude, budget: { spentCents: 10, limitCents: 1_000 } });
    expect(roomy.source).toBe("claude");
  });

  it("hot research stops when the budget would not cover another round, and the spend so far is reported", async () => {
    const deps: WriteStepDeps = {
      anthropic: claude, search: async () => [{ title: "Something", link: "https://x.example" }], fetchSite: async () => "page",
    };
    // The first research call as it would be sent, and what it is estimated to cost.
    let first: MessageParams | null = null;
    await writeStep(input({ tier: "hot" }), { ...deps, anthropic: { ...claude, createMessage: (p, c) => ((first ??= p), claude.createMessage(p, c)) } });
    state.reset();
    const limit = estimateCallCents(first!) + 0.01;
    const r = await writeStep(input({ tier: "hot" }), { ...deps, budget: { spentCents: 0, limitCents: limit } });
    expect(sent()).toHaveLength(1);
    expect(r.source).toBe("template_budget");
    expect(r.calls).toBe(1);
    expect(r.costCents).toBeGreaterThan(0);
    expect(r.model).toBe(DEFAULT_MODELS.large);
    expect(r.notes.join(" ")).toMatch(/research stopped after 1 rounds/);
    expect(r.violations).toEqual([]);
  });

  it("no key: the template for every tier, and no request", async () => {
    for (const tier of ["hot", "warm", "cool"] as const) {
      const r = await writeStep(input({ tier }), { anthropic: null });
      expect(r).toMatchObject({ source: "template_no_key", model: null, calls: 0, costCents: 0, violations: [] });
    }
    expect((await writeStep(input({ tier: "cold" }), {})).source).toBe("template");
    await expect(writeStep(input({ tier: "dead" }), {})).rejects.toBeInstanceOf(ContentRefusedError);
    expect(state.requests).toHaveLength(0);
  });
});

describe("prices", () => {
  it("prices Sonnet 5.5 and Haiku 5.5 from the table, in cents", () => {
    const u = { inputTokens: 1_000_000, outputTokens: 1_000_000, cacheReadTokens: 1_000_000, cacheWriteTokens: 1_000_000 };
    // Sonnet 5.5: $2 + $10 + $0.10 read + $2.50 write = $14.60
    expect(costCents("claude-sonnet-5-5", u)).toBe(1_460);
    // Haiku 5.5 above 100K prompt tokens: $0.50 + $2.50 + $0.05 + $0.625
    expect(costCents("claude-haiku-5-5", u)).toBeCloseTo(367.5, 4);
    // …and at or below 100K: $0.10/$0.50 per MTok.
    expect(costCents("claude-haiku-5-5", { inputTokens: 10_000, outputTokens: 1_000, cacheReadTokens: 0, cacheWriteTokens: 0 })).toBeCloseTo(0.15, 4);
    // 1-hour cache writes at their own price; batch halves input and output.
    expect(costCents("claude-sonnet-5-5", { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 1_000_000, cacheWrite1hTokens: 1_000_000 })).toBe(400);
    expect(costCents("claude-sonnet-5-5", { inputTokens: 1_000_000, outputTokens: 1_000_000, cacheReadTokens: 0, cacheWriteTokens: 0 }, { batch: true })).toBe(600);
    // Dated snapshot ids and unknown models (priced as the dearest Sonnet).
    expect(costCents("claude-haiku-4-5-20251001", { ...u, cacheReadTokens: 0, cacheWriteTokens: 0 })).toBe(600);
    expect(costCents("claude-mystery-9", { inputTokens: 1_000_000, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 })).toBe(ANTHROPIC_PRICES["claude-sonnet-4-6"].input * 100);
  });

  it("reads the API usage object, nulls included", () => {
    expect(usageFromApi({ input_tokens: 10, output_tokens: 5, cache_read_input_tokens: null, cache_creation_input_tokens: 7, cache_creation: { ephemeral_5m_input_tokens: 3, ephemeral_1h_input_tokens: 4 } }))
      .toEqual({ inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 7, cacheWrite1hTokens: 4 });
  });

  it("estimates pessimistically: every input token at the cache-write price and all of max_tokens", () => {
    expect(estimateCostCents("claude-sonnet-5-5", { inputTokens: 1_000_000, outputTokens: 1_000_000 })).toBe(1_250);
    expect(estimateCostCents("claude-sonnet-5-5", { inputChars: 3_000, outputTokens: 0, calls: 2 })).toBeCloseTo(2 * 1_000 * 2.5 / 10_000, 4);
  });

  it("records one provider_calls row per call with tokens and cost", async () => {
    const r = await writeStep(input(), { anthropic: claude });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({
      provider: "anthropic", operation: "content.write", status: 200, cached: false,
      leadId: "22222222-2222-4222-8222-222222222222", clientId: CLIENT.id, costCents: r.costCents, error: null,
    });
    expect(calls[0].credits).toBe(r.usage.inputTokens + r.usage.outputTokens + r.usage.cacheReadTokens + r.usage.cacheWriteTokens);
  });
});

describe("the sandbox checks requests", () => {
  const good = (): Record<string, unknown> => ({
    model: DEFAULT_MODELS.small,
    max_tokens: 100,
    system: [
      { type: "text", text: "shared", cache_control: { type: "ephemeral" } },
      { type: "text", text: "<client>{}</client>", cache_control: { type: "ephemeral" } },
    ],
    tools: [{ name: "write_message", input_schema: { type: "object", properties: { body: { type: "string" } }, required: ["body"] } }],
    tool_choice: { type: "tool", name: "write_message" },
    messages: [{ role: "user", content: "<lead>{}</lead>" }],
  });
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${base}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", ...headers },
      body: JSON.stringify(body),
    });

  it("accepts a well-formed request", async () => {
    const res = await post(good());
    expect(res.status).toBe(200);
    const msg = await res.json();
    expect(msg).toMatchObject({ type: "message", role: "assistant", stop_reason: "tool_use" });
    expect(msg.content[0]).toMatchObject({ type: "tool_use", name: "write_message" });
  });

  it.each([
    ["missing cache_control on the shared prompt", (b: any) => delete b.system[0].cache_control, "system.0.cache_control"],
    ["missing cache_control on the client block", (b: any) => delete b.system[1].cache_control, "client-context block"],
    ["system as a plain string", (b: any) => (b.system = "hello <client></client>"), "system: must be an array"],
    ["lead data in the system prompt", (b: any) => (b.system[1].text += "<lead>{}</lead>"), "per-lead data"],
    ["an unconfigured model", (b: any) => (b.model = "claude-3-opus"), "claude-3-opus"],
    ["no tools", (b: any) => delete b.tools, "write tool"],
    ["a write tool without body", (b: any) => (b.tools[0].input_schema.required = []), 'require "body"'],
    ["tool_choice auto without research tools", (b: any) => (b.tool_choice = { type: "auto" }), "tool_choice: must force"],
    ["tool_choice missing", (b: any) => delete b.tool_choice, "tool_choice"],
    ["a temperature", (b: any) => (b.temperature = 0.2), "temperature"],
    ["assistant prefill", (b: any) => b.messages.push({ role: "assistant", content: "Hi" }), "prefill"],
    ["an orphan tool_result", (b: any) => (b.messages = [{ role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_x", content: "x" }] }]), "no corresponding tool_use"],
  ])("rejects %s with 400 naming the problem", async (_name, mutate, expected) => {
    const b = good();
    mutate(b);
    const res = await post(b);
    expect(res.status).toBe(400);
    const err = await res.json();
    expect(err.type).toBe("error");
    expect(err.error.type).toBe("invalid_request_error");
    expect(err.error.message).toContain(expected);
  });

  it("checks the headers", async () => {
    expect((await post(good(), { "x-api-key": "" })).status).toBe(401);
    expect((await post(good(), { "x-api-key": "other" })).status).toBe(401);
    const noVersion = await fetch(`${base}/v1/messages`, { method: "POST", headers: { "x-api-key": "sk-ant-test" }, body: JSON.stringify(good()) });
    expect(noVersion.status).toBe(400);
    expect((await noVersion.json()).error.message).toContain("anthropic-version");
    expect((await post(good(), { "anthropic-version": "2019-01-01" })).status).toBe(400);
    // @anthropic-ai/sdk 1.x sends its key as a bearer token and API version 2026-10-21; both are accepted.
    await claude.createMessage(good() as unknown as MessageParams);
    const rec = state.messageRequests().at(-1)!;
    expect(rec.status).toBe(200);
    expect(rec.headers.authorization).toBe("Bearer sk-ant-test");
    expect(rec.headers["anthropic-version"]).toBe("2026-10-21");
    expect((await post(good(), { "x-api-key": "", authorization: "Bearer sk-ant-test" })).status).toBe(200);
    expect((await post(good(), { "x-api-key": "", authorization: "Bearer nope" })).status).toBe(401);
  });
});

describe("message batches", () => {
  async function params(lead: Partial<WriteStepInput["lead"]>): Promise<MessageParams> {
    // Capture what the engine would send, for a batch of pre-generated steps.
    let captured: MessageParams | null = null;
    await writeStep(input({}, lead), {
      anthropic: { ...claude, createMessage: async (p, ctx) => ((captured = p), claude.createMessage(p, ctx)) },
    });
    return captured!;
  }

  it("submits, polls and reads JSONL results at batch prices", async () => {
    const p1 = await params({ firstName: "Ada" });
    const p2 = await params({ firstName: "Ben", company: "Coastal Freight" });
    const p3 = { ...p1, model: "claude-unknown" };
    const sub = await claude.submitBatch([{ custom_id: "step-1", params: p1 }, { custom_id: "step-2", params: p2 }, { custom_id: "step-3", params: p3 }]);
    expect(sub.status).toBe("in_progress");
    expect(sub.counts.processing).toBe(3);
    await expect(claude.batchResults(sub.id)).rejects.toMatchObject({ retryable: true });
    const done = await claude.batchStatus(sub.id);
    expect(done.status).toBe("ended");
    expect(done.counts).toMatchObject({ succeeded: 2, errored: 1 });
    const results = await claude.batchResults(sub.id);
    const byId = Object.fromEntries(results.map((r) => [r.customId, r]));
    expect(byId["step-1"].type).toBe("succeeded");
    expect(byId["step-2"].message!.content[0]).toMatchObject({ type: "tool_use", name: "write_message" });
    expect(JSON.stringify(byId["step-2"].message!.content)).toContain("Hi Ben");
    expect(byId["step-1"].costCents).toBe(costCents(DEFAULT_MODELS.small, byId["step-1"].usage!, { batch: true }));
    expect(byId["step-3"]).toMatchObject({ type: "errored" });
    expect(byId["step-3"].error).toContain("claude-unknown");
  });

  it("rejects duplicate or malformed custom_ids before sending", async () => {
    const p = { model: DEFAULT_MODELS.small, max_tokens: 1, messages: [{ role: "user" as const, content: "x" }] };
    await expect(claude.submitBatch([{ custom_id: "a", params: p }, { custom_id: "a", params: p }])).rejects.toMatchObject({ code: "invalid_request" });
    await expect(claude.submitBatch([{ custom_id: "has space", params: p }])).rejects.toMatchObject({ code: "invalid_request" });
    await expect(claude.submitBatch([])).rejects.toMatchObject({ code: "invalid_request" });
    expect(state.requests).toHaveLength(0);
  });

  it("the batch results check the same rules: checkContent passes on a batch-written message", async () => {
    const p = await params({});
    const sub = await claude.submitBatch([{ custom_id: "x", params: p }]);
    await claude.batchStatus(sub.id);
    const [res] = await claude.batchResults(sub.id);
    const input0 = (res.message!.content[0] as { input: { body: string } }).input;
    expect(input0.body).toMatch(/^Hi Ada,/);
    expect(checkContent("email", { subject: "s", body: `${input0.body}\n\nSam Taylor\nUnsubscribe {{unsubscribe_url}}` }, { senderName: "Sam Taylor" })).toEqual([]);
  });
});
