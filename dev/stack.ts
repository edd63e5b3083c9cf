// The local stack: one HTTP server at http://127.0.0.1:54321 (PORT overrides) serving every
// function at /functions/v1/<name>, a QStash v2 emulator at /qstash, an Upstash Redis REST
// bridge at /redis, the API reference at /docs, and the dev-only user routes at /_dev.
// `npm start` runs it under Deno; the tests start it in-process under Node.
import process from "node:process";
import { join } from "node:path";
import { Hono } from "hono";
import { resetEnvCache } from "../shared/config/env.ts";
import { closeDb, db } from "../shared/db/client.ts";
import { openDatabase, type LocalDatabase } from "./database.ts";
import { devRoutes } from "./dev-routes.ts";
import { collectDocs, renderDocsPage } from "./docs-page.ts";
import { functionsRouter, loadFunctions, type FunctionEntry } from "./functions-host.ts";
import { loadLocalSecrets, signLocalJwt, type LocalSecrets } from "./local-secrets.ts";
import { createQStashEmulator, type QStashEmulator } from "./qstash/emulator.ts";
import { createRedisBridge, type RedisBridge } from "./redis-bridge.ts";
import { ensureSchedules } from "./schedules.ts";
import { createApifySandbox } from "./sandbox/apify.ts";
import { createApolloSandbox } from "./sandbox/apollo.ts";
import { createDataForSeoSandbox } from "./sandbox/dataforseo.ts";
import { createSerperSandbox } from "./sandbox/serper.ts";
import { createAnthropicSandbox } from "./sandbox/anthropic.ts";
import { createClickSendSandbox } from "./sandbox/clicksend.ts";
import { createDncrSandbox } from "./sandbox/dncr.ts";
import { createElevenLabsSandbox } from "./sandbox/elevenlabs.ts";
import { createHubSpotSandbox } from "./sandbox/hubspot.ts";
import { createPostgridSandbox } from "./sandbox/postgrid.ts";
import { createSalesforgeSandbox } from "./sandbox/salesforge.ts";
import { createTwilioSandbox, TWILIO_SANDBOX_DEFAULTS } from "./sandbox/twilio.ts";
import { createUnipileSandbox } from "./sandbox/unipile.ts";
import { createVapiSandbox } from "./sandbox/vapi.ts";

export interface StackOptions {
  root: string;
  port?: number;           // default PORT or 54321; 0 picks a free port
  databaseUrl?: string;    // default DATABASE_URL; unset = embedded PGlite
  dataDir?: string;        // PGlite data directory (default <root>/.local/pgdata); "memory://" for tests
  stateDir?: string;       // secrets, PGlite data and QStash store (default LOCAL_STATE_DIR or <root>/.local)
  redisUrl?: string;       // default REDIS_URL or redis://127.0.0.1:6379
  qstashBackoffScale?: number;
  schedules?: boolean;     // register the flows' cron schedules (default true; tests drive flows themselves)
}

export interface Stack {
  url: string;
  port: number;
  database: LocalDatabase;
  secrets: LocalSecrets;
  anonKey: string;
  serviceKey: string;
  functions: FunctionEntry[];
  scheduled: string[];
  /** The outreach sandboxes' recorded state (messages, calls, letters, washes…), for tests and the demo. */
  sandboxes: {
    twilio: ReturnType<typeof createTwilioSandbox>["state"];
    clicksend: ReturnType<typeof createClickSendSandbox>["state"];
    vapi: ReturnType<typeof createVapiSandbox>["state"];
    salesforge: ReturnType<typeof createSalesforgeSandbox>["state"];
    unipile: ReturnType<typeof createUnipileSandbox>["state"];
    postgrid: ReturnType<typeof createPostgridSandbox>["state"];
    dncr: ReturnType<typeof createDncrSandbox>["state"];
    anthropic: ReturnType<typeof createAnthropicSandbox>["state"];
  };
  qstash: QStashEmulator;
  redis: RedisBridge;
  stop(): Promise<void>;
}

interface Listener {
  port: number;
  close(): Promise<void>;
}

type DenoLike = {
  serve(
    opts: { port: number; hostname: string; onListen?: (addr: { port: number }) => void },
    handler: (req: Request) => Response | Promise<Response>,
  ): { addr: { port: number }; shutdown(): Promise<void> };
};

/** Deno.serve under Deno, @hono/node-server under Node; resolves once listening. */
async function listen(port: number, handler: (req: Request) => Promise<Response>): Promise<Listener> {
  const deno = (globalThis as { Deno?: DenoLike }).Deno;
  if (deno) {
    const server = deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, handler);
    return { port: server.addr.port, close: () => server.shutdown() };
  }
  const { serve } = await import("@hono/node-server");
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: handler, port, hostname: "127.0.0.1" }, (info) =>
      resolve({
        port: info.port,
        close: () => new Promise<void>((done) => {
          (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          server.close(() => done());
        }),
      }));
    server.once("error", reject);
  });
}

/** Where the local stack keeps its state: LOCAL_STATE_DIR, else <root>/.local (git-ignored). */
export function localStateDir(root: string): string {
  return process.env.LOCAL_STATE_DIR || join(root, ".local");
}

/** Sets a variable unless the environment already chose a value (a real QStash, say). */
function defaultEnv(name: string, value: string) {
  if (!process.env[name]) process.env[name] = value;
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const stateDir = opts.stateDir ?? localStateDir(opts.root);
  const secrets = await loadLocalSecrets(join(stateDir, "secrets.json"));
  const database = await openDatabase({
    root: opts.root,
    databaseUrl: opts.databaseUrl ?? (process.env.DATABASE_URL || undefined),
    dataDir: opts.dataDir ?? join(stateDir, "pgdata"),
  });

  // Late-bound handler: the port must be known before the functions read their environment.
  let handler: (req: Request) => Promise<Response> = () =>
    Promise.resolve(Response.json({ error: { code: "service_unavailable", message: "starting" } }, { status: 503 }));
  const listener = await listen(opts.port ?? Number(process.env.PORT || 54321), (req) => handler(req));
  const url = `http://127.0.0.1:${listener.port}`;

  process.env.DATABASE_URL = database.url;
  process.env.DB_POOL_MAX = String(database.poolMax);
  process.env.SUPABASE_JWT_SECRET = secrets.jwtSecret;
  process.env.PUBLIC_FUNCTIONS_BASE_URL = `${url}/functions/v1`;
  defaultEnv("QSTASH_URL", `${url}/qstash`);
  defaultEnv("QSTASH_TOKEN", secrets.qstashToken);
  defaultEnv("QSTASH_CURRENT_SIGNING_KEY", secrets.qstashCurrentSigningKey);
  defaultEnv("QSTASH_NEXT_SIGNING_KEY", secrets.qstashNextSigningKey);
  defaultEnv("UPSTASH_REDIS_REST_URL", `${url}/redis`);
  defaultEnv("UPSTASH_REDIS_REST_TOKEN", secrets.redisToken);
  // Providers without credentials talk to the sandbox servers below, in their wire formats.
  const sandboxes = {
    apollo: { env: "APOLLO_BASE_URL", key: "APOLLO_API_KEY", path: "/sandbox/apollo", base: "/api/v1" },
    apify: { env: "APIFY_BASE_URL", key: "APIFY_TOKEN", path: "/sandbox/apify", base: "/v2" },
    serper: { env: "SERPER_BASE_URL", key: "SERPER_API_KEY", path: "/sandbox/serper", base: "" },
    dataforseo: { env: "DATAFORSEO_BASE_URL", key: "DATAFORSEO_LOGIN", path: "/sandbox/dataforseo", base: "" },
  };
  // Outreach and inbound providers: the sandboxes keep state and post signed status webhooks to
  // the webhook functions, as the real services do.
  const outreachSandboxes = {
    anthropic: { env: "ANTHROPIC_BASE_URL", key: "ANTHROPIC_API_KEY", path: "/sandbox/anthropic", base: "" },
    salesforge: { env: "SALESFORGE_BASE_URL", key: "SALESFORGE_API_KEY", path: "/sandbox/salesforge", base: "/public/v2" },
    twilio: { env: "TWILIO_BASE_URL", key: "TWILIO_ACCOUNT_SID", path: "/sandbox/twilio", base: "" },
    clicksend: { env: "CLICKSEND_BASE_URL", key: "CLICKSEND_USERNAME", path: "/sandbox/clicksend", base: "/v3" },
    vapi: { env: "VAPI_BASE_URL", key: "VAPI_API_KEY", path: "/sandbox/vapi", base: "" },
    elevenlabs: { env: "ELEVENLABS_BASE_URL", key: "ELEVENLABS_API_KEY", path: "/sandbox/elevenlabs", base: "" },
    unipile: { env: "UNIPILE_BASE_URL", key: "UNIPILE_API_KEY", path: "/sandbox/unipile", base: "/api/v1" },
    postgrid: { env: "POSTGRID_BASE_URL", key: "POSTGRID_API_KEY", path: "/sandbox/postgrid", base: "/print-mail/v1" },
    dncr: { env: "DNCR_BASE_URL", key: "DNCR_API_KEY", path: "/sandbox/dncr", base: "" },
    hubspot: { env: "HUBSPOT_BASE_URL", key: "HUBSPOT_ACCESS_TOKEN", path: "/sandbox/hubspot", base: "" },
  };
  for (const [name, s] of Object.entries({ ...sandboxes, ...outreachSandboxes })) {
    if (process.env[s.key]) continue;
    defaultEnv(s.env, `${url}${s.path}${s.base}`);
    // a sandbox has no rate limit of its own; the production default would only slow local runs
    defaultEnv(`${name.toUpperCase()}_RATE_LIMIT`, "off");
  }
  // Local secrets for the webhook schemes and the unsubscribe links, derived from the stack's
  // generated secret so they survive restarts and are never committed.
  const derived = async (label: string) => {
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secrets.jwtSecret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(label)));
    return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
  };
  for (const name of ["UNSUBSCRIBE_SECRET", "CLICKSEND_WEBHOOK_TOKEN", "SALESFORGE_WEBHOOK_TOKEN", "UNIPILE_WEBHOOK_SECRET",
                      "POSTGRID_WEBHOOK_SECRET", "VAPI_WEBHOOK_SECRET", "CALCOM_WEBHOOK_SECRET", "CALENDLY_SIGNING_KEY"]) {
    defaultEnv(name, await derived(name));
  }
  if (!process.env.TWILIO_ACCOUNT_SID) {
    defaultEnv("TWILIO_AUTH_TOKEN", TWILIO_SANDBOX_DEFAULTS.authToken);
  }
  defaultEnv("SALESFORGE_WORKSPACE_ID", "ws_sandbox");
  defaultEnv("SALESFORGE_SEQUENCE_ID", "1001");
  defaultEnv("VOICE_ELEVENLABS_VOICE_ID", "21m00Tcm4TlvDq8ikWAM");
  resetEnvCache();
  const webhook = (fn: string, query = "") => `${url}/functions/v1/${fn}${query}`;

  const qstash = createQStashEmulator({
    token: secrets.qstashToken,
    currentSigningKey: secrets.qstashCurrentSigningKey,
    nextSigningKey: secrets.qstashNextSigningKey,
    storePath: opts.dataDir === "memory://" ? undefined : join(stateDir, "qstash.json"),
    backoffScale: opts.qstashBackoffScale ?? Number(process.env.LOCAL_QSTASH_BACKOFF_SCALE || 1),
  });
  const redis = await createRedisBridge({
    token: secrets.redisToken,
    redisUrl: opts.redisUrl ?? (process.env.REDIS_URL || "redis://127.0.0.1:6379"),
  });
  const functions = await loadFunctions(opts.root);
  const docsHtml = renderDocsPage(await collectDocs(functions, url), functions);

  const root = new Hono();
  root.route("/qstash", qstash.app);
  root.route("/redis", redis.app);
  root.route("/sandbox/apollo", createApolloSandbox());
  root.route("/sandbox/apify", createApifySandbox());
  root.route("/sandbox/serper", createSerperSandbox());
  root.route("/sandbox/dataforseo", createDataForSeoSandbox());
  const twilioSandbox = createTwilioSandbox({ authToken: process.env.TWILIO_AUTH_TOKEN });
  const clicksendSandbox = createClickSendSandbox({
    receiptUrl: webhook("webhook-clicksend", `?token=${process.env.CLICKSEND_WEBHOOK_TOKEN}`),
  });
  const vapiSandbox = createVapiSandbox({ hmacSecret: process.env.VAPI_WEBHOOK_SECRET, serverUrl: webhook("webhook-vapi") });
  const salesforgeSandbox = createSalesforgeSandbox({
    webhookUrl: webhook("webhook-salesforge", `?token=${process.env.SALESFORGE_WEBHOOK_TOKEN}`),
  });
  const unipileSandbox = createUnipileSandbox({ webhookUrl: webhook("webhook-unipile"), webhookSecret: process.env.UNIPILE_WEBHOOK_SECRET });
  const postgridSandbox = createPostgridSandbox({ webhookUrl: webhook("webhook-postgrid"), webhookSecret: process.env.POSTGRID_WEBHOOK_SECRET });
  const dncrSandbox = createDncrSandbox();
  const anthropicSandbox = createAnthropicSandbox();
  root.route("/sandbox/anthropic", anthropicSandbox.app);
  root.route("/sandbox/salesforge", salesforgeSandbox.app);
  root.route("/sandbox/twilio", twilioSandbox);
  root.route("/sandbox/clicksend", clicksendSandbox);
  root.route("/sandbox/vapi", vapiSandbox);
  root.route("/sandbox/elevenlabs", createElevenLabsSandbox());
  root.route("/sandbox/unipile", unipileSandbox.app);
  root.route("/sandbox/postgrid", postgridSandbox.app);
  root.route("/sandbox/dncr", dncrSandbox.app);
  root.route("/sandbox/hubspot", createHubSpotSandbox());
  root.route("/_dev", devRoutes(db, secrets.jwtSecret));
  root.get("/docs", (c) => c.html(docsHtml));
  root.get("/", (c) =>
    c.json({
      functions: Object.fromEntries(functions.map((f) => [f.name, `${url}/functions/v1/${f.name}`])),
      docs: `${url}/docs`,
      qstash: `${url}/qstash`,
      redis: `${url}/redis`,
    }));
  root.all("/functions/v1/*", (c) => functionsRouter(functions, secrets.jwtSecret)(c.req.raw));
  handler = async (req) => root.fetch(req);
  qstash.start();
  const scheduled = opts.schedules === false ? [] : await ensureSchedules({
    qstashUrl: process.env.QSTASH_URL!,
    token: process.env.QSTASH_TOKEN!,
    functionsBaseUrl: process.env.PUBLIC_FUNCTIONS_BASE_URL!,
    functions: functions.map((f) => f.name),
  });

  const [anonKey, serviceKey] = await Promise.all([
    signLocalJwt(secrets.jwtSecret, { role: "anon" }, 10 * 365 * 86400),
    signLocalJwt(secrets.jwtSecret, { role: "service_role" }, 10 * 365 * 86400),
  ]);

  let stopped = false;
  return {
    url, port: listener.port, database, secrets, anonKey, serviceKey, functions, scheduled, qstash, redis,
    sandboxes: {
      twilio: twilioSandbox.state, clicksend: clicksendSandbox.state, vapi: vapiSandbox.state,
      salesforge: salesforgeSandbox.state, unipile: unipileSandbox.state, postgrid: postgridSandbox.state,
      dncr: dncrSandbox.state, anthropic: anthropicSandbox.state,
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await qstash.stop();
      await listener.close();
      await redis.close();
      await closeDb();
      await database.close();
    },
  };
}
