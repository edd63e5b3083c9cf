// DataForSEO v3 sandbox: Domain Analytics technologies (live) and Google News SERP (live advanced) in the
// v3 envelope, with HTTP Basic auth. A domain's technologies are the ones every sandbox gives it (seeded.ts).
// Mount at /sandbox/dataforseo; DATAFORSEO_BASE_URL=<that> (paths start with /v3).
import { Hono } from "hono";
import type { Context } from "hono";
import {
  companyFromDomain,
  DAY_MS,
  delay,
  failureNow,
  fraction,
  idFor,
  magicIn,
  MALFORMED_BODY,
  OnceOnly,
  SANDBOX_EPOCH,
  type SandboxOptions,
  seeded,
  TECHNOLOGIES,
} from "./seeded.ts";

const VERSION = "0.1.20261124";
const PUBLISHERS: ReadonlyArray<readonly [string, string]> = [
  ["SmartCompany", "smartcompany.com.au"], ["Australian Financial Review", "afr.com"], ["Startup Daily", "startupdaily.net"],
  ["ITNews", "itnews.com.au"], ["The Guardian", "theguardian.com"], ["Business News", "businessnews.com.au"],
];

/** "2026-11-20 08:15:00 +00:00", DataForSEO's timestamp format. */
function dfsTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19).replace("T", " ")} +00:00`;
}

function taskEnvelope(path: string[], data: Record<string, unknown>, task: { status_code: number; status_message: string; cost: number; result: unknown[] | null }) {
  const id = `${idFor(JSON.stringify(data)).slice(0, 8)}-1535-0483-0000-${idFor(path.join("/")).slice(0, 12)}`;
  return {
    version: VERSION,
    status_code: 20000,
    status_message: "Ok.",
    time: "0.1000 sec.",
    cost: task.cost,
    tasks_count: 1,
    tasks_error: task.status_code === 20000 ? 0 : 1,
    tasks: [{
      id,
      status_code: task.status_code,
      status_message: task.status_message,
      time: "0.0900 sec.",
      cost: task.cost,
      result_count: task.result?.length ?? 0,
      path,
      data,
      result: task.result,
    }],
  };
}

function topLevelError(code: number, message: string) {
  return { version: VERSION, status_code: code, status_message: message, time: "0 sec.", cost: 0, tasks_count: 0, tasks_error: 0, tasks: null };
}

export function createDataForSeoSandbox(opts: SandboxOptions = {}): Hono {
  const epoch = opts.epoch ?? SANDBOX_EPOCH;
  const miss = opts.noMatchRate ?? 0.1;
  const once = new OnceOnly();
  const app = new Hono();

  // Any login and password; without Basic credentials, DataForSEO's HTTP 401.
  app.use("*", async (c, next) => {
    const m = c.req.header("authorization")?.match(/^Basic\s+(\S+)/i);
    let ok = false;
    try {
      const decoded = m ? atob(m[1]) : "";
      const colon = decoded.indexOf(":");
      ok = colon > 0 && colon < decoded.length - 1;
    } catch {
      ok = false;
    }
    if (!ok) return c.json(topLevelError(40100, "You are not authorized to access this resource. See your login details here: https://app.dataforseo.com/api-access"), 401);
    await next();
  });

  /** The single task of a live call, or the error response DataForSEO would give. */
  async function readTask(c: Context): Promise<{ task: Record<string, unknown> } | { error: Response }> {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return { error: c.json(topLevelError(40000, "Invalid JSON in POST array."), 400) };
    }
    if (!Array.isArray(body) || body.length === 0) return { error: c.json(topLevelError(40000, "POST array is empty."), 200) };
    if (body.length > 1) return { error: c.json(topLevelError(40000, "You can set only one task at a time."), 200) };
    const task = body[0];
    if (!task || typeof task !== "object") return { error: c.json(topLevelError(40000, "Invalid task."), 200) };
    return { task: task as Record<string, unknown> };
  }

  async function simulate(c: Context, value: string, scope: string): Promise<Response | null> {
    const f = failureNow(value, once, scope);
    if (f === "ratelimit") {
      c.header("retry-after", String(opts.retryAfterSeconds ?? 1));
      return c.json(topLevelError(40202, "Rate limit per minute exceeded."), 429);
    }
    if (f === "servererror") {
      return c.json(topLevelError(50000, "Sorry, we could not process your request due to the internal server error. Please, try again later."), 500);
    }
    if (f === "malformed") return c.body(MALFORMED_BODY, 200, { "content-type": "application/json" });
    if (f === "slow") await delay(opts.slowMs ?? 2000);
    return null;
  }

  app.post("/v3/domain_analytics/technologies/domain_technologies/live", async (c) => {
    const read = await readTask(c);
    if ("error" in read) return read.error;
    const path = ["v3", "domain_analytics", "technologies", "domain_technologies", "live"];
    const target = typeof read.task.target === "string" ? read.task.target.trim().toLowerCase().replace(/^www\./, "") : "";
    const data = { api: "domain_analytics", function: "domain_technologies", se: "technologies", target };
    if (!/^[a-z0-9.-]+\.[a-z]{2,63}$/.test(target)) {
      return c.json(taskEnvelope(path, data, { status_code: 40501, status_message: "Invalid Field: 'target'.", cost: 0, result: null }));
    }
    const failure = await simulate(c, target, "domain_technologies");
    if (failure) return failure;
    if (magicIn(target) === "nomatch" || fraction(`dfs:tech:${target}`) < miss) {
      // Known to DataForSEO's crawler or not, an empty answer is still charged.
      return c.json(taskEnvelope(path, data, { status_code: 20000, status_message: "Ok.", cost: 0.01, result: null }));
    }
    const co = companyFromDomain(target, epoch);
    const technologies: Record<string, Record<string, string[]>> = {};
    for (const name of co.technologies) {
      const [, group, category] = TECHNOLOGIES.find(([n]) => n === name)!;
      ((technologies[group] ??= {})[category] ??= []).push(name);
    }
    const r = seeded(`dfs:site:${target}`);
    return c.json(taskEnvelope(path, data, {
      status_code: 20000, status_message: "Ok.", cost: 0.01,
      result: [{
        type: "domain_technology_item",
        domain: target,
        title: `${co.name} | ${co.industry}`,
        description: co.description,
        meta_keywords: co.keywords,
        domain_rank: r.int(50, 700),
        last_visited: dfsTime(epoch - r.int(1, 60) * DAY_MS),
        country_iso_code: co.countryCode,
        language_code: "en",
        content_language_code: "en",
        phone_numbers: [],
        emails: [`info@${target}`],
        social_graph_urls: [co.linkedinUrl],
        technologies,
      }],
    }));
  });

  app.post("/v3/serp/google/news/live/advanced", async (c) => {
    const read = await readTask(c);
    if ("error" in read) return read.error;
    const path = ["v3", "serp", "google", "news", "live", "advanced"];
    const keyword = typeof read.task.keyword === "string" ? read.task.keyword.trim() : "";
    const locationCode = Number(read.task.location_code ?? 2840) || 2840;
    const languageCode = typeof read.task.language_code === "string" ? read.task.language_code : "en";
    const depth = Math.min(200, Math.max(1, Number(read.task.depth ?? 10) || 10));
    const data = { api: "serp", function: "live", se: "google", se_type: "news", keyword, location_code: locationCode, language_code: languageCode, depth, device: "desktop", os: "windows" };
    if (!keyword) return c.json(taskEnvelope(path, data, { status_code: 40501, status_message: "Invalid Field: 'keyword'.", cost: 0, result: null }));
    const failure = await simulate(c, keyword, "google_news");
    if (failure) return failure;
    const domain = /\b((?:[a-z0-9-]+\.)+[a-z]{2,63})\b/i.exec(keyword)?.[1]?.toLowerCase().replace(/^www\./, "");
    const co = domain ? companyFromDomain(domain, epoch) : undefined;
    const subject = co?.name ?? keyword;
    const r = seeded(`dfs:news:${keyword.toLowerCase()}:${locationCode}:${languageCode}`);
    const count = magicIn(keyword) === "nomatch" ? 0 : Math.min(depth, r.int(1, 8) + (co?.signalKeywords.length ?? 0));
    const items = Array.from({ length: count }, (_, i) => {
      const [source, site] = r.pick(PUBLISHERS);
      const kw = co?.signalKeywords[i];
      const ageMs = r.int(1, 24 * 120) * 3_600_000;
      const title = kw ? `${subject} ${kw} signals growth` : `${subject}: ${r.pick(["market update", "interview", "analysis", "what to know"])}`;
      const hours = Math.round(ageMs / 3_600_000);
      return {
        type: "news_search",
        rank_group: i + 1,
        rank_absolute: i + 1,
        position: "left",
        xpath: `/html[1]/body[1]/div[${i + 1}]`,
        domain: site,
        title,
        url: `https://www.${site}/${encodeURIComponent(title.toLowerCase().replace(/\W+/g, "-"))}`,
        image_url: null,
        source,
        snippet: kw ? `${subject} announced its ${kw} this week.` : `Coverage of ${subject}.`,
        time_published: hours < 24 ? `${hours} hour${hours === 1 ? "" : "s"} ago` : `${Math.round(hours / 24)} day${Math.round(hours / 24) === 1 ? "" : "s"} ago`,
        timestamp: dfsTime(epoch - ageMs),
        rectangle: null,
      };
    }).sort((a, b) => b.timestamp.localeCompare(a.timestamp)).map((it, i) => ({ ...it, rank_group: i + 1, rank_absolute: i + 1 }));
    return c.json(taskEnvelope(path, data, {
      status_code: 20000, status_message: "Ok.", cost: 0.002 * Math.ceil(depth / 10),
      result: [{
        keyword,
        type: "news",
        se_domain: "google.com",
        location_code: locationCode,
        language_code: languageCode,
        check_url: `https://www.google.com/search?q=${encodeURIComponent(keyword)}&tbm=nws&hl=${languageCode}`,
        datetime: dfsTime(epoch),
        spell: null,
        refinement_chips: null,
        item_types: ["news_search"],
        se_results_count: count * 1000,
        items_count: items.length,
        items: items.length ? items : null,
      }],
    }));
  });

  app.all("*", (c) => c.json(topLevelError(40400, "Not Found."), 404));
  return app;
}
