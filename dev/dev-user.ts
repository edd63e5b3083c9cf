// `npm run dev:user -- --email E [--client SLUG] [--role owner|member|viewer|admin]`: creates the
// user (and the client and membership when given; admin makes a platform admin) through the
// running local stack, and prints a signed JWT as the last line of output.
import process from "node:process";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { loadLocalSecrets, signLocalJwt } from "./local-secrets.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const usage = "usage: npm run dev:user -- --email you@example.com [--client acme] [--role owner|member|viewer|admin] [--url http://127.0.0.1:54321]";

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        email: { type: "string" },
        client: { type: "string" },
        role: { type: "string", default: "owner" },
        url: { type: "string" },
        "ttl-seconds": { type: "string" },
        help: { type: "boolean" },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help || !values.email) {
    console.error(values.help ? usage : `--email is required\n${usage}`);
    return values.help ? 0 : 2;
  }
  const base = values.url ?? `http://127.0.0.1:${process.env.PORT || 54321}`;
  const secrets = await loadLocalSecrets(join(process.env.LOCAL_STATE_DIR || join(root, ".local"), "secrets.json"));
  const serviceKey = await signLocalJwt(secrets.jwtSecret, { role: "service_role" }, 300);

  let res: Response;
  try {
    res = await fetch(`${base}/_dev/users`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${serviceKey}` },
      body: JSON.stringify({
        email: values.email,
        client: values.client,
        role: values.role,
        ttl_seconds: values["ttl-seconds"] ? Number(values["ttl-seconds"]) : undefined,
      }),
    });
  } catch {
    console.error(`the local stack is not answering at ${base}: start it with \`npm start\` first`);
    return 1;
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = body.error ?? {};
    console.error(`could not create the user (${res.status} ${e.code ?? ""}): ${e.message ?? JSON.stringify(body)}`);
    for (const d of e.details ?? []) console.error(`  ${d.field}: ${d.message}`);
    return 1;
  }
  console.log(`user ${body.email} (${body.user_id})${body.client_id ? `, ${values.role} of client ${values.client} (${body.client_id})` : values.role === "admin" ? ", platform admin" : ""}`);
  console.log(body.token);
  return 0;
}

process.exit(await main());
