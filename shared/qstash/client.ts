// The QStash client and receiver from the environment. Locally QSTASH_URL points at the stack's
// emulator; the same @upstash/qstash code talks to QStash in production.
import { Client, Receiver } from "@upstash/qstash";
import { env } from "../config/env.ts";
import { AppError } from "../http/errors.ts";

let client: Client | undefined;
let receiver: Receiver | undefined;

export function qstash(): Client {
  const { QSTASH_URL, QSTASH_TOKEN } = env();
  if (!QSTASH_TOKEN) throw new Error("QSTASH_TOKEN is not set: pipeline steps cannot be chained");
  client ??= new Client({ token: QSTASH_TOKEN, baseUrl: QSTASH_URL, enableTelemetry: false });
  return client;
}

/** The public URL of a function, as QStash calls and signs it. */
export function functionUrl(name: string, path = ""): string {
  const base = env().PUBLIC_FUNCTIONS_BASE_URL;
  if (!base) throw new Error("PUBLIC_FUNCTIONS_BASE_URL is not set: QStash needs the public URL of each flow");
  return `${base.replace(/\/$/, "")}/${name}${path}`;
}

/**
 * Verifies Upstash-Signature over the raw body and the public URL (never the URL the request
 * arrived at: behind the gateway they differ). Throws AppError(unauthorized).
 */
export async function verifyQStashRequest(req: Request, rawBody: string, functionName: string): Promise<void> {
  const { QSTASH_CURRENT_SIGNING_KEY: current, QSTASH_NEXT_SIGNING_KEY: next } = env();
  if (!current || !next) throw new AppError("unauthorized", "QStash signing keys are not configured");
  const signature = req.headers.get("upstash-signature");
  if (!signature) throw new AppError("unauthorized", "missing Upstash-Signature");
  receiver ??= new Receiver({ currentSigningKey: current, nextSigningKey: next });
  const incoming = new URL(req.url);
  const rest = incoming.pathname.replace(new RegExp(`^/${functionName}`), "");
  const url = functionUrl(functionName, rest) + incoming.search;
  try {
    await receiver.verify({ signature, body: rawBody, url, clockTolerance: 5 });
  } catch {
    throw new AppError("unauthorized", "invalid Upstash-Signature");
  }
}

/** For tests: forget clients built from an earlier environment. */
export function resetQStash(): void {
  client = undefined;
  receiver = undefined;
}
