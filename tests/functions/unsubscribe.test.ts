// Unsubscribe everywhere (compliance S3, U1, M1; product.md §6): the signed token (round trip,
// tampering, wrong secret, valid at 30 days and up to 365, expired after), and the public function
// on the local stack — GET shows a page and changes nothing (link scanners fetch it), POST from the
// page's button or an RFC 8058 one-click request unsubscribes the person on every channel for every
// client, a second POST changes nothing more, a bad or expired token is a 400 with nothing changed.
import { beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { db } from "../../shared/db/client.ts";
import {
  UNSUBSCRIBE_SECRET_ENV,
  unsubscribeSecret,
  unsubscribeToken,
  unsubscribeUrl,
  verifyUnsubscribeToken,
} from "../../shared/compliance/unsubscribe-token.ts";
import { call, getStack, unique } from "../helpers/stack.ts";

const DAY = 86_400_000;
const SECRET = "unit-test-secret-for-unsubscribe-tokens";
const SEND = "5e1d0000-0000-4000-8000-000000000001";
const LEAD = "1ead0000-0000-4000-8000-000000000002";

describe("unsubscribe tokens", () => {
  it("round-trips the send and the lead, with the time it was issued", async () => {
    const issued = new Date("2026-11-24T00:00:00Z");
    const token = await unsubscribeToken({ sendId: SEND, leadId: LEAD }, SECRET, issued);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(token.length).toBeLessThan(110);
    expect(await verifyUnsubscribeToken(token, SECRET, issued)).toEqual({ ok: true, sendId: SEND, leadId: LEAD, issuedAt: issued });
    const noSend = await unsubscribeToken({ sendId: null, leadId: LEAD }, SECRET, issued);
    expect(await verifyUnsubscribeToken(noSend, SECRET, issued)).toMatchObject({ ok: true, sendId: null, leadId: LEAD });
  });

  it("is valid at 30 days (the legal minimum) and up to 365, expired after, and refused from the future", async () => {
    const issued = new Date("2026-01-01T00:00:00Z");
    const token = await unsubscribeToken({ sendId: SEND, leadId: LEAD }, SECRET, issued);
    const at = (days: number) => verifyUnsubscribeToken(token, SECRET, new Date(issued.getTime() + days * DAY));
    expect((await at(30)).ok).toBe(true);
    expect((await at(364)).ok).toBe(true);
    expect(await at(366)).toEqual({ ok: false, reason: "expired" });
    expect(await at(-2)).toEqual({ ok: false, reason: "expired" });
  });

  it("refuses tampering, another secret and garbage without throwing", async () => {
    const token = await unsubscribeToken({ sendId: SEND, leadId: LEAD }, SECRET, new Date());
    const [payload, sig] = token.split(".");
    // another lead id under the same signature
    const other = (await unsubscribeToken({ sendId: SEND, leadId: "1ead0000-0000-4000-8000-000000000003" }, SECRET, new Date())).split(".")[0];
    expect(await verifyUnsubscribeToken(`${other}.${sig}`, SECRET)).toEqual({ ok: false, reason: "bad_signature" });
    const flipped = sig.slice(0, 5) + (sig[5] === "A" ? "B" : "A") + sig.slice(6);
    expect(await verifyUnsubscribeToken(`${payload}.${flipped}`, SECRET)).toEqual({ ok: false, reason: "bad_signature" });
    expect(await verifyUnsubscribeToken(token, "another-secret")).toEqual({ ok: false, reason: "bad_signature" });
    for (const bad of ["", "abc", "a.b.c", `${payload}.`, `${payload}!.${sig}`, "x".repeat(400)]) {
      expect((await verifyUnsubscribeToken(bad, SECRET)).ok, bad).toBe(false);
    }
    await expect(unsubscribeToken({ sendId: SEND, leadId: "not-a-uuid" }, SECRET)).rejects.toThrow(/uuid/);
  });

  it("names UNSUBSCRIBE_SECRET when it is missing; the URL is the public unsubscribe function", async () => {
    const saved = process.env[UNSUBSCRIBE_SECRET_ENV];
    delete process.env[UNSUBSCRIBE_SECRET_ENV];
    try {
      expect(() => unsubscribeSecret()).toThrow(/UNSUBSCRIBE_SECRET is not set/);
      await expect(unsubscribeToken({ sendId: SEND, leadId: LEAD }, "", new Date())).rejects.toThrow(/UNSUBSCRIBE_SECRET/);
    } finally {
      if (saved !== undefined) process.env[UNSUBSCRIBE_SECRET_ENV] = saved;
    }
    expect(unsubscribeUrl("abc.def")).toBe(`${process.env.PUBLIC_FUNCTIONS_BASE_URL!.replace(/\/+$/, "")}/unsubscribe?t=abc.def`);
  });
});

// ---------------------------------------------------------------------------------------------
// The function on the local stack
// ---------------------------------------------------------------------------------------------

let stack: Stack;
beforeAll(async () => {
  process.env[UNSUBSCRIBE_SECRET_ENV] ??= "local-test-unsubscribe-secret-0123456789";
  stack = await getStack();
});

interface Person {
  clientId: string;
  leadId: string;
  assignmentId: string;
  email: string;
  phone: string;
  linkedin: string;
  domain: string;
  runIds: string[];
}

/** A client, an active campaign of three steps (email, SMS, LinkedIn) and a lead in sequence with its step runs. */
async function person(): Promise<Person> {
  const sql = db();
  const u = unique("unsub");
  const [client] = await sql`insert into public.clients (slug, name, status) values (${u}, 'Unsub Co', 'active') returning id`;
  const [cp] = await sql`insert into public.campaigns (client_id, name, status, approved_at) values (${client.id}, 'Outreach', 'active', now()) returning id`;
  const domain = `${u}.com.au`;
  const email = `pat@${domain}`;
  const phone = `+614${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}`;
  const linkedin = `https://www.linkedin.com/in/${u}`;
  const [lead] = await sql`
    insert into public.lead_pool (email, first_name, last_name, company_name, company_domain, phone_e164, linkedin_url, linkedin_key, country, timezone, source, email_status)
    values (${email}, 'Pat', 'Lee', 'Unsub Co', ${domain}, ${phone}, ${linkedin}, ${linkedin}, 'AU', 'Australia/Sydney', 'import', 'verified')
    returning id`;
  const [a] = await sql`insert into public.lead_assignments (lead_id, client_id, campaign_id, als_tier) values (${lead.id}, ${client.id}, ${cp.id}, 'hot') returning id`;
  await sql`update public.lead_assignments set status = 'queued' where id = ${a.id}`;
  await sql`update public.lead_assignments set status = 'in_sequence' where id = ${a.id}`;
  await sql`insert into public.lead_consents (lead_id, channel, basis) select ${lead.id}, c, 'express' from unnest(array['email', 'sms', 'linkedin']) c`;
  const runIds: string[] = [];
  for (const [pos, channel, action] of [[1, "email", null], [2, "sms", null], [3, "linkedin", "message"]] as const) {
    const [st] = await sql`
      insert into public.campaign_steps (campaign_id, client_id, position, day_offset, channel, linkedin_action)
      values (${cp.id}, ${client.id}, ${pos}, ${pos}, ${channel}, ${action}) returning id`;
    const [run] = await sql`
      insert into public.step_runs (assignment_id, client_id, campaign_id, lead_id, step_id, position, channel, due_at, timezone, country)
      values (${a.id}, ${client.id}, ${cp.id}, ${lead.id}, ${st.id}, ${pos}, ${channel}, now() + make_interval(days => ${pos}), 'Australia/Sydney', 'AU')
      returning id`;
    runIds.push(run.id);
  }
  // adding steps sends a campaign back for approval: approve and activate it again
  await sql`update public.campaigns set approved_at = now(), status = 'active' where id = ${cp.id}`;
  return { clientId: client.id, leadId: lead.id, assignmentId: a.id, email, phone, linkedin, domain, runIds };
}

/** Everything an unsubscribe changes, for before/after comparisons. */
async function footprint(p: Person) {
  const sql = db();
  const supp = await sql`
    select kind, value, client_id from public.suppressions
    where value = any(${[p.email, p.phone, p.linkedin]}::text[]) order by kind`;
  const [a] = await sql`select status from public.lead_assignments where id = ${p.assignmentId}`;
  const runs = await sql`select status from public.step_runs where id = any(${p.runIds}::uuid[]) order by position`;
  const [co] = await sql`select outreach_paused_until from public.companies where domain = ${p.domain}`;
  const [consent] = await sql`select count(*)::int as withdrawn from public.lead_consents where lead_id = ${p.leadId} and withdrawn_at is not null`;
  const [ev] = await sql`select count(*)::int as n from public.events where kind = 'unsubscribed' and entity_id = ${p.leadId}`;
  return {
    suppressions: supp.map((s) => ({ kind: s.kind, value: s.value, global: s.client_id === null })),
    assignment: a.status as string,
    runs: runs.map((r) => r.status as string),
    paused: (co?.outreach_paused_until as Date | undefined) ?? null,
    consentsWithdrawn: consent.withdrawn as number,
    events: ev.n as number,
  };
}

const tokenFor = async (p: Person, issuedAt = new Date(), sendId: string | null = null) =>
  unsubscribeToken({ sendId, leadId: p.leadId }, process.env[UNSUBSCRIBE_SECRET_ENV]!, issuedAt);
const oneClick = (token: string) => call(stack, `unsubscribe?t=${token}`, {
  method: "POST", body: "List-Unsubscribe=One-Click", headers: { "content-type": "application/x-www-form-urlencoded" },
});

describe("the unsubscribe function", () => {
  it("GET shows a confirmation page with a button and changes nothing", async () => {
    const p = await person();
    const before = await footprint(p);
    const token = await tokenFor(p);
    const res = await call(stack, `unsubscribe?t=${token}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body).toContain("<form method=\"post\"");
    expect(res.body).toContain(`action="?t=${token}"`);
    expect(res.body).not.toContain(p.email);
    // a scanner fetching it again and again changes nothing either
    await call(stack, `unsubscribe?t=${token}`);
    expect(await footprint(p)).toEqual(before);
    expect(before).toMatchObject({ suppressions: [], assignment: "in_sequence", runs: ["scheduled", "scheduled", "scheduled"], events: 0 });
  });

  it("one-click POST (RFC 8058) unsubscribes the person on every channel, for every client, and a second POST changes nothing", async () => {
    const p = await person();
    const token = await tokenFor(p);
    const res = await oneClick(token);
    expect(res.status).toBe(200);
    expect(res.body).toContain("You are unsubscribed");
    const after = await footprint(p);
    expect(after.suppressions).toEqual([
      { kind: "email", value: p.email, global: true },
      { kind: "linkedin", value: p.linkedin, global: true },
      { kind: "phone", value: p.phone, global: true },
    ]);
    expect(after.assignment).toBe("unsubscribed");
    expect(after.runs).toEqual(["cancelled", "cancelled", "cancelled"]);
    expect(after.paused!.getTime()).toBeGreaterThan(Date.now() + 13 * DAY);
    expect(after.consentsWithdrawn).toBe(3);
    expect(after.events).toBe(1);
    // any client, any channel: the gate's own suppression check says so
    const [chk] = await db()`
      select private.is_suppressed('email', gen_random_uuid(), ${p.email}, null, null, null) as email,
             private.is_suppressed('sms', gen_random_uuid(), null, null, ${p.phone}, null) as sms,
             private.is_suppressed('voice', gen_random_uuid(), null, null, ${p.phone}, null) as voice,
             private.is_suppressed('linkedin', gen_random_uuid(), null, null, null, ${p.linkedin}) as linkedin`;
    expect(chk).toEqual({ email: true, sms: true, voice: true, linkedin: true });

    const again = await oneClick(token);
    expect(again.status).toBe(200);
    expect(await footprint(p)).toEqual(after);
  });

  it("the page's button (a form post with the token) unsubscribes too, and so does a multipart one-click body", async () => {
    const p = await person();
    const token = await tokenFor(p);
    const res = await call(stack, `unsubscribe?t=${token}`, {
      method: "POST", body: `t=${token}&confirm=yes`, headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    expect(res.status).toBe(200);
    expect((await footprint(p)).assignment).toBe("unsubscribed");

    const q = await person();
    const form = new FormData();
    form.append("List-Unsubscribe", "One-Click");
    const multipart = await fetch(`${stack.url}/functions/v1/unsubscribe?t=${await tokenFor(q)}`, { method: "POST", body: form });
    expect(multipart.status).toBe(200);
    expect((await footprint(q)).suppressions).toHaveLength(3);
  });

  it("a token 30 days old still works; a year-old one is a 400 that changes nothing", async () => {
    const p = await person();
    const month = await tokenFor(p, new Date(Date.now() - 30 * DAY));
    expect((await call(stack, `unsubscribe?t=${month}`)).status).toBe(200);
    expect((await oneClick(month)).status).toBe(200);
    expect((await footprint(p)).assignment).toBe("unsubscribed");

    const q = await person();
    const before = await footprint(q);
    const old = await tokenFor(q, new Date(Date.now() - 366 * DAY));
    const get = await call(stack, `unsubscribe?t=${old}`);
    expect(get.status).toBe(400);
    expect(get.body).toContain("not valid");
    expect((await oneClick(old)).status).toBe(400);
    expect(await footprint(q)).toEqual(before);
  });

  it("a missing, tampered or foreign token is a 400 page and nothing changes", async () => {
    const p = await person();
    const before = await footprint(p);
    const token = await tokenFor(p);
    const [payload, sig] = token.split(".");
    const tampered = `${payload}.${sig.slice(0, -2)}${sig.endsWith("AA") ? "BB" : "AA"}`;
    const foreign = await unsubscribeToken({ sendId: null, leadId: p.leadId }, "some-other-secret", new Date());
    for (const t of [tampered, foreign, "garbage"]) {
      expect((await oneClick(t)).status, t).toBe(400);
      expect((await call(stack, `unsubscribe?t=${t}`)).status).toBe(400);
    }
    const none = await call(stack, "unsubscribe", { method: "POST", body: "List-Unsubscribe=One-Click", headers: { "content-type": "application/x-www-form-urlencoded" } });
    expect(none.status).toBe(400);
    expect(none.headers.get("content-type")).toContain("text/html");
    expect(await footprint(p)).toEqual(before);
  });

  it("without UNSUBSCRIBE_SECRET it answers 503 and changes nothing (never a crash)", async () => {
    const p = await person();
    const token = await tokenFor(p);
    const saved = process.env[UNSUBSCRIBE_SECRET_ENV];
    delete process.env[UNSUBSCRIBE_SECRET_ENV];
    try {
      expect((await call(stack, `unsubscribe?t=${token}`)).status).toBe(503);
      expect((await oneClick(token)).status).toBe(503);
    } finally {
      process.env[UNSUBSCRIBE_SECRET_ENV] = saved;
    }
    expect((await footprint(p)).assignment).toBe("in_sequence");
  });

  it("is public (no JWT) and documented", async () => {
    const doc = await call(stack, "unsubscribe/openapi.json");
    expect(doc.status).toBe(200);
    expect(Object.keys(doc.body.paths)).toEqual(["/unsubscribe"]);
    expect(Object.keys(doc.body.paths["/unsubscribe"]).sort()).toEqual(["get", "post"]);
  });
});
