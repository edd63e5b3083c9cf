// DataForSEO v3 client: the technologies a domain runs (Domain Analytics, live) and Google News for a
// company (SERP, live). HTTP Basic auth; a JSON array of one task in, {status_code, tasks:[…]} out.
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { readEnv } from "../config/env.ts";
import {
  isLocalUrl,
  lenient,
  normalizeDomain,
  ProviderError,
  providerFetch,
  rateLimitFromEnv,
  sha256Hex,
  tolerantArray,
  type ProviderCallContext,
  type ProviderSpec,
  type RateLimitSpec,
  type RecordCall,
  type RetrySpec,
  type SqlTag,
} from "./provider-http.ts";

export const DATAFORSEO_DEFAULT_BASE_URL = "https://api.dataforseo.com";

export const DATAFORSEO_TTL = {
  // A site's stack changes over months, not days.
  technologiesSeconds: 30 * 86_400,
  noDataSeconds: 7 * 86_400,
  newsSeconds: 86_400,
};

export interface DataForSeoConfig {
  login?: string;
  password?: string;
  /** Without /v3: paths are /v3/… */
  baseUrl?: string;
  /** Default 600 calls/min shared (DATAFORSEO_RATE_LIMIT overrides); DataForSEO allows 2,000/min. */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  fetch?: typeof fetch;
}

export interface DataForSeoNewsOptions {
  /** DataForSEO location code (default 2036, Australia). */
  locationCode?: number;
  languageCode?: string;
  /** Results (default 10; billed per 10). */
  depth?: number;
}

export interface DataForSeoNewsItem {
  title: string;
  url: string;
  domain: string | null;
  source: string | null;
  snippet: string | null;
  /** "YYYY-MM-DD HH:MM:SS +00:00" as DataForSEO gives it, made ISO. */
  publishedAt: string | null;
  /** As Google shows it ("2 days ago"). */
  timePublished: string | null;
  rank: number | null;
}

export interface DataForSeoClient {
  /** Technology names detected on the domain (de-duplicated, sorted); [] when DataForSEO knows none. */
  domainTechnologies(domain: string, ctx?: ProviderCallContext): Promise<string[]>;
  googleNews(keyword: string, opts?: DataForSeoNewsOptions, ctx?: ProviderCallContext): Promise<DataForSeoNewsItem[]>;
}

// ---------------------------------------------------------------------------------------------
// The envelope every v3 endpoint answers with; only a single-task call is made here.
// ---------------------------------------------------------------------------------------------

const OK = 20000;
// Task codes meaning "nothing to report" rather than failure.
const NO_RESULTS = new Set([40102]);

function envelope<T>(result: z.ZodType<T>) {
  return z.object({
    status_code: z.number(),
    status_message: lenient.string,
    cost: lenient.number,
    tasks: z.array(z.object({
      status_code: z.number(),
      status_message: lenient.string,
      cost: lenient.number,
      result: result.nullish(),
    })).nullish(),
  }).transform((b) => {
    const task = b.tasks?.[0];
    return {
      code: b.status_code !== OK ? b.status_code : task?.status_code ?? b.status_code,
      message: (b.status_code !== OK ? b.status_message : task?.status_message) ?? null,
      costUsd: b.cost ?? task?.cost ?? 0,
      result: task && task.status_code === OK ? task.result ?? null : null,
    };
  });
}

/** Codes: 20000 ok; 40102 no results; 402xx account/limits and 5xxxx server side are worth retrying later. */
function checkEnvelope(e: { code: number; message: string | null }) {
  if (e.code === OK || NO_RESULTS.has(e.code)) return null;
  const retryable = e.code >= 50000 || e.code === 40202 || e.code === 40209;
  return { message: `status ${e.code}: ${e.message ?? "no message"}`, retryable };
}

/** group → category → names (or group → names): every name, once. */
export function flattenTechnologies(tech: unknown): string[] {
  const names = new Set<string>();
  const walk = (v: unknown, depth: number) => {
    if (depth > 6 || v === null || v === undefined) return;
    if (typeof v === "string") {
      if (v.trim()) names.add(v.trim());
    } else if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
    } else if (typeof v === "object") {
      for (const x of Object.values(v)) walk(x, depth + 1);
    }
  };
  walk(tech, 0);
  return [...names].sort((a, b) => a.localeCompare(b));
}

const TechnologiesResult = z.array(z.object({ technologies: z.unknown().optional() }).loose())
  .transform((items) => flattenTechnologies(items.map((i) => i.technologies)));

const NewsItemWire = z.object({
  type: lenient.string,
  title: z.string(),
  url: z.string(),
  domain: lenient.string,
  source: lenient.string,
  snippet: lenient.string,
  timestamp: lenient.string,
  time_published: lenient.string,
  rank_absolute: lenient.number,
}).transform((n) => ({
  type: n.type,
  item: {
    title: n.title,
    url: n.url,
    domain: n.domain,
    source: n.source,
    snippet: n.snippet,
    publishedAt: dfsTimeToIso(n.timestamp),
    timePublished: n.time_published,
    rank: n.rank_absolute,
  } satisfies DataForSeoNewsItem,
}));

const NewsResult = z.array(z.object({ items: tolerantArray(NewsItemWire).nullish() }).loose())
  .transform((results) =>
    results.flatMap((r) => r.items ?? []).filter((i) => i.type === null || i.type === "news_search").map((i) => i.item)
  );

/** "2026-11-20 08:15:00 +00:00" → ISO. */
function dfsTimeToIso(s: string | null): string | null {
  if (!s) return null;
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})\s*([+-]\d{2}:?\d{2})?$/.exec(s.trim());
  const t = m ? Date.parse(`${m[1]}T${m[2]}${m[3] ? m[3].replace(/^([+-]\d{2})(\d{2})$/, "$1:$2") : "Z"}`) : Date.parse(s);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

function basicAuth(login: string, password: string): string {
  const bytes = new TextEncoder().encode(`${login}:${password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

export function createDataForSeoClient(config: DataForSeoConfig = {}): DataForSeoClient {
  const baseUrl = config.baseUrl ?? readEnv("DATAFORSEO_BASE_URL") ?? DATAFORSEO_DEFAULT_BASE_URL;
  const sandbox = isLocalUrl(baseUrl) ? "sandbox" : undefined;
  const login = config.login ?? readEnv("DATAFORSEO_LOGIN") ?? sandbox;
  const password = config.password ?? readEnv("DATAFORSEO_PASSWORD") ?? sandbox;
  const spec: ProviderSpec = {
    provider: "dataforseo",
    baseUrl,
    headers: { authorization: basicAuth(login ?? "", password ?? "") },
    missingCredentials: login && password ? undefined : "DATAFORSEO_LOGIN and DATAFORSEO_PASSWORD are not both set",
    rateLimit: config.rateLimit ?? rateLimitFromEnv("DATAFORSEO_RATE_LIMIT", { limit: 600, window: "1 m" }),
    retry: config.retry,
    timeoutMs: config.timeoutMs ?? 30_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: config.fetch,
  };
  // DataForSEO bills money, not credits: one billable task is one credit; the cost is what it reports.
  const costCents = (e: { costUsd: number }) => Math.round(e.costUsd * 100 * 10_000) / 10_000;

  return {
    async domainTechnologies(domain, ctx) {
      const d = normalizeDomain(domain);
      if (!d) {
        throw new ProviderError({
          provider: "dataforseo", operation: "domain_technologies", code: "invalid_request", retryable: false,
          message: `"${domain}" is not a domain`,
        });
      }
      const res = await providerFetch(spec, {
        operation: "domain_technologies",
        method: "POST",
        path: "/v3/domain_analytics/technologies/domain_technologies/live",
        body: [{ target: d }],
        schema: envelope(TechnologiesResult),
        check: checkEnvelope,
        cache: {
          kind: "tech:domain", key: d, ttlSeconds: DATAFORSEO_TTL.technologiesSeconds,
          nullTtlSeconds: DATAFORSEO_TTL.noDataSeconds, isEmpty: (e) => !e.result?.length,
        },
        credits: 1,
        costCents,
      }, ctx);
      return res.data.result ?? [];
    },

    async googleNews(keyword, opts = {}, ctx) {
      const kw = keyword.trim();
      if (!kw || kw.length > 700) {
        throw new ProviderError({
          provider: "dataforseo", operation: "google_news", code: "invalid_request", retryable: false,
          message: "keyword must be 1–700 characters",
        });
      }
      const task = { keyword: kw, location_code: opts.locationCode ?? 2036, language_code: opts.languageCode ?? "en", depth: opts.depth ?? 10 };
      const res = await providerFetch(spec, {
        operation: "google_news",
        method: "POST",
        path: "/v3/serp/google/news/live/advanced",
        body: [task],
        schema: envelope(NewsResult),
        check: checkEnvelope,
        cache: { kind: "news:q", key: await sha256Hex(JSON.stringify(task)), ttlSeconds: DATAFORSEO_TTL.newsSeconds },
        credits: 1,
        costCents,
      }, ctx);
      return res.data.result ?? [];
    },
  };
}
