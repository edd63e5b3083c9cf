// The pool function over HTTP on the local stack: a 10,000-row CSV with known bad rows and
// duplicates (in the file, across batches, of leads already in the pool) and its exact report;
// re-importing it; JSON array and NDJSON; progress during a slow upload; malformed files;
// admins only; search and count.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { db } from "../../shared/db/client.ts";
import { call, getStack, makeUser, unique, type TestUser } from "../helpers/stack.ts";

let stack: Stack;
let admin: TestUser, owner: TestUser;
// Run-unique values, so repeated runs against one PostgreSQL database never collide.
const T = `p${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
const DOMAIN = `acme-${T}.com.au`;
let phoneBase: number; // a block of 20,000 free AU mobile numbers: 4xxxxxxxx
const pre: Array<{ id: string; email: string; linkedin: string }> = [];

beforeAll(async () => {
  stack = await getStack();
  // The pipeline's flows (QStash deliveries from other test files) would start enriching the new
  // leads under this file's assertions; hold deliveries while it runs.
  await stack.qstash.stop();
  admin = await makeUser(stack, { role: "admin" });
  owner = await makeUser(stack, { client: unique("pool-client"), role: "owner" });
  for (let attempt = 0; ; attempt++) {
    phoneBase = 412_000_000 + Math.floor(Math.random() * 380) * 20_000;
    const [{ n }] = await db()`select count(*)::int as n from public.lead_pool
      where phone_e164 between ${`+61${phoneBase}`} and ${`+61${phoneBase + 19_999}`}`;
    if (n === 0) break;
    if (attempt > 20) throw new Error("no free phone block");
  }
  // leads already in the pool (added by hand): rows of the file duplicate them by email or LinkedIn
  for (let k = 0; k < 20; k++) {
    const email = `pre${k}@${DOMAIN}`;
    const linkedin = `https://www.linkedin.com/in/${T}-pre-${k}`;
    const [row] = await db()`insert into public.lead_pool (email, linkedin_url, linkedin_key, first_name, source)
      values (${email}, ${linkedin}, ${linkedin}, 'Pre', 'manual') returning id`;
    pre.push({ id: row.id, email, linkedin });
  }
  buildFile();
});

// ... and leave no new leads behind for them to enrich afterwards.
afterAll(async () => {
  const mine = db()`select id from public.pool_imports where created_by = ${admin.userId}`;
  await db()`delete from public.lead_pool where import_id in (${mine}) or id = any(${pre.map((p) => p.id)}::uuid[])`;
  await db()`delete from public.pool_imports where created_by = ${admin.userId}`;
  stack.qstash.start();
});

// ---- the 10,000-row file -------------------------------------------------------------------------

type Expected =
  | { outcome: "accepted"; country: string }
  | { outcome: "rejected"; reason: string; field: string }
  | { outcome: "duplicate"; reason: string; field: string; ofRow?: number; ofPre?: number };

const digits = (i: number) => String(phoneBase + i); // 9 digits, starting with 4
const national = (i: number) => { const d = digits(i); return `0${d.slice(0, 3)} ${d.slice(3, 6)} ${d.slice(6)}`; };
const international = (i: number) => { const d = digits(i); return `+61 ${d.slice(0, 3)} ${d.slice(3, 6)} ${d.slice(6)}`; };
const emailOf = (i: number) => `Lead${i}@Acme-${T}.com.au`;
const linkedinOf = (i: number) =>
  i % 3 === 0 ? `https://www.linkedin.com/in/${T}-${i}` : i % 3 === 1 ? `au.linkedin.com/in/${T.toUpperCase()}-${i}/` : `http://linkedin.com/in/${T}-${i}?trk=csv`;

function fileRow(i: number): { cells: string[]; expected: Expected } {
  const nz = i % 7 === 0;
  let email = i % 10 === 1 || i % 10 === 3 ? "" : emailOf(i);
  let phone = i % 10 === 3 || i % 10 === 9 ? "" : nz ? international(i) : national(i);
  let linkedin = i % 10 === 1 || i % 10 === 9 ? "" : linkedinOf(i);
  const country = nz ? "New Zealand" : "AU";
  const website = i % 4 === 0 ? `https://www.${DOMAIN}/` : "";
  let expected: Expected = { outcome: "accepted", country: nz ? "NZ" : "AU" };
  const k = Math.floor(i / 500);
  switch (i % 500) {
    case 7: email = `lead${i}.${DOMAIN}`; expected = { outcome: "rejected", reason: "invalid_email", field: "email" }; break;
    case 57: phone = "12345"; expected = { outcome: "rejected", reason: "invalid_phone", field: "phone" }; break;
    case 107: linkedin = `https://www.linkedin.com/company/${T}-${i}`; expected = { outcome: "rejected", reason: "invalid_linkedin_url", field: "linkedin_url" }; break;
    case 157: email = `lead${i}@example.com`; expected = { outcome: "rejected", reason: "placeholder_domain", field: "email" }; break;
    case 207: email = phone = linkedin = ""; expected = { outcome: "rejected", reason: "no_channel", field: "email" }; break;
    case 257: // the same email as row i-5, in another case and with spaces
      email = `  ${emailOf(i - 5).toUpperCase()} `; phone = linkedin = "";
      expected = { outcome: "duplicate", reason: "duplicate_email", field: "email", ofRow: i - 5 }; break;
    case 307: // the same LinkedIn profile as row i-5, written another way
      linkedin = `https://AU.LinkedIn.com/in/${T.toUpperCase()}-${i - 5}/?originalSubdomain=au`; email = phone = "";
      expected = { outcome: "duplicate", reason: "duplicate_linkedin", field: "linkedin_url", ofRow: i - 5 }; break;
    case 357: // the same phone as row i-5, in E.164 instead of national format
      phone = `+61${digits(i - 5)}`; email = linkedin = "";
      expected = { outcome: "duplicate", reason: "duplicate_phone", field: "phone", ofRow: i - 5 }; break;
    case 407: // a lead already in the pool, by email
      email = `PRE${k}@${DOMAIN.toUpperCase()}`; phone = linkedin = "";
      expected = { outcome: "duplicate", reason: "duplicate_email", field: "email", ofPre: k }; break;
    case 457: // a lead already in the pool, by LinkedIn
      linkedin = `linkedin.com/in/${T}-pre-${k}`; email = phone = "";
      expected = { outcome: "duplicate", reason: "duplicate_linkedin", field: "linkedin_url", ofPre: k }; break;
    case 487: // an earlier row, often in an earlier batch (2,000 rows a batch)
      if (i < 1235) break;
      email = emailOf(i - 1235).toLowerCase(); phone = linkedin = "";
      expected = { outcome: "duplicate", reason: "duplicate_email", field: "email", ofRow: i - 1235 }; break;
  }
  const quoted = (s: string) => (/[",\s]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  return {
    cells: [email, `Ada${i}`, i % 11 === 0 ? "O'Neil, Jr" : "Lovelace", "Head of Growth", `Acme ${T} ${i % 50}`, website, linkedin, phone, country, "Sydney"].map(quoted),
    expected,
  };
}

const ROWS = 10_000;
const HEADER = "E-mail,First Name,Last Name,Job Title,Company,Website,LinkedIn URL,Mobile,Country,City\r\n";
// built once the phone block is chosen (beforeAll)
let file: Array<ReturnType<typeof fileRow>>;
let csv: string;
function buildFile() {
  file = Array.from({ length: ROWS }, (_, n) => fileRow(n + 1));
  csv = HEADER + file.map((r) => r.cells.join(",")).join("\r\n") + "\r\n";
}
const expectedOf = (row: number) => file[row - 1].expected;
const count = (o: string) => file.filter((r) => r.expected.outcome === o).length;

async function newImport(format: "csv" | "json", token = admin.token) {
  const res = await call(stack, "pool/imports", { token, body: { format, filename: `leads.${format}` } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; upload_url: string; status: string };
}

function upload(id: string, body: string, type: string, token = admin.token) {
  return call(stack, `pool/imports/${id}/content`, { token, method: "PUT", body, headers: { "content-type": type } });
}

async function reportRows(id: string, outcome: string, limit = 100) {
  const rows: Array<{ row_number: number; outcome: string; lead_id: string | null; reason: string | null; field: string | null; message: string | null }> = [];
  let cursor: string | null = null;
  do {
    const res = await call(stack, `pool/imports/${id}/rows?outcome=${outcome}&limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`, { token: admin.token });
    expect(res.status).toBe(200);
    rows.push(...res.body.data);
    cursor = res.body.next_cursor;
  } while (cursor);
  return rows;
}

async function poolCount(query = "") {
  const res = await call(stack, `pool/leads/count${query ? `?${query}` : ""}`, { token: admin.token });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.count as number;
}

let firstImport: string;

describe("a 10,000-row CSV", () => {
  it("is imported with the exact accepted, duplicate and rejected counts and a report naming reason, field and lead", { timeout: 60_000 }, async () => {
    expect(csv.length).toBeGreaterThan(1_048_576); // over the JSON body limit: the upload is streamed
    const imp = await newImport("csv");
    expect(imp.status).toBe("running");
    expect(imp.upload_url).toMatch(new RegExp(`/functions/v1/pool/imports/${imp.id}/content$`));
    firstImport = imp.id;

    const res = await upload(imp.id, csv, "text/csv; charset=utf-8");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const totals = { rows_seen: ROWS, accepted: count("accepted"), duplicates: count("duplicate"), rejected: count("rejected") };
    expect(totals).toEqual({ rows_seen: 10_000, accepted: 9_782, duplicates: 118, rejected: 100 });
    expect(res.body).toMatchObject({ id: imp.id, status: "completed", error: null, ...totals });
    expect(res.body.finished_at).not.toBeNull();

    const leadOfRow = new Map<number, string>();
    for (const r of await db()`select row_number, lead_id from public.pool_import_rows where import_id = ${imp.id} and outcome = 'accepted'`) {
      leadOfRow.set(r.row_number, r.lead_id);
    }
    expect(leadOfRow.size).toBe(totals.accepted);

    const rejected = await reportRows(imp.id, "rejected", 30);
    expect(rejected).toHaveLength(100);
    for (const r of rejected) {
      const e = expectedOf(r.row_number);
      expect({ row: r.row_number, reason: r.reason, field: r.field, lead: r.lead_id }).toEqual({
        row: r.row_number, reason: (e as { reason: string }).reason, field: (e as { field: string }).field, lead: null,
      });
      expect(r.message).toEqual(expect.any(String));
    }

    const duplicates = await reportRows(imp.id, "duplicate", 1000);
    expect(duplicates).toHaveLength(118);
    for (const r of duplicates) {
      const e = expectedOf(r.row_number) as Extract<Expected, { outcome: "duplicate" }>;
      const lead = e.ofRow !== undefined ? leadOfRow.get(e.ofRow) : pre[e.ofPre!].id;
      expect(lead).toBeDefined();
      expect({ row: r.row_number, reason: r.reason, field: r.field, lead: r.lead_id }).toEqual({ row: r.row_number, reason: e.reason, field: e.field, lead });
    }
    // rows are numbered in file order and the report holds every row once
    const [{ n, min, max }] = await db()`select count(*)::int as n, min(row_number) as min, max(row_number) as max
      from public.pool_import_rows where import_id = ${imp.id}`;
    expect([n, min, max]).toEqual([10_000, 1, 10_000]);
  });

  it("stores the normalised columns and dedup keys", async () => {
    const [row2] = await db()`select l.* from public.pool_import_rows r join public.lead_pool l on l.id = r.lead_id
      where r.import_id = ${firstImport} and r.row_number = 14`;
    expect(row2).toMatchObject({
      email: emailOf(14), email_normalized: emailOf(14).toLowerCase(), first_name: "Ada14", last_name: "Lovelace",
      linkedin_url: `https://www.linkedin.com/in/${T}-14`, linkedin_key: `https://www.linkedin.com/in/${T}-14`,
      phone: international(14), phone_e164: `+61${digits(14)}`, phone_country: "AU", country: "NZ", company_domain: null,
      status: "new", source: "import", import_id: firstImport, created_by: admin.userId,
    });
    const [row12] = await db()`select l.company_domain, l.last_name from public.pool_import_rows r join public.lead_pool l on l.id = r.lead_id
      where r.import_id = ${firstImport} and r.row_number = 44`;
    expect(row12).toEqual({ company_domain: DOMAIN, last_name: "O'Neil, Jr" });
  });

  it("imported again: nothing accepted, every valid row a duplicate, the pool unchanged", { timeout: 60_000 }, async () => {
    const before = await poolCount();
    const imp = await newImport("csv");
    const res = await upload(imp.id, csv, "text/csv");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "completed", rows_seen: 10_000, accepted: 0, duplicates: 9_900, rejected: 100 });
    expect(await poolCount()).toBe(before);
    const [first] = (await call(stack, `pool/imports/${imp.id}/rows?limit=3`, { token: admin.token })).body.data;
    const [original] = await db()`select lead_id from public.pool_import_rows where import_id = ${firstImport} and row_number = 1`;
    // row 1 has only a phone (1 % 10 = 1)
    expect(first).toMatchObject({ row_number: 1, outcome: "duplicate", reason: "duplicate_phone", field: "phone", lead_id: original.lead_id });
  });

  it("re-uploading content to a finished import is a 409", async () => {
    const res = await upload(firstImport, HEADER + "a@b.co\n", "text/csv");
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("conflict");
  });
});

describe("JSON", () => {
  it("imports an array of objects", async () => {
    const imp = await newImport("json");
    const body = JSON.stringify([
      { email: `json1@${DOMAIN}`, first_name: "Jay", company: "Acme", phone: Number(`61${phoneBase + 19_999}`) },
      { "E-mail": ` JSON1@${DOMAIN.toUpperCase()}`, name: "Jay Son" },
      { email: "nope" },
      { linkedin: `https://www.linkedin.com/in/${T}-json-3`, country: "au", tags: ["x"] },
      { first_name: "Nobody" },
      { email: `json5@${DOMAIN}`, title: { nested: true } },
    ]);
    const res = await upload(imp.id, body, "application/json");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "completed", rows_seen: 6, accepted: 2, duplicates: 1, rejected: 3 });
    const rows = (await call(stack, `pool/imports/${imp.id}/rows`, { token: admin.token })).body.data;
    expect(rows.map((r: { outcome: string; reason: string | null; field: string | null }) => [r.outcome, r.reason, r.field])).toEqual([
      ["accepted", null, null],
      ["duplicate", "duplicate_email", "email"],
      ["rejected", "invalid_email", "email"],
      ["accepted", null, null],
      ["rejected", "no_channel", "email"],
      ["rejected", "invalid_value", "title"],
    ]);
    expect(rows[1].lead_id).toBe(rows[0].lead_id);
  });

  it("imports NDJSON (one object per line)", async () => {
    const imp = await newImport("json");
    const lines = [
      { email: `nd1@${DOMAIN}`, linkedin_url: `linkedin.com/in/${T}-nd-1` },
      { email: `nd2@${DOMAIN}`, linkedin_url: `https://www.linkedin.com/in/${T.toUpperCase()}-ND-1/` },
      { email: `nd3@${DOMAIN}`, "first name": "Line \"three\"", city: "Perth\nWA" },
    ].map((o) => JSON.stringify(o)).join("\n") + "\n\n";
    const res = await upload(imp.id, lines, "application/x-ndjson");
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ status: "completed", rows_seen: 3, accepted: 2, duplicates: 1, rejected: 0 });
    const rows = (await call(stack, `pool/imports/${imp.id}/rows?outcome=duplicate`, { token: admin.token })).body.data;
    expect(rows).toEqual([expect.objectContaining({ row_number: 2, reason: "duplicate_linkedin", field: "linkedin_url" })]);
    const [three] = await db()`select first_name, city from public.lead_pool where email = ${`nd3@${DOMAIN}`}`;
    expect(three).toEqual({ first_name: "Line \"three\"", city: "Perth WA" });
  });
});

describe("duplicates decided in file order", () => {
  // A row duplicates only a lead an earlier row really created: when that earlier row was itself
  // a duplicate, its other keys are still free. Checked on both ways a batch is written.
  const outcomes = async (id: string) =>
    (await call(stack, `pool/imports/${id}/rows`, { token: admin.token })).body.data
      .map((r: { outcome: string; reason: string | null; lead_id: string | null }) => [r.outcome, r.reason, r.lead_id]);
  const p = (k: number) => `+61${phoneBase + 19_000 + k}`;

  it("within a batch that touches no earlier lead (the one-statement way)", async () => {
    const imp = await newImport("json");
    const rows = [
      { email: `chain-a@${DOMAIN}`, phone: p(1) }, // accepted
      { email: `chain-b@${DOMAIN}`, phone: p(1) }, // duplicate of row 1 by phone
      { email: `chain-b@${DOMAIN}` }, // accepted: row 2 created nothing
      { email: `chain-c@${DOMAIN}`, linkedin: `linkedin.com/in/${T}-chain-x` }, // accepted
      { email: `CHAIN-C@${DOMAIN}`, linkedin: `linkedin.com/in/${T}-chain-y` }, // duplicate of row 4 by email
      { linkedin: `https://www.linkedin.com/in/${T}-CHAIN-Y/` }, // accepted: row 5 created nothing
    ];
    const res = await upload(imp.id, rows.map((r) => JSON.stringify(r)).join("\n"), "application/x-ndjson");
    expect(res.body).toMatchObject({ accepted: 4, duplicates: 2, rejected: 0 });
    const o = await outcomes(imp.id);
    expect(o.map((x: unknown[]) => x.slice(0, 2))).toEqual([
      ["accepted", null], ["duplicate", "duplicate_phone"], ["accepted", null],
      ["accepted", null], ["duplicate", "duplicate_email"], ["accepted", null],
    ]);
    expect([o[1][2], o[4][2]]).toEqual([o[0][2], o[3][2]]);
  });

  it("within a batch that also duplicates leads already in the pool (the general way)", async () => {
    const imp = await newImport("json");
    const rows = [
      { email: pre[1].email.toUpperCase(), phone: p(7) }, // duplicate of a pool lead by email
      { phone: p(7) }, // accepted: row 1 created nothing
      { email: `chain-d@${DOMAIN}`, linkedin: pre[2].linkedin }, // duplicate of a pool lead by LinkedIn
      { email: `chain-d@${DOMAIN}`, phone: p(8) }, // accepted
      { phone: p(8), email: `chain-e@${DOMAIN}` }, // duplicate of row 4 by phone
    ];
    const res = await upload(imp.id, JSON.stringify(rows), "application/json");
    expect(res.body).toMatchObject({ accepted: 2, duplicates: 3, rejected: 0 });
    const o = await outcomes(imp.id);
    expect(o).toEqual([
      ["duplicate", "duplicate_email", pre[1].id], ["accepted", null, o[1][2]],
      ["duplicate", "duplicate_linkedin", pre[2].id], ["accepted", null, o[3][2]], ["duplicate", "duplicate_phone", o[3][2]],
    ]);
  });

  it("two uploads to one import at once: one writes, the other is a 409", { timeout: 30_000 }, async () => {
    const imp = await newImport("csv");
    const body = "email\n" + Array.from({ length: 2_500 }, (_, i) => `twice${i}@${DOMAIN}`).join("\n") + "\n";
    const results = await Promise.all([upload(imp.id, body, "text/csv"), upload(imp.id, body, "text/csv")]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const read = (await call(stack, `pool/imports/${imp.id}`, { token: admin.token })).body;
    expect(read).toMatchObject({ status: "completed", rows_seen: 2_500, accepted: 2_500, duplicates: 0 });
  });
});

describe("progress and failures", () => {
  it("progress is readable while a slow upload is still streaming", { timeout: 30_000 }, async () => {
    const imp = await newImport("csv");
    const enc = new TextEncoder();
    let push!: (text: string) => void, end!: () => void;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        push = (text) => controller.enqueue(enc.encode(text));
        end = () => controller.close();
      },
    });
    const line = (i: number) => `slow${i}@${DOMAIN},Slow\n`;
    const responded = fetch(`${stack.url}/functions/v1/pool/imports/${imp.id}/content`, {
      method: "PUT",
      headers: { authorization: `Bearer ${admin.token}`, "content-type": "text/csv" },
      body,
      duplex: "half",
    } as RequestInit);
    push("email,first_name\n");
    push(Array.from({ length: 2_500 }, (_, i) => line(i)).join(""));

    let progress: { status: string; rows_seen: number; accepted: number } | undefined;
    for (let i = 0; i < 200; i++) {
      progress = (await call(stack, `pool/imports/${imp.id}`, { token: admin.token })).body;
      if (progress!.rows_seen > 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // the first batch (2,000 rows) is committed; the rest waits for the upload to go on
    expect(progress).toMatchObject({ status: "running", rows_seen: 2_000, accepted: 2_000 });
    push(Array.from({ length: 500 }, (_, i) => line(2_500 + i)).join(""));
    end();
    const res = await responded;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "completed", rows_seen: 3_000, accepted: 3_000 });
  });

  it("a malformed file fails the import with a clear error, keeping the rows before the fault", async () => {
    const badJson = await newImport("json");
    const j = await upload(badJson.id, `[{"email":"mal1@${DOMAIN}"},{"email":"mal2@${DOMAIN}"},{"email": }]`, "application/json");
    expect(j.status).toBe(400);
    expect(j.body.error.code).toBe("bad_request");
    expect(j.body.error.message).toMatch(/invalid JSON after 2 rows: row 3/);
    expect(j.body.error.details.import).toMatchObject({ id: badJson.id, status: "failed", rows_seen: 2, accepted: 2 });
    const read = (await call(stack, `pool/imports/${badJson.id}`, { token: admin.token })).body;
    expect(read).toMatchObject({ status: "failed", rows_seen: 2, error: expect.stringMatching(/invalid JSON/) });

    const badCsv = await newImport("csv");
    const c = await upload(badCsv.id, `email,first_name\nmal3@${DOMAIN},A\nmal4@${DOMAIN},"unclosed\n`, "text/csv");
    expect(c.status).toBe(400);
    expect(c.body.error.details.import).toMatchObject({ status: "failed", rows_seen: 1, accepted: 1, error: expect.stringMatching(/invalid CSV: Quote Not Closed/) });

    const noChannel = await newImport("csv");
    const n = await upload(noChannel.id, "First Name,Company\nAda,Acme\n", "text/csv");
    expect(n.status).toBe(400);
    expect(n.body.error.details.import).toMatchObject({ status: "failed", rows_seen: 0 });
    expect(n.body.error.message).toMatch(/no email, phone or LinkedIn column/);

    const notArray = await newImport("json");
    expect((await upload(notArray.id, "42", "application/json")).body.error.message).toMatch(/expected an array of objects/);
    const empty = await newImport("json");
    expect((await upload(empty.id, "[]", "application/json")).body).toMatchObject({ status: "completed", rows_seen: 0 });
  });

  it("the upload must match the import's format and have a body", async () => {
    const imp = await newImport("json");
    const res = await upload(imp.id, "email\na@acme.io\n", "text/csv");
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].field).toBe("content-type");
    const missing = await call(stack, `pool/imports/${imp.id}/content`, { token: admin.token, method: "PUT" });
    expect(missing.status).toBe(400);
    expect((await call(stack, `pool/imports/${crypto.randomUUID()}`, { token: admin.token })).status).toBe(404);
    expect((await upload(crypto.randomUUID(), "[]", "application/json")).status).toBe(404);
    expect((await call(stack, "pool/imports", { token: admin.token, body: { format: "xml" } })).status).toBe(400);
  });
});

describe("admins only", () => {
  it("a client user gets 403 on every route", async () => {
    const imp = await newImport("csv");
    const routes: Array<[string, { method?: string; body?: unknown; headers?: Record<string, string> }]> = [
      ["pool/imports", { body: { format: "csv" } }],
      ["pool/imports", {}],
      [`pool/imports/${imp.id}`, {}],
      [`pool/imports/${imp.id}/rows`, {}],
      [`pool/imports/${imp.id}/content`, { method: "PUT", body: "email\nx@acme.io\n", headers: { "content-type": "text/csv" } }],
      ["pool/leads", {}],
      ["pool/leads/count", {}],
    ];
    for (const [path, opts] of routes) {
      const res = await call(stack, path, { token: owner.token, ...opts });
      expect(res.status, path).toBe(403);
      expect(res.body.error.code).toBe("forbidden");
    }
    expect((await call(stack, "pool/leads", {})).status).toBe(401);
    // the refused upload did not touch the import
    expect((await call(stack, `pool/imports/${imp.id}`, { token: admin.token })).body).toMatchObject({ status: "running", rows_seen: 0 });
  });
});

describe("search and count", () => {
  it("filters by import, status, tier, source, country and text; pages with a cursor", async () => {
    const accepted = count("accepted");
    const nz = file.filter((r) => r.expected.outcome === "accepted" && r.expected.country === "NZ").length;
    expect(await poolCount(`import_id=${firstImport}`)).toBe(accepted);
    expect(await poolCount(`import_id=${firstImport}&status=new&source=import`)).toBe(accepted);
    expect(await poolCount(`import_id=${firstImport}&country=nz`)).toBe(nz);
    expect(await poolCount(`import_id=${firstImport}&status=scored`)).toBe(0);
    expect(await poolCount(`import_id=${firstImport}&tier=hot`)).toBe(0);
    expect(await poolCount(`q=${DOMAIN}&source=manual`)).toBe(20);
    expect(await poolCount(`q=lead14@${DOMAIN}`)).toBe(1);

    const page1 = await call(stack, `pool/leads?import_id=${firstImport}&country=NZ&limit=2`, { token: admin.token });
    expect(page1.status).toBe(200);
    expect(page1.body.data).toHaveLength(2);
    expect(page1.body.data.every((l: { country: string; source: string }) => l.country === "NZ" && l.source === "import")).toBe(true);
    const page2 = await call(stack, `pool/leads?import_id=${firstImport}&country=NZ&limit=2&cursor=${page1.body.next_cursor}`, { token: admin.token });
    expect(page2.body.data).toHaveLength(2);
    expect(page2.body.data.map((l: { id: string }) => l.id)).not.toContain(page1.body.data[0].id);

    const found = await call(stack, `pool/leads?q=${encodeURIComponent(`LEAD14@${DOMAIN}`)}`, { token: admin.token });
    expect(found.body.data).toEqual([expect.objectContaining({ email: emailOf(14), phone_e164: `+61${digits(14)}`, import_id: firstImport })]);

    const bad = await call(stack, "pool/leads/count?country=Australia&status=nope", { token: admin.token });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual(["country", "status"]);
  });

  it("publishes every route in its OpenAPI document", async () => {
    const doc = (await call(stack, "pool/openapi.json", { token: stack.anonKey })).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining([
      "/pool/imports", "/pool/imports/{id}", "/pool/imports/{id}/content", "/pool/imports/{id}/rows", "/pool/leads", "/pool/leads/count",
    ]));
    expect(Object.keys(doc.paths["/pool/imports/{id}/content"].put.requestBody.content)).toEqual(["text/csv", "application/json", "application/x-ndjson"]);
  });
});
