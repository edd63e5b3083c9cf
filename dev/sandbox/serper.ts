// Serper sandbox: POST /search and /news with X-API-KEY, answering Google-like results derived from the
// query; a domain in the query brings that company's site, hiring and signal pages (seeded.ts).
// Mount at /sandbox/serper; SERPER_BASE_URL=<that>.
import { Hono } from "hono";
import type { Context } from "hono";
import {
  companyFromDomain,
  DAY_MS,
  delay,
  failureNow,
  magicIn,
  MALFORMED_BODY,
  OnceOnly,
  SANDBOX_EPOCH,
  type SandboxCompany,
  type SandboxOptions,
  seeded,
} from "./seeded.ts";

const DOMAIN_IN_QUERY = /(?:site:)?\b((?:[a-z0-9-]+\.)+[a-z]{2,63})\b/i;
const PUBLISHERS = ["SmartCompany", "Australian Financial Review", "Business News", "TechCrunch", "Startup Daily", "The Guardian", "ITNews", "Mumbrella"];

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
function googleDate(ms: number): string {
  const d = new Date(ms);
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}, ${d.getUTCFullYear()}`;
}

export function createSerperSandbox(opts: SandboxOptions = {}): Hono {
  const epoch = opts.epoch ?? SANDBOX_EPOCH;
  const once = new OnceOnly();
  const app = new Hono();

  app.use("*", async (c, next) => {
    if (!c.req.header("x-api-key")?.trim()) return c.json({ message: "Unauthorized.", statusCode: 403 }, 403);
    await next();
  });

  async function readQuery(c: Context) {
    let body: Record<string, unknown>;
    try {
      body = await c.req.json();
    } catch {
      return { error: c.json({ message: "Invalid JSON body", statusCode: 400 }, 400) };
    }
    const q = typeof body.q === "string" ? body.q.trim() : "";
    if (!q) return { error: c.json({ message: "Missing query parameter q", statusCode: 400 }, 400) };
    const num = Math.min(100, Math.max(1, Number(body.num ?? 10) || 10));
    const page = Math.max(1, Number(body.page ?? 1) || 1);
    const gl = typeof body.gl === "string" ? body.gl : "us";
    const hl = typeof body.hl === "string" ? body.hl : "en";
    const domain = DOMAIN_IN_QUERY.exec(q)?.[1]?.toLowerCase().replace(/^www\./, "");
    const company = domain ? companyFromDomain(domain, epoch) : undefined;
    return { q, num, page, gl, hl, company };
  }

  async function simulate(c: Context, q: string, scope: string): Promise<Response | null> {
    const f = failureNow(q, once, scope);
    if (f === "ratelimit") {
      c.header("retry-after", String(opts.retryAfterSeconds ?? 1));
      return c.json({ message: "Too many requests", statusCode: 429 }, 429);
    }
    if (f === "servererror") return c.json({ message: "Internal server error", statusCode: 500 }, 500);
    if (f === "malformed") return c.body(MALFORMED_BODY, 200, { "content-type": "application/json" });
    if (f === "slow") await delay(opts.slowMs ?? 2000);
    return null;
  }

  function companyPages(co: SandboxCompany) {
    const pages = [
      { title: `${co.name} | ${co.industry.replace(/\b\w/g, (s) => s.toUpperCase())}`, link: `https://${co.domain}/`, snippet: co.description },
      { title: `About us - ${co.name}`, link: `https://${co.domain}/about`, snippet: `Founded in ${co.foundedYear}, ${co.name} helps clients across ${co.country}.` },
    ];
    if (co.hiringRoles.length) {
      pages.push({
        title: `Careers at ${co.name}`,
        link: `https://${co.domain}/careers`,
        snippet: `We're hiring: ${co.hiringRoles.map((r) => r.title).join(", ")}. Join our team in ${co.city}.`,
      });
    }
    for (const kw of co.signalKeywords) {
      pages.push({ title: `${co.name} announces ${kw}`, link: `https://${co.domain}/news/${kw.replace(/\s+/g, "-")}`, snippet: `${co.name} today announced its ${kw} plans for the year ahead.` });
    }
    pages.push({ title: `${co.name} | LinkedIn`, link: co.linkedinUrl.replace("http://", "https://"), snippet: `${co.name} | ${co.employees} followers on LinkedIn. ${co.industry}.` });
    return pages;
  }

  app.post("/search", async (c) => {
    const r0 = await readQuery(c);
    if ("error" in r0) return r0.error;
    const { q, num, page, gl, hl, company } = r0;
    const failure = await simulate(c, q, "search");
    if (failure) return failure;
    const r = seeded(`serper:search:${q.toLowerCase()}:${gl}:${hl}`);
    const pool = magicIn(q) === "nomatch" ? [] : [
      ...(company ? companyPages(company) : []),
      ...Array.from({ length: 40 }, (_, i) => {
        const pr = seeded(`serper:organic:${q.toLowerCase()}:${i}`);
        const site = pr.pick(["example.com", "wikipedia.org", "forbes.com", "medium.com", "reddit.com", "smartcompany.com.au", "crunchbase.com"]);
        return { title: `${q} – ${pr.pick(["Overview", "Guide", "News", "Insights", "Profile", "Discussion"])} ${i + 1}`, link: `https://${site}/${encodeURIComponent(q.toLowerCase().replace(/\s+/g, "-"))}-${i + 1}`, snippet: `Everything about ${q}: ${pr.pick(["pricing", "reviews", "alternatives", "history", "latest updates"])}.` };
      }),
    ];
    const organic = pool.slice((page - 1) * num, page * num).map((item, i) => {
      const dated = seeded(`serper:date:${item.link}`).chance(0.3);
      return { ...item, ...(dated ? { date: googleDate(epoch - r.int(1, 400) * DAY_MS) } : {}), position: (page - 1) * num + i + 1 };
    });
    return c.json({
      searchParameters: { q, gl, hl, type: "search", num, page, engine: "google" },
      ...(company && organic.length ? { knowledgeGraph: { title: company.name, type: company.industry, website: company.websiteUrl, description: company.description } } : {}),
      organic,
      relatedSearches: [{ query: `${q} reviews` }, { query: `${q} careers` }],
      credits: num > 10 ? 2 : 1,
    });
  });

  app.post("/news", async (c) => {
    const r0 = await readQuery(c);
    if ("error" in r0) return r0.error;
    const { q, num, page, gl, hl, company } = r0;
    const failure = await simulate(c, q, "news");
    if (failure) return failure;
    const r = seeded(`serper:news:${q.toLowerCase()}:${gl}:${hl}`);
    const subject = company?.name ?? q;
    const stories: Array<{ title: string; snippet: string; ageHours: number }> = [];
    if (magicIn(q) !== "nomatch") {
      if (company?.fundingDate) {
        const age = Math.max(1, Math.round((epoch - Date.parse(company.fundingDate)) / 3_600_000));
        stories.push({ title: `${subject} raises ${company.fundingStage} round`, snippet: `${subject} has closed a ${company.fundingStage} funding round to accelerate growth.`, ageHours: age });
      }
      for (const kw of company?.signalKeywords ?? []) {
        stories.push({ title: `${subject} ${kw} signals growth`, snippet: `Industry watchers say ${subject}'s ${kw} is a sign of things to come.`, ageHours: r.int(2, 24 * 90) });
      }
      for (let i = stories.length, n = r.int(1, 6); i < n; i++) {
        stories.push({ title: `${subject}: ${r.pick(["what to know", "market update", "interview", "opinion", "analysis"])}`, snippet: `Coverage of ${subject} from around the web.`, ageHours: r.int(1, 24 * 180) });
      }
    }
    stories.sort((a, b) => a.ageHours - b.ageHours);
    const news = stories.slice((page - 1) * num, page * num).map((s, i) => {
      const sr = seeded(`serper:story:${q}:${s.title}`);
      const publisher = sr.pick(PUBLISHERS);
      return {
        title: s.title,
        link: `https://news.example.com/${publisher.toLowerCase().replace(/\W+/g, "-")}/${encodeURIComponent(s.title.toLowerCase().replace(/\W+/g, "-"))}`,
        snippet: s.snippet,
        date: s.ageHours < 24 ? `${s.ageHours} hour${s.ageHours === 1 ? "" : "s"} ago`
          : s.ageHours < 24 * 30 ? `${Math.round(s.ageHours / 24)} day${Math.round(s.ageHours / 24) === 1 ? "" : "s"} ago`
          : googleDate(epoch - s.ageHours * 3_600_000),
        source: publisher,
        imageUrl: `https://images.example.com/${sr.hex(12)}.jpg`,
        position: (page - 1) * num + i + 1,
      };
    });
    return c.json({ searchParameters: { q, gl, hl, type: "news", num, page, engine: "google" }, news, credits: 1 });
  });

  app.all("*", (c) => c.json({ message: "Not found", statusCode: 404 }, 404));
  return app;
}
