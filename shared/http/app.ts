// Builds a function's Hono app with the conventions every function keeps: basePath /<name>,
// a request id and JSON log line per request, body size limit, one error shape, 400s that name
// the bad field, Sentry for the unexpected, and an OpenAPI document at /<name>/openapi.json.
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Context } from "hono";
import type { ZodError } from "zod";
import type { Caller } from "../auth/caller.ts";
import { env } from "../config/env.ts";
import { appErrorFromPg } from "../db/errors.ts";
import { logger, type Logger } from "../observability/log.ts";
import { reportError } from "../observability/sentry.ts";
import { AppError, errorBody } from "./errors.ts";

export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    caller?: Caller;
  };
}

export type App = OpenAPIHono<AppEnv>;

/** Turns zod issues into details a caller can act on: [{ field, message }]. */
export function zodIssues(error: ZodError): Array<{ field: string; message: string }> {
  return error.issues.map((i) => ({ field: i.path.join(".") || "(body)", message: i.message }));
}

function validationError(error: ZodError, target: string): AppError {
  const issues = zodIssues(error);
  const fields = [...new Set(issues.map((i) => i.field))].join(", ");
  return new AppError("validation_failed", `invalid ${target}: ${fields}`, issues);
}

/** Answers any thrown error with the one error shape; reports only the unexpected to Sentry. */
export async function handleError(err: unknown, c: Context<AppEnv>, functionName: string) {
  const appError = err instanceof AppError ? err : appErrorFromPg(err);
  if (appError) {
    return c.json(errorBody(appError.code, appError.message, appError.details), appError.status as ContentfulStatusCode);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    const code = status === 413 ? "payload_too_large" : status === 401 ? "unauthorized" : "bad_request";
    return c.json(errorBody(code, err.message || "bad request"), status as ContentfulStatusCode);
  }
  if (err instanceof SyntaxError) {
    return c.json(errorBody("bad_request", "the request body is not valid JSON"), 400);
  }
  const requestId = c.var.requestId;
  c.var.log?.error("unhandled error", {
    error: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err),
  });
  await reportError(err, { function: functionName, requestId, path: c.req.path, method: c.req.method });
  return c.json(errorBody("internal_error", "something went wrong on our side", { requestId }), 500);
}

/**
 * Creates a function's app.
 *
 * ```ts
 * const app = createFunctionApp("health");
 * app.get("/", (c) => c.json({ ok: true }));   // serves GET /health
 * ```
 */
export function createFunctionApp(
  name: string,
  info: {
    title: string;
    description?: string;
    /** Requests whose body the route reads as a stream (an import file): exempt from the body limit. */
    streamedBody?: (method: string, path: string) => boolean;
  },
): App {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error as ZodError, result.target);
    },
  }).basePath(`/${name}`) as unknown as App;

  app.use("*", requestId({ headerName: "x-request-id" }));
  app.use("*", async (c, next) => {
    const log = logger({ function: name, requestId: c.var.requestId });
    c.set("log", log);
    const started = performance.now();
    await next();
    log.info("request", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  });
  const limit = bodyLimit({
    maxSize: env().MAX_BODY_BYTES,
    onError: () => {
      throw new AppError("payload_too_large", `the request body is larger than ${env().MAX_BODY_BYTES} bytes`);
    },
  });
  // bodyLimit buffers a chunked body to measure it: a streamed upload must not pass through it
  app.use("*", (c, next) => (info.streamedBody?.(c.req.method, c.req.path) ? next() : limit(c, next)));
  app.onError((err, c) => handleError(err, c, name));
  app.notFound((c) => c.json(errorBody("not_found", `no route ${c.req.method} ${c.req.path}`), 404));

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: { title: info.title, version: "1.0.0", description: info.description },
    servers: [{ url: "/functions/v1" }],
  });
  return app;
}
