// QStash chaining on the local stack: the real @upstash/qstash client publishes to the emulator,
// which delivers signed messages over HTTP to flow functions that verify them.
import { Client } from "@upstash/qstash";
import { beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { db } from "../../shared/db/client.ts";
import { call, getStack, unique } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

let stack: Stack;
let client: Client;
beforeAll(async () => {
  stack = await getStack();
  client = new Client({ baseUrl: `${stack.url}/qstash`, token: stack.secrets.qstashToken, enableTelemetry: false });
});


describe("flows invoked by QStash", () => {
  it("a published message reaches the flow, which verifies the signature and runs", async () => {
    const topic = `test.${unique("unrouted")}`;
    const [row] = await db()`insert into public.outbox (topic, payload) values (${topic}, '{}') returning id`;
    await client.publishJSON({ url: `${stack.url}/functions/v1/outbox-publisher`, body: {} });
    // the publisher marks rows of topics nobody subscribes to as done, without a destination
    const done = await until("the outbox row published", async () => {
      const [r] = await db()`select published_at, destination from public.outbox where id = ${row.id}`;
      return r.published_at ? r : undefined;
    }, 15_000);
    expect(done.destination).toBeNull();
  });

  it("refuses unsigned and mis-signed deliveries with 401, running nothing", async () => {
    // (Whether an outbox row stays unpublished can't show "running nothing" on the shared stack:
    // webhook functions publish in the background whenever a sandbox posts a status. The flow's
    // result is what tells: a run answers 200 with {processed, more}; a refusal never gets there.)
    const unsigned = await call(stack, "outbox-publisher", { body: {} });
    expect(unsigned.status).toBe(401);
    expect(unsigned.body.error.code).toBe("unauthorized");
    expect(unsigned.body).not.toHaveProperty("processed");
    const forged = await call(stack, "outbox-publisher", { body: {}, headers: { "upstash-signature": "eyJhbGciOiJIUzI1NiJ9.e30.c2ln" } });
    expect(forged.status).toBe(401);
    expect(forged.body).not.toHaveProperty("processed");
  });

  it("a signature for another URL is refused (the signed URL is the public one)", async () => {
    const { signQStashJwt } = await import("../../dev/qstash/sign.ts");
    const body = "{}";
    const token = await signQStashJwt({
      key: stack.secrets.qstashCurrentSigningKey,
      url: `${stack.url}/functions/v1/some-other-function`,
      body: new TextEncoder().encode(body),
      nowMs: Date.now(),
    });
    const res = await call(stack, "outbox-publisher", { body, headers: { "upstash-signature": token } });
    expect(res.status).toBe(401);
  });
});
