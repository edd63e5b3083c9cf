// Apify client (providers.md §10): a LinkedIn profile through a store actor's run-sync-get-dataset-items,
// mapped defensively (actor output schemas drift) with the raw item kept, cached per LinkedIn key.
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { readEnv } from "../config/env.ts";
import {
  isLocalUrl,
  lenient,
  linkedinKey,
  ProviderError,
  providerFetch,
  rateLimitFromEnv,
  toNumber,
  type ProviderCallContext,
  type ProviderSpec,
  type RateLimitSpec,
  type RecordCall,
  type RetrySpec,
  type SqlTag,
} from "./provider-http.ts";

export const APIFY_DEFAULT_BASE_URL = "https://api.apify.com/v2";
export const APIFY_DEFAULT_LINKEDIN_ACTOR = "dev_fusion~Linkedin-Profile-Scraper";

export const APIFY_TTL = {
  // Activity ("posted in the last 30 days") goes stale; a week keeps the signal honest.
  profileSeconds: 7 * 86_400,
  noMatchSeconds: 3 * 86_400,
};

export interface ApifyConfig {
  token?: string;
  baseUrl?: string;
  /** username~actor-name (tilde) or an actor id. */
  linkedinActorId?: string;
  /** The actor's own run timeout (s), sent as ?timeout=; the HTTP timeout is this plus a margin. */
  runTimeoutSeconds?: number;
  /** Default 30 runs/min shared (APIFY_RATE_LIMIT overrides). */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  /** Pay-per-result price of one profile (dev_fusion lists about $10 per 1,000; default 1 cent). */
  centsPerProfile?: number;
  fetch?: typeof fetch;
}

export interface LinkedinExperience {
  title: string | null;
  companyName: string | null;
  startedOn: string | null;
  current: boolean | null;
}

export interface LinkedinProfile {
  /** The normalised profile URL (lead_pool.linkedin_key's form). */
  linkedinUrl: string;
  firstName: string | null;
  lastName: string | null;
  fullName: string | null;
  headline: string | null;
  jobTitle: string | null;
  companyName: string | null;
  companyWebsite: string | null;
  companyIndustry: string | null;
  location: string | null;
  email: string | null;
  connections: number | null;
  followers: number | null;
  /** Latest post or profile activity the actor reported (ISO), if any. */
  lastActivityAt: string | null;
  /** Start of the current job (as the actor gives it: "2021-03", "3-2021", ISO…). */
  jobStartedOn: string | null;
  experiences: LinkedinExperience[];
  /** The actor's item as returned. */
  raw: Record<string, unknown>;
}

export interface ApifyClient {
  linkedinProfile(linkedinUrl: string, ctx?: ProviderCallContext): Promise<LinkedinProfile | null>;
}

// ---------------------------------------------------------------------------------------------

const str = (v: unknown) => lenient.string.parse(v);

function isoOrNull(v: unknown): string | null {
  if (typeof v === "number" && Number.isFinite(v)) return new Date(v > 1e12 ? v : v * 1000).toISOString();
  if (typeof v !== "string" || !v.trim()) return null;
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

/** The newest of the dates an actor may report activity under. */
function lastActivity(item: Record<string, unknown>): string | null {
  const candidates: unknown[] = [item.lastActivityAt, item.lastActivity, item.lastPostedAt];
  for (const list of [item.updates, item.posts, item.activities]) {
    if (Array.isArray(list)) {
      for (const p of list) {
        if (p && typeof p === "object") {
          const o = p as Record<string, unknown>;
          candidates.push(o.postedAt, o.postedDate, o.date, o.time);
        }
      }
    }
  }
  const dates = candidates.map(isoOrNull).filter((d): d is string => d !== null).sort();
  return dates.at(-1) ?? null;
}

function experiences(item: Record<string, unknown>): LinkedinExperience[] {
  const list = Array.isArray(item.experiences) ? item.experiences : Array.isArray(item.positions) ? item.positions : [];
  return list.flatMap((e) => {
    if (!e || typeof e !== "object") return [];
    const o = e as Record<string, unknown>;
    const current = typeof o.jobStillWorking === "boolean" ? o.jobStillWorking
      : typeof o.current === "boolean" ? o.current
      : typeof o.caption === "string" ? /present/i.test(o.caption) : null;
    return [{
      title: str(o.title) ?? str(o.position),
      companyName: str(o.companyName) ?? str(o.subtitle)?.split(" · ")[0] ?? null,
      startedOn: str(o.jobStartedOn) ?? str(o.startedOn) ?? str(o.startDate),
      current,
    }];
  });
}

const ItemWire = z.record(z.string(), z.unknown());

function mapItem(requestedKey: string, item: Record<string, unknown>): LinkedinProfile {
  const first = str(item.firstName);
  const last = str(item.lastName);
  const exps = experiences(item);
  const current = exps.find((e) => e.current) ?? exps[0];
  return {
    linkedinUrl: linkedinKey(str(item.linkedinUrl) ?? str(item.url) ?? str(item.profileUrl) ?? "") ?? requestedKey,
    firstName: first,
    lastName: last,
    fullName: str(item.fullName) ?? ([first, last].filter(Boolean).join(" ") || null),
    headline: str(item.headline),
    jobTitle: str(item.jobTitle) ?? current?.title ?? null,
    companyName: str(item.companyName) ?? current?.companyName ?? null,
    companyWebsite: str(item.companyWebsite),
    companyIndustry: str(item.companyIndustry),
    location: str(item.addressWithCountry) ?? str(item.location) ?? str(item.addressWithoutCountry),
    email: str(item.email),
    connections: toNumber(item.connections) ?? toNumber(item.connectionsCount),
    followers: toNumber(item.followers) ?? toNumber(item.followersCount),
    lastActivityAt: lastActivity(item),
    jobStartedOn: str(item.jobStartedOn) ?? current?.startedOn ?? null,
    experiences: exps,
    raw: item,
  };
}

export function createApifyClient(config: ApifyConfig = {}): ApifyClient {
  const baseUrl = config.baseUrl ?? readEnv("APIFY_BASE_URL") ?? APIFY_DEFAULT_BASE_URL;
  const token = config.token ?? readEnv("APIFY_TOKEN") ?? (isLocalUrl(baseUrl) ? "sandbox" : undefined);
  const actorId = config.linkedinActorId ?? readEnv("APIFY_LINKEDIN_ACTOR_ID") ?? APIFY_DEFAULT_LINKEDIN_ACTOR;
  const runTimeout = config.runTimeoutSeconds ?? 120;
  const centsPerProfile = config.centsPerProfile ?? 1;
  const spec: ProviderSpec = {
    provider: "apify",
    baseUrl,
    headers: { authorization: `Bearer ${token ?? ""}` },
    missingCredentials: token ? undefined : "APIFY_TOKEN is not set",
    rateLimit: config.rateLimit ?? rateLimitFromEnv("APIFY_RATE_LIMIT", { limit: 30, window: "1 m" }),
    // A run that timed out on our side keeps running (and billing) at Apify: don't start a second one.
    retry: { attempts: 2, onTimeout: false, ...config.retry },
    timeoutMs: (runTimeout + 15) * 1000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: config.fetch,
  };

  return {
    async linkedinProfile(linkedinUrl, ctx) {
      const key = linkedinKey(linkedinUrl);
      if (!key) {
        throw new ProviderError({
          provider: "apify", operation: "linkedin.profile", code: "invalid_request", retryable: false,
          message: `"${linkedinUrl}" is not a LinkedIn profile URL (https://www.linkedin.com/in/…)`,
        });
      }
      const schema = z.array(z.unknown()).transform((items) => {
        const objects = items.flatMap((i) => {
          const r = ItemWire.safeParse(i);
          return r.success ? [r.data] : [];
        });
        // Some actors answer a miss with an item carrying only an error field.
        const usable = objects.filter((o) => !o.error && (o.fullName || o.firstName || o.headline || o.linkedinUrl));
        const exact = usable.find((o) => linkedinKey(String(o.linkedinUrl ?? o.url ?? "")) === key);
        const item = exact ?? usable[0];
        return item ? mapItem(key, item) : null;
      });
      const res = await providerFetch(spec, {
        operation: "linkedin.profile",
        method: "POST",
        path: `/acts/${encodeURIComponent(actorId).replace(/%7E/gi, "~")}/run-sync-get-dataset-items`,
        query: { timeout: runTimeout },
        body: { profileUrls: [key] },
        schema,
        cache: { kind: "person:linkedin", key, ttlSeconds: APIFY_TTL.profileSeconds, nullTtlSeconds: APIFY_TTL.noMatchSeconds },
        // Pay-per-result: a profile returned is one result charged; an empty dataset costs nothing.
        credits: (p) => (p ? 1 : 0),
        costCents: (_p, credits) => credits * centsPerProfile,
      }, ctx);
      return res.data;
    },
  };
}
