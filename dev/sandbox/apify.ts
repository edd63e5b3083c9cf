// Apify sandbox: run-sync-get-dataset-items for a LinkedIn profile actor, answering with items shaped
// like dev_fusion/Linkedin-Profile-Scraper's, derived from the profile URL (seeded.ts).
// Mount at /sandbox/apify; APIFY_BASE_URL=<that>/v2.
import { Hono } from "hono";
import type { Context } from "hono";
import {
  companyFromDomain,
  DAY_MS,
  delay,
  domainForSeed,
  failureNow,
  FIRST_NAMES,
  fraction,
  LAST_NAMES,
  magicIn,
  MALFORMED_BODY,
  OnceOnly,
  SANDBOX_EPOCH,
  type SandboxOptions,
  seeded,
  TITLES,
} from "./seeded.ts";

function apifyError(c: Context, status: 400 | 401 | 404 | 408 | 429 | 500, type: string, message: string) {
  return c.json({ error: { type, message } }, status);
}

function cap(s: string): string {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

export function createApifySandbox(opts: SandboxOptions = {}): Hono {
  const epoch = opts.epoch ?? SANDBOX_EPOCH;
  const miss = opts.noMatchRate ?? 0.15;
  const once = new OnceOnly();

  /** One dataset item for a profile URL, or null when the "scraper" finds nothing. */
  function profileItem(url: string): Record<string, unknown> | null {
    const m = /linkedin\.com\/in\/([^/?#]+)/i.exec(url);
    if (!m) return null;
    const slug = decodeURIComponent(m[1]).toLowerCase();
    if (magicIn(slug) === "nomatch" || fraction(`apify:${slug}`) < miss) return null;
    const r = seeded(`apify:${slug}`);
    // Apollo's sandbox builds slugs as first-last-xxxxxx, so the names agree across the two.
    const parts = slug.split("-").filter((p) => /^[a-z]{2,}$/.test(p));
    const firstName = parts[0] ? cap(parts[0]) : r.pick(FIRST_NAMES);
    const lastName = parts[1] ? cap(parts[1]) : r.pick(LAST_NAMES);
    const co = companyFromDomain(domainForSeed(`li:${slug}`), epoch);
    const [jobTitle] = r.pick(TITLES);
    const started = new Date(epoch - r.int(20, 2600) * DAY_MS);
    const connections = r.chance(0.45) ? r.int(500, 3500) : r.int(15, 499);
    const active = r.chance(0.6);
    const updates = active
      ? Array.from({ length: r.int(1, 3) }, (_, i) => ({
        postText: `${r.pick(["Excited to share", "Proud of the team", "We're hiring", "Great panel on"])} … (${i + 1})`,
        postLink: `https://www.linkedin.com/feed/update/urn:li:activity:${7_000_000_000_000_000_000 + r.int(0, 1e9)}`,
        numLikes: r.int(0, 300),
        numComments: r.int(0, 40),
        postedAt: new Date(epoch - r.int(0, 60) * DAY_MS - i * 7 * DAY_MS).toISOString(),
      }))
      : [];
    const previous = companyFromDomain(domainForSeed(`li:${slug}:prev`), epoch);
    return {
      linkedinUrl: `https://www.linkedin.com/in/${slug}`,
      firstName,
      lastName,
      fullName: `${firstName} ${lastName}`,
      headline: `${jobTitle} at ${co.name}`,
      connections,
      followers: connections + r.int(0, 2500),
      email: r.chance(0.3) ? `${firstName}.${lastName}@${co.domain}`.toLowerCase() : null,
      mobileNumber: null,
      jobTitle,
      jobStartedOn: `${started.getUTCMonth() + 1}-${started.getUTCFullYear()}`,
      jobLocation: `${co.city}, ${co.state}, ${co.country}`,
      jobStillWorking: true,
      companyName: co.name,
      companyIndustry: co.industry,
      companyWebsite: co.domain,
      companyLinkedin: co.linkedinUrl,
      companySize: `${co.employees}`,
      addressWithCountry: `${co.city}, ${co.state}, ${co.country}`,
      addressWithoutCountry: `${co.city}, ${co.state}`,
      about: `${jobTitle} with a background in ${co.industry}.`,
      experiences: [
        { companyName: co.name, title: jobTitle, jobStartedOn: `${started.getUTCMonth() + 1}-${started.getUTCFullYear()}`, jobStillWorking: true, caption: `${started.getUTCFullYear()} - Present` },
        { companyName: previous.name, title: r.pick(TITLES)[0], jobStillWorking: false, caption: `${started.getUTCFullYear() - r.int(2, 6)} - ${started.getUTCFullYear()}` },
      ],
      educations: [{ title: r.pick(["University of Sydney", "Monash University", "UNSW", "University of Auckland", "RMIT University"]) }],
      skills: r.sample(["Sales", "Marketing", "Leadership", "SaaS", "Negotiation", "Strategy", "Operations"], 3).map((title) => ({ title })),
      updates,
    };
  }

  const app = new Hono().basePath("/v2");

  app.use("*", async (c, next) => {
    const bearer = c.req.header("authorization")?.match(/^Bearer\s+(\S+)/i)?.[1];
    const token = bearer ?? new URL(c.req.url).searchParams.get("token");
    if (!token?.trim()) return apifyError(c, 401, "token-not-provided", "Authentication token was not provided");
    await next();
  });

  async function run(c: Context) {
    let input: unknown;
    try {
      const text = await c.req.text();
      input = text.trim() ? JSON.parse(text) : {};
    } catch {
      return apifyError(c, 400, "invalid-input", "Input is not valid JSON");
    }
    const urls = (input as { profileUrls?: unknown }).profileUrls;
    if (!Array.isArray(urls) || !urls.every((u) => typeof u === "string")) {
      return apifyError(c, 400, "invalid-input", "Input is not valid: Field input.profileUrls is required and must be an array of strings");
    }
    const probe = urls.join(" ");
    const f = failureNow(probe, once, "run-sync");
    if (f === "ratelimit") {
      c.header("retry-after", String(opts.retryAfterSeconds ?? 1));
      return apifyError(c, 429, "rate-limit-exceeded", "You have exceeded the rate limit of 30 requests per second");
    }
    if (f === "servererror") return apifyError(c, 500, "internal-server-error", "Internal server error");
    if (f === "malformed") return c.body(MALFORMED_BODY, 201, { "content-type": "application/json" });
    if (f === "runtimeout") {
      return apifyError(c, 408, "run-timeout-exceeded", `Actor run exceeded the timeout of ${c.req.query("timeout") ?? 300} seconds for this API endpoint`);
    }
    if (f === "slow") await delay(opts.slowMs ?? 2000);
    const items = urls.map(profileItem).filter((i): i is Record<string, unknown> => i !== null);
    c.header("x-apify-pagination-offset", "0");
    c.header("x-apify-pagination-limit", String(items.length));
    c.header("x-apify-pagination-count", String(items.length));
    c.header("x-apify-pagination-total", String(items.length));
    // 201 as Apify's OpenAPI lists for run-sync POSTs [I]; clients must accept any 2xx.
    return c.json(items, 201);
  }

  app.post("/acts/:actorId/run-sync-get-dataset-items", run);
  app.post("/actors/:actorId/run-sync-get-dataset-items", run);
  app.all("*", (c) => apifyError(c, 404, "page-not-found", "We have bad news: there is no API endpoint at this URL."));

  return app;
}
