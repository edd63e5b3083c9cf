// A pipeline step as an Edge Function invoked by QStash: verify the signature over the raw body
// and the public URL, run one bounded batch, then publish what the batch queued in the outbox.
// Any error is a 5xx, so QStash retries with backoff and finally dead-letters the message.
import { z } from "@hono/zod-openapi";
import { createRoute } from "@hono/zod-openapi";
import { db, type Tx } from "../db/client.ts";
import { createFunctionApp, type App } from "../http/app.ts";
import { AppError } from "../http/errors.ts";
import type { Logger } from "../observability/log.ts";
import { verifyQStashRequest } from "../qstash/client.ts";
import { schemaOrEmpty } from "./flow-input.ts";
import { enqueue, publishSoon } from "./outbox.ts";

export interface FlowContext<I> {
  input: I;
  log: Logger;
  /** Queue this flow again, in the caller's transaction; deterministic per incoming message. */
  continueLater(tx: Tx, input?: Record<string, unknown>, delaySeconds?: number): Promise<void>;
}

export interface FlowResult {
  processed: number;
  more: boolean;
  [k: string]: unknown;
}

/**
 * ```ts
 * const app = createFlowFunction("flow-scoring", "flow.scoring", Input, async ({ input }) => ({ processed: 0, more: false }));
 * ```
 */
export function createFlowFunction<S extends z.ZodTypeAny>(
  name: string,
  topic: string,
  description: string,
  inputSchema: S,
  run: (ctx: FlowContext<z.infer<S>>) => Promise<FlowResult>,
): App {
  const app = createFunctionApp(name, { title: name, description });
  app.openapi(
    createRoute({
      method: "post",
      path: "/",
      summary: `${description} (invoked by QStash; Upstash-Signature required)`,
      responses: {
        200: { description: "One batch done", content: { "application/json": { schema: z.object({ processed: z.number(), more: z.boolean() }).passthrough() } } },
        401: { description: "Missing or invalid Upstash-Signature" },
      },
    }),
    async (c) => {
      const raw = await c.req.text();
      await verifyQStashRequest(c.req.raw, raw, name);
      let parsed: unknown = {};
      try {
        parsed = raw ? JSON.parse(raw) : {};
      } catch {
        throw new AppError("bad_request", "the message body is not JSON");
      }
      const input = schemaOrEmpty(inputSchema).safeParse(parsed);
      if (!input.success) throw new AppError("validation_failed", "invalid message body", input.error.issues);
      const messageKey = (parsed as { outbox_id?: number }).outbox_id ?? c.req.header("upstash-message-id") ?? crypto.randomUUID();
      const result = await run({
        input: input.data,
        log: c.var.log,
        continueLater: (tx, next, delaySeconds) =>
          enqueue(tx, topic, next ?? (input.data as Record<string, unknown>), {
            dedupKey: `${topic}:after:${messageKey}`,
            delaySeconds,
          }),
      });
      await publishSoon(db());
      c.var.log.info("flow batch", { flow: name, ...result });
      return c.json(result, 200);
    },
  );
  return app;
}
