// Serper (Google search and news over HTTP): POST /search and /news with X-API-KEY, JSON
// {q, gl, hl, num, page}; answers cached per query so the same website-signal lookup is paid once.
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { readEnv } from "../config/env.ts";
import {
  isLocalUrl,
  lenient,
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

export const SERPER_DEFAULT_BASE_URL = "https://google.serper.dev";

export const SERPER_TTL = {
  searchSeconds: 7 * 86_400,
  // News is the freshest signal we read; a day keeps "recent news" recent.
  newsSeconds: 86_400,
};

export interface SerperConfig {
  apiKey?: string;
  baseUrl?: string;
  /** Default 100 queries/min shared (SERPER_RATE_LIMIT overrides). */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  /** Price of one Serper credit (about $1 per 1,000 on the 50k pack: default 0.1 cents). */
  centsPerCredit?: number;
  fetch?: typeof fetch;
}

export interface SerperOptions {
  /** Country (default "au"). */
  gl?: string;
  /** Language (default "en"). */
  hl?: string;
  /** Results (default 10, at most 100). */
  num?: number;
  page?: number;
  /** Time filter, e.g. "qdr:m" (past month). */
  tbs?: string;
}

export interface SerperOrganic {
  title: string;
  link: string;
  snippet: string | null;
  /** As Google shows it ("Mar 3, 2026", "2 days ago"), when shown. */
  date: string | null;
  position: number | null;
}

export interface SerperNewsItem {
  title: string;
  link: string;
  snippet: string | null;
  date: string | null;
  source: string | null;
  imageUrl: string | null;
  position: number | null;
}

export interface SerperSearchResult {
  query: string;
  organic: SerperOrganic[];
  knowledgeGraph: { title: string | null; type: string | null; website: string | null; description: string | null } | null;
}

export interface SerperNewsResult {
  query: string;
  news: SerperNewsItem[];
}

export interface SerperClient {
  search(q: string, opts?: SerperOptions, ctx?: ProviderCallContext): Promise<SerperSearchResult>;
  news(q: string, opts?: SerperOptions, ctx?: ProviderCallContext): Promise<SerperNewsResult>;
}

/** An absolute date in a Serper "date" ("Mar 3, 2026") or a relative one ("2 days ago") resolved against now. */
export function serperDateToIso(date: string | null, now = Date.now()): string | null {
  if (!date) return null;
  const rel = /^(\d+)\s+(minute|hour|day|week|month|year)s?\s+ago$/i.exec(date.trim());
  if (rel) {
    const unit = { minute: 60_000, hour: 3_600_000, day: 86_400_000, week: 604_800_000, month: 2_592_000_000, year: 31_536_000_000 }[
      rel[2].toLowerCase() as "minute"
    ];
    return new Date(now - Number(rel[1]) * unit).toISOString();
  }
  const t = Date.parse(date);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

const OrganicWire = z.object({
  title: z.string(),
  link: z.string(),
  snippet: lenient.string,
  date: lenient.string,
  position: lenient.number,
}).transform((o): SerperOrganic => ({ title: o.title, link: o.link, snippet: o.snippet, date: o.date, position: o.position }));

const NewsWire = z.object({
  title: z.string(),
  link: z.string(),
  snippet: lenient.string,
  date: lenient.string,
  source: lenient.string,
  imageUrl: lenient.string,
  position: lenient.number,
}).transform((n): SerperNewsItem => ({
  title: n.title, link: n.link, snippet: n.snippet, date: n.date, source: n.source, imageUrl: n.imageUrl, position: n.position,
}));

const SearchParamsWire = z.object({ q: lenient.string }).nullish().catch(null);

const SearchWire = z.object({
  searchParameters: SearchParamsWire,
  organic: tolerantArray(OrganicWire).nullish(),
  knowledgeGraph: z.object({ title: lenient.string, type: lenient.string, website: lenient.string, description: lenient.string })
    .nullish().catch(null),
  credits: lenient.number,
});

const NewsResponseWire = z.object({
  searchParameters: SearchParamsWire,
  news: tolerantArray(NewsWire).nullish(),
  credits: lenient.number,
});

export function createSerperClient(config: SerperConfig = {}): SerperClient {
  const baseUrl = config.baseUrl ?? readEnv("SERPER_BASE_URL") ?? SERPER_DEFAULT_BASE_URL;
  const apiKey = config.apiKey ?? readEnv("SERPER_API_KEY") ?? (isLocalUrl(baseUrl) ? "sandbox" : undefined);
  const centsPerCredit = config.centsPerCredit ?? 0.1;
  const spec: ProviderSpec = {
    provider: "serper",
    baseUrl,
    headers: { "x-api-key": apiKey ?? "" },
    missingCredentials: apiKey ? undefined : "SERPER_API_KEY is not set",
    rateLimit: config.rateLimit ?? rateLimitFromEnv("SERPER_RATE_LIMIT", { limit: 100, window: "1 m" }),
    retry: config.retry,
    timeoutMs: config.timeoutMs ?? 15_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: config.fetch,
  };

  async function request(kind: "search" | "news", q: string, opts: SerperOptions) {
    const query = q.trim();
    const operation = kind;
    if (!query) throw new ProviderError({ provider: "serper", operation, code: "invalid_request", retryable: false, message: "empty query" });
    const num = opts.num ?? 10;
    if (!Number.isInteger(num) || num < 1 || num > 100) {
      throw new ProviderError({ provider: "serper", operation, code: "invalid_request", retryable: false, message: "num must be 1–100" });
    }
    const body = { q: query, gl: opts.gl ?? "au", hl: opts.hl ?? "en", num, page: opts.page, tbs: opts.tbs };
    // Free text makes a poor Redis key: hash the whole request so every option is part of it.
    const key = await sha256Hex(JSON.stringify(body));
    return { body, key, operation };
  }

  return {
    async search(q, opts = {}, ctx) {
      const { body, key, operation } = await request("search", q, opts);
      const res = await providerFetch(spec, {
        operation, method: "POST", path: "/search", body,
        // Serper reports the credits each query cost (larger pages cost more); 1 when it does not say.
        schema: SearchWire.transform((b) => ({
          value: {
            query: b.searchParameters?.q ?? body.q,
            organic: b.organic ?? [],
            knowledgeGraph: b.knowledgeGraph ?? null,
          } satisfies SerperSearchResult,
          credits: b.credits ?? 1,
        })),
        cache: { kind: "search:q", key, ttlSeconds: SERPER_TTL.searchSeconds },
        credits: (r) => r.credits,
        costCents: (_r, credits) => credits * centsPerCredit,
      }, ctx);
      return res.data.value;
    },

    async news(q, opts = {}, ctx) {
      const { body, key, operation } = await request("news", q, opts);
      const res = await providerFetch(spec, {
        operation, method: "POST", path: "/news", body,
        schema: NewsResponseWire.transform((b) => ({
          value: { query: b.searchParameters?.q ?? body.q, news: b.news ?? [] } satisfies SerperNewsResult,
          credits: b.credits ?? 1,
        })),
        cache: { kind: "news:q", key, ttlSeconds: SERPER_TTL.newsSeconds },
        credits: (r) => r.credits,
        costCents: (_r, credits) => credits * centsPerCredit,
      }, ctx);
      return res.data.value;
    },
  };
}
