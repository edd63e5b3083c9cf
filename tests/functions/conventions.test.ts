// Conventions every function keeps: one error shape, request ids, body limits, OpenAPI
// documents and the reference page, health's 503, and Sentry for the unexpected.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { parseFunctionsConfig } from "../../dev/functions-host.ts";
import { resetEnvCache } from "../../shared/config/env.ts";
import { closeDb } from "../../shared/db/client.ts";
import { createFunctionApp } from "../../shared/http/app.ts";
import { resetSentry } from "../../shared/observability/sentry.ts";
import { call, getStack } from "../helpers/stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await getStack();
});

describe("errors and request ids", () => {
  it("an unknown route is a JSON 404 in the one error shape, with a request id", async () => {
    const res = await call(stack, "health/nope");
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: { code: "not_found", message: expect.stringContaining("/health/nope") } });
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect((await call(stack, "no-such-function")).status).toBe(404);
  });

  it("a body over the limit is a 413 payload_too_large, before anything else runs", async () => {
    // In-process: over a socket the server answers before the upload ends and the client sees
    // the connection close instead of the response.
    const leads = (await import("../../functions/leads/index.ts")).default;
    const body = JSON.stringify({ email: "x".repeat(2_000_000) });
    const res = await leads.request("/leads", {
      method: "POST",
      body,
      headers: { "content-type": "application/json", "content-length": String(body.length) },
    });
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe("payload_too_large");
  });
});

describe("OpenAPI", () => {
  it("every function in config.toml has a folder, and every folder an entry", async () => {
    const root = join(import.meta.dirname, "../..");
    const configured = parseFunctionsConfig(await readFile(join(root, "supabase/config.toml"), "utf8")).map((f) => f.name).sort();
    const folders = (await readdir(join(root, "functions"), { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort();
    expect(configured).toEqual(folders);
  });

  it("every function publishes an OpenAPI 3.1 document of its routes, and /docs lists them all", async () => {
    for (const fn of stack.functions) {
      // verify_jwt functions need a project key at the gateway, as on Supabase; the anon key is enough
      const res = await call(stack, `${fn.name}/openapi.json`, { token: stack.anonKey });
      expect(res.status, fn.name).toBe(200);
      expect(res.body.openapi).toBe("3.1.0");
      expect(Object.keys(res.body.paths).length, fn.name).toBeGreaterThan(0);
      expect(Object.keys(res.body.paths).every((p) => p.startsWith(`/${fn.name}`))).toBe(true);
    }
    const leads = (await call(stack, "leads/openapi.json", { token: stack.anonKey })).body;
    expect(Object.keys(leads.paths)).toEqual(expect.arrayContaining(["/leads", "/leads/{id}", "/leads/{id}/status", "/leads/pool"]));
    const page = await (await fetch(`${stack.url}/docs`)).text();
    for (const fn of stack.functions) expect(page).toContain(`/functions/v1/${fn.name}/openapi.json`);
    expect(page).toContain("/functions/v1/leads/{id}/status");
  });
});

describe("health", () => {
  it("reports every dependency and provider", async () => {
    const res = await call(stack, "health");
    expect(res.status).toBe(200);
    expect(res.body.checks.database.status).toBe("ok");
    expect(res.body.checks.qstash.status).toBe("ok");
    expect(["ok", "down"]).toContain(res.body.checks.redis.status);
    expect(Object.keys(res.body.providers)).toEqual(expect.arrayContaining(["apollo", "salesforge", "twilio", "vapi", "unipile", "postgrid"]));
  });

  it("answers 503 when the database is down", async () => {
    const saved = process.env.DATABASE_URL;
    // environment first, then the pool: flows running in the background may reopen it at any time
    process.env.DATABASE_URL = "postgres://postgres@127.0.0.1:1/none";
    resetEnvCache();
    await closeDb();
    try {
      const res = await call(stack, "health");
      expect(res.status).toBe(503);
      expect(res.body.status).toBe("down");
      expect(res.body.checks.database.status).toBe("down");
    } finally {
      process.env.DATABASE_URL = saved;
      resetEnvCache();
      await closeDb();
    }
    expect((await call(stack, "health")).status).toBe(200);
  });
});

describe("Sentry", () => {
  const envelopes: string[] = [];
  const ingest = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const body = req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw;
      envelopes.push(`${req.url}\n${body.toString("utf8")}`);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  afterAll(async () => {
    delete process.env.SENTRY_DSN;
    resetSentry();
    await new Promise((r) => ingest.close(r));
  });

  it("an unexpected error is a 500 with a request id, and its event reaches the ingest endpoint", async () => {
    await new Promise<void>((r) => ingest.listen(0, "127.0.0.1", r));
    const port = (ingest.address() as AddressInfo).port;
    process.env.SENTRY_DSN = `http://publickey@127.0.0.1:${port}/42`;
    resetSentry();
    const app = createFunctionApp("boom", { title: "Boom" });
    app.get("/", () => {
      throw new Error("kaboom-unexpected-1234");
    });
    const res = await app.request("/boom");
    expect(res.status).toBe(500);
    const body = await res.json();
    expect(body.error.code).toBe("internal_error");
    expect(body.error.message).not.toContain("kaboom");
    const event = envelopes.find((e) => e.includes("kaboom-unexpected-1234"));
    expect(event).toBeDefined();
    expect(event!.split("\n")[0]).toMatch(/^\/api\/42\/envelope\//);
    expect(event).toContain(body.error.details.requestId);
  });
});
